"""Study instructions are Markdown written by researchers and shown to annotators: render it, then let
only harmless HTML through (nh3), so a pasted <script> or javascript: link never reaches a browser.

Nothing in the instructions may make the annotator's browser fetch from elsewhere: an image on a
third-party host tells that host every annotator's address and when they worked. Images are kept only
when they come from this site (a path such as /static/...); the Content-Security-Policy's `img-src`
says the same to the browser."""
from __future__ import annotations

from functools import lru_cache

import markdown as md
import nh3
from django.utils.safestring import SafeString, mark_safe

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "div", "dl", "dt", "em", "h1", "h2", "h3", "h4",
    "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p", "pre", "s", "span", "strong", "sub", "sup", "table",
    "tbody", "td", "th", "thead", "tr", "ul",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "abbr": {"title"},
                      "td": {"align"}, "th": {"align"}}


def is_same_site_path(url: str) -> bool:
    """"/static/x.png" yes; "https://...", "//host/x.png", "/\\host/x.png", "data:..." no."""
    url = url.strip()
    return url.startswith("/") and not url.startswith(("//", "/\\"))


def _keep_attribute(tag: str, attribute: str, value: str) -> str | None:
    if tag == "img" and attribute == "src" and not is_same_site_path(value):
        return None
    return value


# Both renderers are pure functions of the text, and the annotator page renders the same texts again and
# again (the study's instructions on every item, each output in every pair it belongs to): Markdown and
# nh3 were 9.6% of the server's CPU per vote cycle (bench/peers --profile-cpu). A per-process LRU keeps
# the last few thousand; the SafeString it returns is an immutable str, safe to share.
RENDER_CACHE_SIZE = 2048


@lru_cache(maxsize=RENDER_CACHE_SIZE)
def render_markdown(text: str) -> SafeString:
    html = md.markdown(text or "", extensions=["extra", "sane_lists"], output_format="html")
    clean = nh3.clean(html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, attribute_filter=_keep_attribute,
                      url_schemes={"http", "https", "mailto"}, link_rel="noopener noreferrer nofollow")
    return mark_safe(clean)  # noqa: S308 - sanitised by nh3 just above


OUTPUT_TAGS = ALLOWED_TAGS - {"img"}  # an output never makes the browser fetch anything


@lru_cache(maxsize=RENDER_CACHE_SIZE)
def render_output(text: str) -> SafeString:
    """A model's output as an annotator sees it when the study shows Markdown: headings, lists, tables and
    code blocks (monospaced, in <pre>) rendered; raw HTML and images in the output reduced to text."""
    html = md.markdown(text or "", extensions=["extra", "sane_lists"], output_format="html")
    clean = nh3.clean(html, tags=OUTPUT_TAGS, attributes={"a": {"href", "title"}, "td": {"align"}, "th": {"align"}},
                      url_schemes={"http", "https", "mailto"}, link_rel="noopener noreferrer nofollow")
    return mark_safe(clean)  # noqa: S308 - sanitised by nh3 just above
