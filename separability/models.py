"""Stored separability results (one row per instance x system pair x metric) and computation runs."""
from django.db import models
from django.db.models import F, Q


class SeparabilityRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    dataset = models.ForeignKey("annotations.Dataset", on_delete=models.CASCADE, related_name="separability_runs")
    metrics = models.JSONField(default=list)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    done = models.PositiveIntegerField(default=0, help_text="Instances finished.")
    total = models.PositiveIntegerField(default=0)
    chunks_total = models.PositiveIntegerField(default=0)
    chunks_done = models.JSONField(default=list, help_text="Indexes of finished chunks.")
    errors = models.JSONField(default=list)
    timings = models.JSONField(default=dict)
    model_name = models.CharField(max_length=300, blank=True)
    device = models.CharField(max_length=20, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.CheckConstraint(condition=Q(done__lte=F("total")), name="run_done_within_total")]

    def __str__(self):
        return f"run {self.pk} on {self.dataset}"


class Alignment(models.Model):
    instance = models.ForeignKey("annotations.Instance", on_delete=models.CASCADE, related_name="alignments")
    system_a = models.ForeignKey("annotations.System", on_delete=models.CASCADE, related_name="+")
    system_b = models.ForeignKey("annotations.System", on_delete=models.CASCADE, related_name="+")
    metric = models.CharField(max_length=32)
    self_a = models.FloatField(null=True, blank=True)
    self_b = models.FloatField(null=True, blank=True)
    cross = models.FloatField(null=True, blank=True)
    separability = models.FloatField(null=True, blank=True, help_text="Raw: max(self_a, self_b) - cross.")
    normalised = models.FloatField(null=True, blank=True, help_text="Raw / (max - min) of the dataset's self/cross.")
    k_a = models.PositiveSmallIntegerField()
    k_b = models.PositiveSmallIntegerField()
    undefined_reason = models.CharField(max_length=200, blank=True)
    run = models.ForeignKey(SeparabilityRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["instance", "system_a", "system_b", "metric"]
        constraints = [
            models.UniqueConstraint(fields=["instance", "system_a", "system_b", "metric"],
                                    name="alignment_natural_key"),
            models.CheckConstraint(condition=Q(system_a__lt=F("system_b")), name="alignment_canonical_order"),
            models.CheckConstraint(condition=Q(separability__isnull=False) | ~Q(undefined_reason=""),
                                   name="alignment_undefined_has_reason"),
        ]
        indexes = [
            models.Index(fields=["metric", "system_a", "system_b", "normalised"], name="alignment_pair_rank"),
            # The separability page's lowest and highest units over all pairs: an ordered walk that stops
            # after a few rows instead of sorting every unit (260 ms each at 200,000 units, bench/scale.py).
            models.Index(fields=["metric", "normalised"], name="alignment_metric_rank"),
        ]

    def __str__(self):
        return f"{self.instance} {self.system_a}/{self.system_b} {self.metric}"
