"""The leaderboard page's head-to-head table, built as one string.

A study of 100 systems has a 100 x 100 table: the template loop over its 10,000 cells (each a few lookups,
an if and two numbers) was most of the public page's 290 ms at 1,000,000 votes (bench/scale.py). The
cells come from `ranking.presenters._heatmap`; here each is one f-string, system names escaped once."""
from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


@register.simple_tag
def heatmap_body(heatmap: dict) -> SafeString:
    names: dict[str, str] = {}

    def name(value: str) -> str:
        if value not in names:
            names[value] = escape(value)
        return names[value]

    parts = []
    for row in heatmap["rows"]:
        parts.append(f'<tr>\n<th scope="row">{name(row["system"])}</th>')
        for cell in row["cells"]:
            kind = cell["kind"]
            if kind == "self":
                parts.append('<td class="self"><span aria-hidden="true">–</span>'
                             '<span class="visually-hidden">same model</span></td>')
            elif kind == "none":
                parts.append('<td class="none">never compared</td>')
            else:
                parts.append(f'<td class="rate" style="{escape(cell["style"])}">{int(cell["percent"])}%'
                             f'<span class="n">n={int(cell["count"])}</span></td>')
        parts.append("</tr>")
    return mark_safe("\n".join(parts))  # noqa: S308 - names and style escaped above, the rest are integers
