"""The text a reader sees in an HTML fragment, for metadata that services hand out as HTML.

Wikimedia Commons' ``extmetadata`` (and Openverse, which indexes it verbatim) carries titles,
authors and descriptions as HTML: the Artwork template adds hidden Wikidata bookkeeping
(``<div style="display: none;">label QS:Len,"…"</div>``) and multi-language blocks meet without
a space between them. Stripping tags with a regular expression keeps the hidden text and glues
words together; this walks the parsed tree (selectolax's lexbor parser, already a dependency for
``web_page``), drops hidden elements and puts a space where a block ends.
"""

from __future__ import annotations

from selectolax.lexbor import LexborHTMLParser, LexborNode

# Elements whose boundaries separate words (HTML's block-level and line-breaking elements).
BLOCKS = frozenset({
    "address", "article", "aside", "blockquote", "br", "dd", "details", "dialog", "div", "dl", "dt", "fieldset",
    "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav",
    "ol", "p", "pre", "section", "summary", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
})  # fmt: skip
SKIP = frozenset({"script", "style", "template", "noscript", "head"})


def _hidden(node: LexborNode) -> bool:
    attrs = node.attributes
    if "hidden" in attrs or attrs.get("aria-hidden") == "true":
        return True
    style = (attrs.get("style") or "").replace(" ", "").lower()
    return "display:none" in style or "visibility:hidden" in style


def _walk(node: LexborNode, out: list[str]) -> None:
    for child in node.iter(include_text=True):
        if child.tag == "-text":
            out.append(child.text(deep=False))
            continue
        if child.tag in SKIP or _hidden(child):
            continue
        block = child.tag in BLOCKS
        if block:
            out.append(" ")
        _walk(child, out)
        if block:
            out.append(" ")


def visible_text(value: object) -> str | None:
    """The visible words of an HTML fragment, spaces collapsed; None when nothing is left."""
    if value is None:
        return None
    text = str(value)
    if "<" in text or "&" in text:
        body = LexborHTMLParser(f"<body>{text}</body>").body
        parts: list[str] = []
        if body is not None:
            _walk(body, parts)
        text = "".join(parts)
    return " ".join(text.split()) or None
