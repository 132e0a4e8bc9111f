"""Signals the annotations app sends so that apps above it (ranking, dashboard) can act on its events
without annotations importing them: dependencies run upward only."""
from django.dispatch import Signal

# A study stopped taking votes (sent after the transaction that closed it commits); kwargs: study.
study_closed = Signal()

# Votes of a study were added, excluded or restored outside the live vote path (imports, quality
# control); kwargs: study_id. Ranking refreshes the study's stored ratings, debounced, off the request.
votes_changed = Signal()
