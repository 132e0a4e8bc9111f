"""A judge: an LLM asked to compare two outputs, stored beside the account its verdicts are votes of."""
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from annotations.models import System

from .prompts import DEFAULT_SYSTEM_PROMPT, DEFAULT_TEMPLATE, template_problem


def validate_template(value: str) -> None:
    problem = template_problem(value)
    if problem:
        raise ValidationError(problem)


class Judge(models.Model):
    """An OpenAI-compatible endpoint and model with the prompt it is asked; its verdicts are `Vote`s with
    source `judge` under `account` (a `judge~<name>` user, annotations.imports.write.get_or_create_judge_account).

    The API key is never stored: `api_key_env` names the environment variable that holds it."""

    name = models.CharField(max_length=100, unique=True)
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
