"""Infrastructure tables: the rate limiter's counters used while the cache (Redis) is unreachable, and the
row a Celery worker writes to prove it reaches the database."""
from django.db import models


class RateCounter(models.Model):
    """Hits of one key in one slice of its sliding window (`lib.ratelimit`); expired rows are deleted."""

    key = models.CharField(max_length=200)
    bucket = models.BigIntegerField(help_text="Slice number: Unix time // slice length.")
    count = models.PositiveIntegerField(default=0)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key", "bucket"], name="rate_counter_natural_key")]
        indexes = [models.Index(fields=["expires_at"], name="rate_counter_expiry")]

    def __str__(self):
        return f"{self.key}@{self.bucket}: {self.count}"


class WorkerHeartbeat(models.Model):  # noqa: DJ008 (never shown, not in the admin; str() stays Django's default)
    """A row a Celery worker writes to prove it reaches the database (health checks, the worker test)."""

    label = models.CharField(max_length=100, unique=True)
    db_vendor = models.CharField(max_length=30)
    written_at = models.DateTimeField(auto_now=True)
