"""Signals the annotations app sends so that apps above it (ranking, dashboard) can act on its events
without annotations importing them: dependencies run upward only."""
from django.dispatch import Signal

# A live vote was stored; sent INSIDE the vote's transaction (after the study, comparison and assignment
# locks), so a receiver's writes commit or roll back with the vote; kwargs: vote.
vote_stored = Signal()

# A study stopped taking votes (sent after the transaction that closed it commits); kwargs: study.
study_closed = Signal()

# Votes of a study were added, excluded or restored outside the live vote path (imports, quality
# control); kwargs: study_id. Ranking refreshes the study's stored ratings, debounced, off the request.
votes_changed = Signal()

# Normalised separability was copied onto the comparisons of these studies (sent after commit); kwargs:
# study_ids. The weighted ratings depend on it.
separability_changed = Signal()


def votes_changed_on_commit(study_id: int) -> None:
    """Send `votes_changed` for the study once the current transaction commits (now, outside one)."""
    from django.db import transaction

    transaction.on_commit(lambda: votes_changed.send(sender=None, study_id=study_id))
