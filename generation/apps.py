"""The generation app: sampling the k outputs per system and instance that separability needs, from the
researcher's own models (OpenAI-compatible servers or local folders), inside the site.

It sits above annotations and separability (it writes `annotations.Generation` rows and queues a
separability run when a run completes) and below judges and dashboard, which reuse its endpoints and
show its runs. docs/design.md §6."""
from django.apps import AppConfig


class GenerationConfig(AppConfig):
    name = "generation"
