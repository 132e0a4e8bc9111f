"""Leaderboard recomputation and public releases on the `default` queue (debounced by ranking.services)."""
from celery import shared_task

from .priorities import refresh_adaptive_priorities
from .services import (
    batch_release_due,
    counted_votes,
    rebuild_study_ratings,
    refresh_release_in_place,
    release_leaderboard,
    release_recompute_slot,
)
from .signals import leaderboards_recomputed


@shared_task(name="ranking.tasks.recompute_leaderboards", acks_late=True, reject_on_worker_lost=True,
             autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def recompute_leaderboards(study_id: int) -> dict:
    """Replay the study's votes (Elo states), refresh every snapshot with bootstrap intervals, refresh an
    adaptive study's serving priorities (ranking.priorities), and publish a batch release when the study's
    cadence and minimum batch allow it."""
    from annotations.models import Study

    release_recompute_slot(study_id)  # votes landing from now on schedule a new run
    study = Study.objects.filter(pk=study_id).first()
    if study is None:
        return {"study": study_id, "status": "gone"}
    snapshots = rebuild_study_ratings(study)
    refresh_adaptive_priorities(study)  # an adaptive study's serving order follows the votes (no-op otherwise)
    leaderboards_recomputed.send(sender=Study, study=study)  # the dashboard refreshes its analysis
    votes = counted_votes(study)
    released = batch_release_due(study, votes)
    if released:
        release_leaderboard(study, "batch", snapshots, votes)
    else:
        refresh_release_in_place(study, snapshots)  # same votes, new numbers (e.g. separability arrived)
    return {"study": study_id, "methods": {m: (s.error or "ok") for m, s in snapshots.items()},
            "released": released}


@shared_task(name="ranking.tasks.release_final_leaderboard", acks_late=True, reject_on_worker_lost=True,
             autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def release_final_leaderboard(study_id: int) -> dict:
    """A study closed: rebuild its ratings from every vote and release them to the public."""
    from annotations.models import Study

    study = Study.objects.filter(pk=study_id).first()
    if study is None or study.status != Study.Status.CLOSED:
        return {"study": study_id, "status": "not closed"}
    snapshots = rebuild_study_ratings(study)
    leaderboards_recomputed.send(sender=Study, study=study)
    release = release_leaderboard(study, "closed", snapshots)
    return {"study": study_id, "release": release.pk}
