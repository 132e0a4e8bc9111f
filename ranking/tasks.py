"""Leaderboard recomputation on the `default` queue (debounced by ranking.services)."""
from celery import shared_task

from .services import release_recompute_slot, rebuild_study_ratings


@shared_task(name="ranking.tasks.recompute_leaderboards", acks_late=True, reject_on_worker_lost=True,
             autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def recompute_leaderboards(study_id: int) -> dict:
    """Replay the study's votes (Elo states) and refresh every snapshot with bootstrap intervals."""
    from annotations.models import Study

    release_recompute_slot(study_id)  # votes landing from now on schedule a new run
    study = Study.objects.filter(pk=study_id).first()
    if study is None:
        return {"study": study_id, "status": "gone"}
    snapshots = rebuild_study_ratings(study)
    return {"study": study_id, "methods": {m: (s.error or "ok") for m, s in snapshots.items()}}
