"""The ranking app: listens to annotations' events (it sits above annotations and imports it; never the other way)."""
import logging

from django.apps import AppConfig

log = logging.getLogger(__name__)


def release_when_closed(sender, study, **kwargs):
    from .tasks import release_final_leaderboard

    try:
        release_final_leaderboard.delay(study.pk)
    except Exception:  # noqa: BLE001 - broker down: staff can release from the study page
        log.warning("could not queue the final release of study %s", study.slug, exc_info=True)


def refresh_when_votes_changed(sender, study_id, **kwargs):
    from .services import schedule_leaderboard_recompute

    schedule_leaderboard_recompute(study_id)


class RankingConfig(AppConfig):
    name = "ranking"
    verbose_name = "Leaderboards"

    def ready(self):
        from annotations.signals import study_closed, votes_changed

        study_closed.connect(release_when_closed, dispatch_uid="ranking.release_when_closed")
        votes_changed.connect(refresh_when_votes_changed, dispatch_uid="ranking.refresh_when_votes_changed")
