"""The judges app: LLM judges beside the human annotators, and how far they agree with them.

It sits beside ranking and separability (it imports annotations and ranking; nothing below imports it).
A judge's verdicts are votes with source `judge` under the judge's own account, so they never enter the
human leaderboards; this app keeps the judge's endpoint and prompt (`Judge`) and measures the judge
against the humans (`metrics`, `services.study_judge_tables`)."""
from django.apps import AppConfig


class JudgesConfig(AppConfig):
    name = "judges"
