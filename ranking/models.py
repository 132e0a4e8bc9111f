"""Stored ratings: the incrementally updated Elo state per study and system, and leaderboard snapshots."""
from django.db import models

from lib.vocabulary import Method


class RatingState(models.Model):
    """Online Elo (plain or separability-weighted), updated in the vote's own transaction."""

    class Method(models.TextChoices):
        ELO = Method.ELO, Method.ELO.title
        WEIGHTED_ELO = Method.WEIGHTED_ELO, Method.WEIGHTED_ELO.title

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
        ELO = Method.ELO, Method.ELO.title
        WEIGHTED_ELO = Method.WEIGHTED_ELO, Method.WEIGHTED_ELO.title
        BT = Method.BT, Method.BT.title
        WEIGHTED_BT = Method.WEIGHTED_BT, Method.WEIGHTED_BT.title

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


class LeaderboardRelease(models.Model):
    """What the public sees of a study: a frozen copy of the four methods' payloads.

    The public page and its JSON read only the latest release, never the live snapshots, so that an
    annotator cannot learn from a moving board which system was behind the side they chose. A release
    is made when the study closes, or, for studies released in batches, by the recompute task once the
    study's cadence and minimum batch allow it (docs/security.md, "Blinding")."""

    class Reason(models.TextChoices):
        CLOSED = "closed", "Study closed"
        BATCH = "batch", "Batch release"
        STAFF = "staff", "Released by staff"

    study = models.ForeignKey("annotations.Study", on_delete=models.CASCADE, related_name="leaderboard_releases")
    released_at = models.DateTimeField()
    reason = models.CharField(max_length=10, choices=Reason.choices)
    votes_counted = models.PositiveIntegerField(help_text="Votes that counted for ratings at release time.")
    votes_fingerprint = models.CharField(
        max_length=64, blank=True,
        help_text="Which votes counted (their number and the sum of their ids): a release may be recomputed in place "
                  "(separability arrived, a method changed) only while this is unchanged.")
    payload = models.JSONField(help_text="{method: payload or {'error': ...}} as the snapshots had it.")

    class Meta:
        ordering = ["study", "-released_at", "-id"]
        indexes = [models.Index(fields=["study", "-released_at", "-id"], name="release_latest")]

    def __str__(self):
        return f"{self.study} release {self.released_at:%Y-%m-%d %H:%M}"
