"""Number formatting for the dashboard templates (a dash where a value is undefined)."""
import math

from django import template
from django.utils.html import escape
from django.utils.safestring import mark_safe

register = template.Library()

DASH = "—"


def _missing(value) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


@register.filter
def num(value, digits=3):
    if _missing(value):
        return DASH
    return f"{float(value):.{int(digits)}f}"


@register.filter
def pct(value, digits=0):
    """A share in [0, 1] as a percentage."""
    if _missing(value):
        return DASH
    return f"{100 * float(value):.{int(digits)}f}%"


@register.filter
def seconds(value):
    if _missing(value):
        return DASH
    value = float(value)
    if value < 90:
        return f"{value:.1f} s"
    minutes, secs = divmod(int(round(value)), 60)
    if minutes < 90:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@register.filter
def signed(value):
    if _missing(value):
        return DASH
    return f"+{value}" if value > 0 else str(value)


@register.filter
def absolute(value):
    return DASH if _missing(value) else abs(value)


@register.filter
def pvalue(value):
    """p-values: four decimals, or scientific notation when that would read 0.0000."""
    if _missing(value):
        return DASH
    value = float(value)
    return f"{value:.1e}" if 0 < value < 1e-4 else f"{value:.4f}"


@register.simple_tag
def pair_options(pairs, selected=None):
    """The separability page's <option> per system pair, as one string: a dataset of 100 systems has up to
    4,950 pairs, and the template loop over them was half the page's 300 ms, format_html_join still 150 ms
    (bench/scale.py). Each system name is escaped once (the same few names recur in every pair); keys and
    counts are integers."""
    chosen = selected["key"] if selected else None
    names: dict[str, str] = {}

    def name(value: str) -> str:
        if value not in names:
            names[value] = escape(value)
        return names[value]

    return mark_safe("".join(  # noqa: S308 - every text part is escaped above, the rest are integers
        f'<option value="{escape(p["key"])}"{" selected" if p["key"] == chosen else ""}>{name(p["system_a"])} vs '
        f'{name(p["system_b"])} ({int(p["defined"])}/{int(p["units"])} defined)</option>' for p in pairs))
