"""A post's Markdown made into HTML that is safe to put in a page, and into plain text. Pure.

Rules:

1. Markdown is CommonMark plus tables and strikethrough (``markdown-it-py``)
   with raw HTML turned off: ``<script>`` or ``<img onerror=…>`` written in
   a post comes out as text, never as markup.
2. The HTML is then sanitised (``nh3``, the Ammonia sanitiser) with an
   allow-list: the tags CommonMark can produce, ``href`` on links, ``src``,
   ``alt`` and ``title`` on images, nothing else (no ``style``, no ``class``,
   no event handlers). Link and image URLs keep only ``http``, ``https``
   and ``mailto`` (links) or ``http``/``https`` (images) schemes, or are
   relative; ``javascript:``, ``data:``, ``vbscript:`` and the rest are
   dropped. Links get ``rel="nofollow noopener noreferrer"``. Two layers, so
   a gap in one (a parser bug, a new trick) still meets the other.
3. The plain text (what search indexes and excerpts are cut from) is the
   text of the same parse: words of paragraphs, headings, lists, code and
   link texts, no markup and no URLs.
4. ``excerpt_of`` cuts plain text at a word boundary to at most ``limit``
   characters and marks the cut with ``…``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import nh3
from markdown_it import MarkdownIt
from markdown_it.token import Token

MAX_MARKDOWN_CHARS: Final = 60_000

_PARSER: Final = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(
    ["table", "strikethrough"]
)
_TAGS: Final = frozenset(
    {
        "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "em", "strong", "s", "del",
        "code", "pre", "blockquote", "ul", "ol", "li", "a", "img",
        "table", "thead", "tbody", "tr", "th", "td",
    }
)  # fmt: skip
_ATTRIBUTES: Final = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "ol": {"start"},
}
_SCHEMES: Final = frozenset({"http", "https", "mailto"})
_CLEANER: Final = nh3.Cleaner(
    tags=set(_TAGS),
    clean_content_tags={"script", "style", "iframe", "object", "embed", "template", "noscript"},
    attributes={tag: set(names) for tag, names in _ATTRIBUTES.items()},
    link_rel="nofollow noopener noreferrer",
    url_schemes=set(_SCHEMES),
    strip_comments=True,
    set_tag_attribute_values={"img": {"loading": "lazy"}},
)
_TEXT_TOKENS: Final = frozenset({"text", "code_inline"})
_BLOCK_TEXT: Final = frozenset({"code_block", "fence"})


@dataclass(frozen=True, slots=True)
class Rendered:
    html: str
    text: str


def _image_src_ok(src: str) -> bool:
    scheme, colon, _ = src.partition(":")
    return not colon or "/" in scheme or scheme.lower() in {"http", "https"}


def _plain_text(tokens: list[Token]) -> str:
    """Rule 3: the words of every inline and code token, blocks apart by a newline."""
    parts: list[str] = []
    for token in tokens:
        if token.type == "inline":
            for child in token.children or ():
                if child.type in _TEXT_TOKENS:
                    parts.append(child.content)
                elif child.type in {"softbreak", "hardbreak"}:
                    parts.append(" ")
                elif child.type == "image":
                    parts.append(child.content)  # its alt text
            parts.append("\n")
        elif token.type in _BLOCK_TEXT:
            parts.append(token.content.rstrip("\n") + "\n")
    lines = (" ".join(line.split()) for line in "".join(parts).splitlines())
    return "\n".join(line for line in lines if line)


def _drop_unsafe_images(tokens: list[Token]) -> None:
    """Images with a ``data:`` or other non-http source become their alt text (rule 2),
    before nh3 would leave an ``<img>`` with no ``src`` behind."""
    for token in tokens:
        for i, child in enumerate(token.children or ()):
            if child.type == "image" and not _image_src_ok(str(child.attrGet("src") or "")):
                text = Token("text", "", 0)
                text.content = child.content
                assert token.children is not None
                token.children[i] = text


def render(markdown: str) -> Rendered:
    """Rules 1-3 for a post body (at most ``MAX_MARKDOWN_CHARS``, checked by the caller)."""
    tokens = _PARSER.parse(markdown)
    _drop_unsafe_images(tokens)
    raw = _PARSER.renderer.render(tokens, _PARSER.options, {})
    return Rendered(_CLEANER.clean(raw), _plain_text(tokens))


def excerpt_of(text: str, limit: int) -> str:
    """Rule 4."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-") + "…"
