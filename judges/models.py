"""A judge: an LLM asked to compare two outputs, stored beside the account its verdicts are votes of; the
runs that ask it about a study's comparisons (both orders each), the answer of every (judge, comparison,
order) and the per-study prompt. docs/design.md §4.7."""
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q

from annotations.models import System
from generation.models import ChunkedRun

from .prompts import DEFAULT_SYSTEM_PROMPT, DEFAULT_TEMPLATE, template_problem
from .verdicts import Verdict


def validate_template(value: str) -> None:
    problem = template_problem(value)
    if problem:
        raise ValidationError(problem)


class Judge(models.Model):
    """A model endpoint (`generation.models.ModelEndpoint`) with the prompt it is asked; its verdicts are
    `Vote`s with source `judge` under `account` (a `judge~<name>` user,
    annotations.imports.write.get_or_create_judge_account).

    A judge without an endpoint (one imported before endpoints existed, or whose verdicts are only
    imported) may still name an OpenAI-compatible `base_url` and `model`: a run then asks that server with
    the endpoint defaults (judges.services.spec_for). The API key is never stored: `api_key_env` names the
    environment variable that holds it."""

    name = models.CharField(max_length=100, unique=True)
    endpoint = models.ForeignKey("generation.ModelEndpoint", null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="judges", help_text="The model endpoint the judge is asked through.")
    account = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="judge")
    base_url = models.URLField(blank=True, help_text="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1.")
    model = models.CharField(max_length=200, blank=True, help_text="The model name the endpoint serves.")
    system = models.ForeignKey(System, null=True, blank=True, on_delete=models.SET_NULL, related_name="judges",
                               help_text="The judge's own model when it is also evaluated (for self-preference).")
    system_prompt = models.TextField(default=DEFAULT_SYSTEM_PROMPT, blank=True)
    prompt_template = models.TextField(default=DEFAULT_TEMPLATE, validators=[validate_template],
                                       help_text="Placeholders: $question, $answer_a, $answer_b.")
    api_key_env = models.CharField(max_length=100, blank=True,
                                   help_text="Name of the environment variable holding the API key (never the key).")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.name

    @property
    def own_system_id(self) -> int | None:
        """The judge's own model among the evaluated systems: its `system`, else its endpoint's."""
        if self.system_id is not None:
            return self.system_id
        return self.endpoint.system_id if self.endpoint_id is not None and self.endpoint is not None else None


class JudgePrompt(models.Model):
    """The prompt a judge is asked in one study, instead of the judge's own (editable on the study's
    judges page). A run copies the prompt it used onto itself."""

    study = models.ForeignKey("annotations.Study", on_delete=models.CASCADE, related_name="judge_prompts")
    judge = models.ForeignKey(Judge, on_delete=models.CASCADE, related_name="study_prompts")
    system_prompt = models.TextField(blank=True)
    prompt_template = models.TextField(validators=[validate_template],
                                       help_text="Placeholders: $question, $answer_a, $answer_b.")
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["study", "judge"], name="judge_prompt_once_per_study")]

    def __str__(self):
        return f"{self.judge} prompt in {self.study}"


class JudgeRun(ChunkedRun):
    """A judge asked about every comparison of a study in both orders, filled in by chunk tasks (the run
    record of `generation.models.ChunkedRun`: the same statuses, counters, chunks and failures)."""

    study = models.ForeignKey("annotations.Study", on_delete=models.CASCADE, related_name="judge_runs")
    judge = models.ForeignKey(Judge, on_delete=models.CASCADE, related_name="runs")
    endpoint = models.ForeignKey("generation.ModelEndpoint", null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+", help_text="The endpoint asked (none: the judge's own base URL).")
    temperature = models.FloatField(default=0.0)
    max_tokens = models.PositiveIntegerField(default=1024)
    system_prompt = models.TextField(blank=True)
    prompt_template = models.TextField(validators=[validate_template])
    total = models.PositiveIntegerField(default=0, help_text="comparisons x 2 orders")
    unparseable = models.PositiveIntegerField(default=0, help_text="Stored answers without a verdict.")

    class Meta(ChunkedRun.Meta):
        constraints = [models.CheckConstraint(condition=Q(done__lte=F("total")), name="judge_run_done_within_total")]

    def __str__(self):
        return f"judge run {self.pk}: {self.judge} on {self.study}"


class JudgeFailure(models.Model):
    """One (comparison, order) that could not be asked (or a whole chunk: no comparison), with the reason."""

    run = models.ForeignKey(JudgeRun, on_delete=models.CASCADE, related_name="failures")
    chunk_index = models.PositiveIntegerField()
    comparison = models.ForeignKey("annotations.Comparison", null=True, blank=True, on_delete=models.CASCADE,
                                   related_name="+")
    first_is_a = models.BooleanField(null=True, blank=True)
    kind = models.CharField(max_length=30)
    message = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["run", "comparison", "first_is_a"],
                                               name="judge_failure_once")]

    def __str__(self):
        return f"{self.kind}: {self.message[:80]}"


class JudgeVerdict(models.Model):
    """What a judge answered about one comparison shown in one order, kept whether or not it parsed.

    Unique per (judge, comparison, order): a re-run or a redelivered chunk never asks twice. `verdict` is
    positional (judges.verdicts: `first` = the output shown first); empty when the answer named none.
    The pair of a comparison's two answers makes one `Vote` of the judge's account (services.pair_vote)."""

    judge = models.ForeignKey(Judge, on_delete=models.CASCADE, related_name="verdicts")
    comparison = models.ForeignKey("annotations.Comparison", on_delete=models.CASCADE, related_name="judge_verdicts")
    first_is_a = models.BooleanField(help_text="Whether generation A was shown first (as Assistant A).")
    run = models.ForeignKey(JudgeRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="verdicts")
    answer = models.TextField(help_text="The judge's answer, verbatim.")
    verdict = models.CharField(max_length=10, blank=True,
                               choices=[(v.value, v.value) for v in Verdict],
                               help_text="Positional verdict; empty = unparseable (never guessed).")
    shape = models.CharField(max_length=100, help_text="Which parser rule read it, or why nothing was read.")
    request = models.JSONField(default=dict, help_text="The exact request parameters.")
    tokens_in = models.PositiveIntegerField(null=True, blank=True)
    tokens_out = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    finish_reason = models.CharField(max_length=30, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["comparison_id", "-first_is_a"]
        constraints = [models.UniqueConstraint(fields=["judge", "comparison", "first_is_a"],
                                               name="judge_verdict_once_per_order")]

    def __str__(self):
        return f"{self.judge} on comparison {self.comparison_id} ({'A' if self.first_is_a else 'B'} first): " \
               f"{self.verdict or 'unparseable'}"
