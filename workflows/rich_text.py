"""Markdown people write (policy texts, case comments) as HTML that is safe to show.

Rendered by ``markdown``, then cleaned by nh3 against an allow-list: links, tables,
lists and emphasis survive; scripts, styles, event handlers and raw HTML do not.
"""

import re
from functools import lru_cache

import markdown as markdown_lib
import nh3

# Links, tables and lists, never scripts or styles.
ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "dl", "dt", "em", "h1", "h2",
    "h3", "h4", "h5", "h6", "hr", "i", "li", "ol", "p", "pre", "strong", "sub", "sup",
    "table", "tbody", "td", "th", "thead", "tr", "ul",
}

_HEADING = re.compile(r"<(/?)h([1-6])\b")


# A pure function of its text: the same policy shown on every case page of its use case,
# and a case's comments on each view of it, are rendered once per process.
@lru_cache(maxsize=256)
def sanitised_html(text: str, *, heading_offset: int = 0) -> str:
    """``text`` (Markdown) as cleaned HTML. ``heading_offset`` moves its headings below
    those of the page section it sits in (2: a ``#`` becomes an ``<h3>``)."""
    html = markdown_lib.markdown(text or "", extensions=["tables", "sane_lists"])
    if heading_offset:
        html = _HEADING.sub(lambda m: f"<{m[1]}h{min(int(m[2]) + heading_offset, 6)}", html)
    return nh3.clean(html, tags=ALLOWED_TAGS, link_rel="noopener noreferrer nofollow")
