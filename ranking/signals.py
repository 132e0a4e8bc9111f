"""What the ranking app tells the apps above it: a study's leaderboards were just recomputed.

Sent by the recompute tasks (ranking.tasks) after every full rebuild, i.e. after votes, exclusions or an
import changed what counts. The dashboard refreshes its stored analysis of large studies on it
(dashboard.apps), so ranking never imports the dashboard.
"""
from django.dispatch import Signal

leaderboards_recomputed = Signal()  # sender: the Study, kwargs: study
