import logging

from django.apps import AppConfig

log = logging.getLogger(__name__)


def _refresh_analysis(sender, study, **kwargs):
    """After a leaderboard recompute, refresh a large study's stored analysis (dashboard.analysis). Never
    raises: the recompute that sent the signal has already done its own work."""
    from .analysis import refresh_if_large

    try:
        refresh_if_large(study)
    except Exception:  # noqa: BLE001 - the next recompute tries again
        log.warning("could not refresh the dashboard analysis of study %s", study.pk, exc_info=True)


class DashboardConfig(AppConfig):
    name = "dashboard"
    verbose_name = "Researcher dashboard"

    def ready(self):
        from ranking.signals import leaderboards_recomputed

        leaderboards_recomputed.connect(_refresh_analysis, dispatch_uid="dashboard-analysis")
