"""The ranking app: listens to annotations' events (it sits above annotations and imports it; never the other way).

Every path that changes what the ratings are computed from ends here: a live vote (`vote_stored`, in
its transaction), imports and quality control (`votes_changed`), separability (`separability_changed`),
and closing a study (`study_closed`: the final public release). The one entry point for a refresh is
`services.schedule_leaderboard_recompute` (debounced, on the `default` queue)."""
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


def refresh_when_separability_changed(sender, study_ids, **kwargs):
    from .services import schedule_leaderboard_recompute

    for study_id in study_ids:
        schedule_leaderboard_recompute(study_id)


def apply_stored_vote(sender, vote, **kwargs):
    """In the vote's transaction: move the online Elo; after commit, schedule the debounced full recompute."""
    from django.db import transaction

    from .services import apply_vote_to_ratings, schedule_leaderboard_recompute

    apply_vote_to_ratings(vote)
    transaction.on_commit(lambda: schedule_leaderboard_recompute(vote.study_id))


class RankingConfig(AppConfig):
    name = "ranking"
    verbose_name = "Leaderboards"

    def ready(self):
        from annotations.signals import separability_changed, study_closed, vote_stored, votes_changed

        vote_stored.connect(apply_stored_vote, dispatch_uid="ranking.apply_stored_vote")
        votes_changed.connect(refresh_when_votes_changed, dispatch_uid="ranking.refresh_when_votes_changed")
        separability_changed.connect(refresh_when_separability_changed,
                                     dispatch_uid="ranking.refresh_when_separability_changed")
        study_closed.connect(release_when_closed, dispatch_uid="ranking.release_when_closed")
