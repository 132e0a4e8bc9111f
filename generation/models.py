"""Model endpoints (where a system's outputs come from) and generation runs (k samples per instance and
system, filled in by chunk tasks), with the provenance of every sample the site generated.

A sample itself is an `annotations.Generation` like an imported one (separability and studies read them
alike); `SampleProvenance` beside it says which run, endpoint and exact request produced it. See
docs/design.md §6.
"""
from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

from .prompts import DEFAULT_PROMPT_TEMPLATE, template_problem


def validate_prompt_template(value: str) -> None:
    problem = template_problem(value)
    if problem:
        raise ValidationError(problem)


def validate_env_name(value: str) -> None:
    import re

    if value and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise ValidationError("The name of an environment variable (letters, digits, _), not the key itself.")


class ModelEndpoint(models.Model):
    """Where one system's samples come from: an OpenAI-compatible server, or a local model folder.

    The API key is never stored: `api_key_env` names the environment variable of the worker that holds it."""

    class Kind(models.TextChoices):
        OPENAI = "openai", "OpenAI-compatible server"
        LOCAL = "local", "Local model folder (gpu worker)"

    class Mode(models.TextChoices):
        CHAT = "chat", "Chat (/chat/completions)"
        COMPLETION = "completion", "Completion (/completions)"

    name = models.SlugField(max_length=100, unique=True)
    system = models.OneToOneField("annotations.System", null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="endpoint",
                                  help_text="The system whose outputs this endpoint generates.")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.OPENAI)
    base_url = models.URLField(blank=True, help_text="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1.")
    model = models.CharField(max_length=300, help_text="The model name the server serves, or the local folder.")
    mode = models.CharField(max_length=12, choices=Mode.choices, default=Mode.CHAT)
    api_key_env = models.CharField(max_length=100, blank=True, validators=[validate_env_name],
                                   help_text="Name of the environment variable holding the API key (never the "
                                             "key). Empty: no key (local servers).")
    max_concurrency = models.PositiveSmallIntegerField(default=4, validators=[MinValueValidator(1),
                                                                              MaxValueValidator(256)],
                                                       help_text="Requests in flight at once, over all workers.")
    requests_per_minute = models.PositiveIntegerField(default=0, help_text="0 = no limit.")
    tokens_per_minute = models.PositiveIntegerField(default=0, help_text="0 = no limit (prompt + max tokens).")
    timeout_seconds = models.FloatField(default=120.0, validators=[MinValueValidator(1.0)])
    max_retries = models.PositiveSmallIntegerField(default=4, validators=[MaxValueValidator(20)],
                                                   help_text="Retries with backoff on 429, 5xx and timeouts.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(kind="local") | ~Q(base_url=""), name="endpoint_openai_has_url"),
        ]

    def __str__(self):
        return self.name

    def clean(self):
        if self.kind == self.Kind.OPENAI and not self.base_url:
            raise ValidationError({"base_url": "An OpenAI-compatible endpoint needs its base URL."})
        if self.kind == self.Kind.LOCAL and self.base_url:
            raise ValidationError({"base_url": "A local model has no URL: give its folder as the model."})


class ChunkedRun(models.Model):
    """What every run done in chunk tasks records (generation runs here, judge runs in judges): status,
    counters, which chunks finished, tokens, who started it and when. One definition, so both runs read,
    show and finish alike (`mark_chunk_done`)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        INCOMPLETE = "incomplete", "Finished with failures"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    FINISHED = (Status.DONE, Status.INCOMPLETE, Status.FAILED, Status.CANCELLED)

    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0, help_text="Results stored (including ones present before).")
    existing = models.PositiveIntegerField(default=0, help_text="Results already stored when the run started.")
    failed = models.PositiveIntegerField(default=0, help_text="Results that could not be obtained.")
    chunks_total = models.PositiveIntegerField(default=0)
    chunks_done = models.JSONField(default=list, help_text="Indexes of finished chunks.")
    tokens_in = models.PositiveBigIntegerField(default=0)
    tokens_out = models.PositiveBigIntegerField(default=0)
    error = models.TextField(blank=True, help_text="Why the run as a whole failed.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-created_at", "-id"]

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else 100

    @classmethod
    def mark_chunk_done(cls, run_id: int, chunk_index: int) -> bool:
        """Record a finished chunk once (a redelivered one is not counted twice); True when it was the
        run's last, so the caller finishes the run."""
        from django.db import transaction

        with transaction.atomic():
            run = cls.objects.select_for_update().get(pk=run_id)  # type: ignore[attr-defined]
            if chunk_index in run.chunks_done:
                return False
            run.chunks_done = sorted(run.chunks_done + [chunk_index])
            run.save(update_fields=["chunks_done"])
            return len(run.chunks_done) >= run.chunks_total


class GenerationRun(ChunkedRun):
    class SeedPolicy(models.TextChoices):
        PER_SAMPLE = "per_sample", "seed + sample index (reproducible, samples differ)"
        FIXED = "fixed", "the same seed for every sample"
        NONE = "none", "no seed (the server's own randomness)"

    dataset = models.ForeignKey("annotations.Dataset", on_delete=models.CASCADE, related_name="generation_runs")
    systems = models.ManyToManyField("annotations.System", related_name="generation_runs")
    k = models.PositiveSmallIntegerField(default=5, validators=[MinValueValidator(1), MaxValueValidator(100)])
    temperature = models.FloatField(default=1.0, validators=[MinValueValidator(0.0), MaxValueValidator(2.0)])
    top_p = models.FloatField(default=1.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    max_tokens = models.PositiveIntegerField(default=256, validators=[MinValueValidator(1)])
    seed_policy = models.CharField(max_length=12, choices=SeedPolicy.choices, default=SeedPolicy.PER_SAMPLE)
    seed = models.IntegerField(default=0)
    system_prompt = models.TextField(blank=True)
    prompt_template = models.TextField(default=DEFAULT_PROMPT_TEMPLATE, validators=[validate_prompt_template])
    chain_separability = models.BooleanField(default=True, help_text="Compute separability when the run completes.")
    total = models.PositiveIntegerField(default=0, help_text="instances x systems x k")
    usage_missing = models.PositiveIntegerField(default=0, help_text="Samples whose server reported no usage.")
    blocked = models.JSONField(default=dict, help_text="system id -> why none of its samples can be generated.")
    report = models.JSONField(default=dict, help_text="Empty and identical samples, per system.")
    separability_run = models.ForeignKey("separability.SeparabilityRun", null=True, blank=True,
                                         on_delete=models.SET_NULL, related_name="+")

    class Meta(ChunkedRun.Meta):
        constraints = [models.CheckConstraint(condition=Q(done__lte=F("total")), name="generation_done_within_total")]

    def __str__(self):
        return f"generation run {self.pk} on {self.dataset}"


class GenerationFailure(models.Model):
    """One sample (or a whole chunk) that could not be generated, with a reason a researcher can act on."""

    run = models.ForeignKey(GenerationRun, on_delete=models.CASCADE, related_name="failures")
    chunk_index = models.PositiveIntegerField()
    system = models.ForeignKey("annotations.System", on_delete=models.CASCADE, related_name="+")
    instance = models.ForeignKey("annotations.Instance", null=True, blank=True, on_delete=models.CASCADE,
                                 related_name="+")
    sample_index = models.PositiveIntegerField(null=True, blank=True)
    kind = models.CharField(max_length=30)
    message = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["run", "system", "instance", "sample_index"],
                                               name="generation_failure_once")]

    def __str__(self):
        return f"{self.kind}: {self.message[:80]}"


class SampleProvenance(models.Model):
    """How one generated sample was made: the run, the endpoint and the exact request, and what it cost."""

    generation = models.OneToOneField("annotations.Generation", on_delete=models.CASCADE, related_name="provenance")
    run = models.ForeignKey(GenerationRun, null=True, on_delete=models.SET_NULL, related_name="samples")
    endpoint = models.CharField(max_length=100)
    request = models.JSONField(help_text="The exact request parameters (model, messages or prompt, sampling).")
    tokens_in = models.PositiveIntegerField(null=True, blank=True)
    tokens_out = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.FloatField()
    finish_reason = models.CharField(max_length=30, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.endpoint} -> generation {self.generation_id}"
