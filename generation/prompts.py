"""The prompt a generation run sends for an instance: a `string.Template` over the instance's fields.

`string.Template` ($input, $reference, $instance_id) rather than str.format: inputs hold braces and
percent signs that str.format and % would read as fields. Pure Python, no Django.
"""
from __future__ import annotations

from string import Template

DEFAULT_PROMPT_TEMPLATE = "$input"
PLACEHOLDERS = ("input", "reference", "instance_id")


def placeholders_problem(template: str, allowed: tuple[str, ...]) -> tuple[set[str], str | None]:
    """The `string.Template` placeholders a template uses, and why it cannot be filled in (not a valid
    template, or a placeholder outside `allowed`), or None. Shared with judges.prompts."""
    try:
        names = {m.group("named") or m.group("braced") for m in Template.pattern.finditer(template)
                 if m.group("named") or m.group("braced")}
        Template(template).substitute({name: "" for name in names})
    except (ValueError, KeyError) as error:
        return set(), f"not a valid template ({error}); write $$ for a literal dollar sign"
    unknown = sorted(names - set(allowed))
    if unknown:
        return names, f"unknown placeholder ${unknown[0]} (use {', '.join('$' + p for p in allowed)})"
    return names, None


def template_problem(template: str) -> str | None:
    """Why a template cannot be used (invalid, an unknown placeholder, no $input), or None."""
    names, problem = placeholders_problem(template, PLACEHOLDERS)
    if problem:
        return problem
    if "input" not in names:
        return "the template must contain $input (the instance's input)"
    return None


def render_prompt(template: str, input_text: str, reference: str = "", instance_id: str = "") -> str:
    return Template(template).substitute(input=input_text, reference=reference, instance_id=instance_id)
