"""The default pairwise judge prompt, modelled on MT-Bench's pairwise prompt ("pair-v2", Zheng et al. 2023,
FastChat `fastchat/llm_judge/data/judge_prompts.jsonl`), and the one function that fills a template in.

Templates use `string.Template` placeholders ($question, $answer_a, $answer_b): the texts being judged
may hold braces or percent signs, which str.format and % would read as fields. Pure Python, no Django.
"""
from __future__ import annotations

from string import Template

from generation.prompts import placeholders_problem

DEFAULT_SYSTEM_PROMPT = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants to "
    "the user question displayed below. You should choose the assistant that follows the user's instructions and "
    "answers the user's question better. Your evaluation should consider factors such as the helpfulness, "
    "relevance, accuracy, depth, creativity, and level of detail of their responses. Begin your evaluation by "
    "comparing the two responses and provide a short explanation. Avoid any position biases and ensure that the "
    "order in which the responses were presented does not influence your decision. Do not allow the length of "
    "the responses to influence your evaluation. Do not favor certain names of the assistants. Be as objective "
    "as possible. After providing your explanation, output your final verdict by strictly following this "
    'format: "[[A]]" if assistant A is better, "[[B]]" if assistant B is better, and "[[C]]" for a tie.'
)
DEFAULT_TEMPLATE = (
    "[User Question]\n$question\n\n"
    "[The Start of Assistant A's Answer]\n$answer_a\n[The End of Assistant A's Answer]\n\n"
    "[The Start of Assistant B's Answer]\n$answer_b\n[The End of Assistant B's Answer]"
)
PLACEHOLDERS = ("question", "answer_a", "answer_b")


def template_problem(template: str) -> str | None:
    """Why a template cannot be used (an unknown or missing placeholder), or None."""
    names, problem = placeholders_problem(template, PLACEHOLDERS)
    if problem:
        return problem
    missing = [p for p in ("answer_a", "answer_b") if p not in names]
    if missing:
        return f"the template must show both answers (${missing[0]} is missing)"
    return None


def render_prompt(template: str, question: str, first: str, second: str) -> str:
    """The user message for one order: `first` is shown as Assistant A."""
    return Template(template).substitute(question=question, answer_a=first, answer_b=second)
