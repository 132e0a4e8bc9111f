"""Stored ratings: the incrementally updated Elo state per study and system, and leaderboard snapshots."""
from django.db import models


class RatingState(models.Model):
    """Online Elo (plain or separability-weighted), updated in the vote's own transaction."""

    class Method(models.TextChoices):
        ELO = "elo", "Elo"
        WEIGHTED_ELO = "weighted_elo", "Separability-weighted Elo"

    study = models.ForeignKey("annotations.Study", on_delete=models.CASCADE, related_name="rating_states")
    system = models.ForeignKey("annotations.System", on_delete=models.CASCADE, related_name="+")
    method = models.CharField(max_length=20, choices=Method.choices)
    rating = models.FloatField()
    votes = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["study", "method", "system"], name="rating_state_natural_key")]

    def __str__(self):
        return f"{self.study} {self.method} {self.system}: {self.rating:.1f}"


class LeaderboardSnapshot(models.Model):
    class Method(models.TextChoices):
        ELO = "elo", "Elo"
        WEIGHTED_ELO = "weighted_elo", "Separability-weighted Elo"
        BT = "bt", "Bradley-Terry"
        WEIGHTED_BT = "weighted_bt", "Separability-weighted Bradley-Terry"

    study = models.ForeignKey("annotations.Study", on_delete=models.CASCADE, related_name="leaderboards")
    method = models.CharField(max_length=20, choices=Method.choices)
    payload = models.JSONField(default=dict)
    votes_used = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["study", "method"], name="leaderboard_snapshot_natural_key")]

    def __str__(self):
        return f"{self.study} {self.method}"
