"""A background export of a large study (more than `dashboard.exports.LARGE_EXPORT_VOTES` votes).

The task writes the file under MEDIA_ROOT/exports/ and reports its progress here, so the dashboard can
show a bar and, when the file is ready, a staff-only download link.
"""
from django.conf import settings
from django.db import models
from django.db.models import F, Q


class ExportJob(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    class Format(models.TextChoices):
        CSV = "csv", "Votes (CSV)"
        JSONL = "jsonl", "Votes (JSONL)"
        DPO = "dpo", "DPO pairs (JSONL)"

    study = models.ForeignKey("annotations.Study", on_delete=models.CASCADE, related_name="export_jobs")
    format = models.CharField(max_length=10, choices=Format.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    done = models.PositiveIntegerField(default=0, help_text="Records written.")
    total = models.PositiveIntegerField(default=0)
    file = models.CharField(max_length=300, blank=True, help_text="Path under MEDIA_ROOT once written.")
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.CheckConstraint(condition=Q(done__lte=F("total")), name="export_done_within_total")]

    def __str__(self):
        return f"export {self.pk} of {self.study} ({self.format})"

    @property
    def active(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else (100 if self.status == self.Status.DONE else 0)


class StudyAnalysis(models.Model):
    """The dashboard's statistics of a large study, computed off the request path (`dashboard.analysis`).

    Agreement, the per-annotator table, the most disagreed items, the consistency scatter and the votes
    timeline read every vote: at 1,000,000 votes that is seconds of work, too much for each page view
    (bench/scale.py). Studies above `dashboard.analysis.INLINE_VOTES` votes show the last stored analysis,
    refreshed after every leaderboard recompute (which follows every vote, exclusion and import)."""

    study = models.OneToOneField("annotations.Study", on_delete=models.CASCADE, related_name="analysis")
    payload = models.JSONField(default=dict)
    votes = models.PositiveIntegerField(default=0, help_text="Votes of the study when it was computed.")
    seconds = models.FloatField(default=0.0, help_text="How long the computation took.")
    computed_at = models.DateTimeField()

    def __str__(self):
        return f"analysis of {self.study_id} ({self.votes} votes, {self.computed_at:%Y-%m-%d %H:%M})"
