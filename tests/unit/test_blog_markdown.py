"""Markdown to safe HTML (typogram/blog/markdown.py): rules 1-4, and the XSS corpus."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.xss_payloads import RAW_HTML, SCHEMES, markdown_payloads
from typogram.blog.markdown import excerpt_of, render

ALLOWED = {
    "p": set(), "br": set(), "hr": set(), "h1": set(), "h2": set(), "h3": set(), "h4": set(),
    "h5": set(), "h6": set(), "em": set(), "strong": set(), "s": set(), "del": set(),
    "code": set(), "pre": set(), "blockquote": set(), "ul": set(), "ol": {"start"},
    "li": set(), "a": {"href", "title", "rel"}, "img": {"src", "alt", "title", "loading"},
    "table": set(), "thead": set(), "tbody": set(), "tr": set(), "th": set(), "td": set(),
}  # fmt: skip
_SCHEME = re.compile(r"^([a-z][a-z0-9+.\-]*):", re.IGNORECASE)
_IGNORED_BY_BROWSERS = re.compile(r"[\x00-\x20\u200b]")


class Elements(HTMLParser):
    """Every start tag with its attributes, as a browser's tokenizer would see them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, {name: value or "" for name, value in attrs}))


def elements(markup: str) -> list[tuple[str, dict[str, str]]]:
    parser = Elements()
    parser.feed(markup)
    parser.close()
    return parser.found


def url_scheme(url: str) -> str | None:
    """The scheme a browser would use for ``url`` (an attribute value the parser has
    already decoded once, as a browser does; whitespace and control characters ignored),
    or ``None`` for a relative URL."""
    cleaned = _IGNORED_BY_BROWSERS.sub("", url)
    match = _SCHEME.match(cleaned)
    return match.group(1).lower() if match else None


def assert_inert(markup: str) -> None:
    for tag, attrs in elements(markup):
        assert tag in ALLOWED, f"<{tag}> in {markup!r}"
        extra = set(attrs) - ALLOWED[tag]
        assert not extra, f"{extra} on <{tag}> in {markup!r}"
        for name in ("href", "src"):
            if name in attrs:
                scheme = url_scheme(attrs[name])
                allowed = {"http", "https", "mailto"} if name == "href" else {"http", "https"}
                assert scheme is None or scheme in allowed, f"{name}={attrs[name]!r}"
    lowered = markup.lower()
    for needle in ("<script", "<iframe", "<svg", "<style", "<object", "<embed"):
        assert needle not in lowered, f"{needle} in {markup!r}"


@pytest.mark.parametrize("payload", markdown_payloads())
def test_every_payload_of_the_corpus_renders_inert(payload: str) -> None:
    rendered = render(payload)
    assert_inert(rendered.html)


def test_the_corpus_is_broad() -> None:
    corpus = markdown_payloads()
    assert len(corpus) > 150 and len(RAW_HTML) > 30 and len(SCHEMES) > 15


def test_raw_html_is_shown_as_text() -> None:
    out = render("Hello <b>bold</b> <script>alert(1)</script>").html
    assert "&lt;b&gt;bold&lt;/b&gt;" in out and "&lt;script&gt;" in out


def test_commonmark_tables_and_strikethrough_render() -> None:
    out = render("# T\n\n*a* **b** ~~c~~ `d`\n\n| x | y |\n|---|--:|\n| 1 | 2 |\n\n1. one\n").html
    for piece in ("<h1>T</h1>", "<em>a</em>", "<strong>b</strong>", "<s>c</s>", "<code>d</code>",
                  "<table>", "<td>2</td>", "<ol>", "<li>one</li>"):  # fmt: skip
        assert piece in out, piece
    assert "style" not in out  # column alignment is dropped with every style attribute


def test_links_keep_safe_urls_with_rel_and_images_are_lazy() -> None:
    out = render(
        "[a](https://example.com/x?y=1&z=2) [b](mailto:hi@example.com) [c](/blog/other) "
        '![d](https://cdn.example.com/d.png "D") ![e](data:image/png;base64,AAAA)'
    ).html
    assert '<a href="https://example.com/x?y=1&amp;z=2" rel="nofollow noopener noreferrer">' in out
    assert 'href="mailto:hi@example.com"' in out and 'href="/blog/other"' in out
    assert '<img src="https://cdn.example.com/d.png" alt="d" title="D" loading="lazy">' in out
    assert "data:" not in out and " e" in out  # an unsafe image leaves its alt text


def test_plain_text_has_words_not_markup_or_urls() -> None:
    text = render(
        "# Title\n\nSome *emphasis* and a [link text](https://example.com/secret-url).\n\n"
        "- item one\n- item two\n\n```\ncode here\n```\n![alt words](https://e.com/i.png)"
    ).text
    assert text.splitlines() == [
        "Title", "Some emphasis and a link text.", "item one", "item two", "code here",
        "alt words",
    ]  # fmt: skip
    assert "secret-url" not in text and "*" not in text


def test_excerpt_cuts_at_a_word() -> None:
    assert excerpt_of("short  text\nhere", 40) == "short text here"
    cut = excerpt_of("alpha beta gamma delta epsilon", 20)
    assert cut == "alpha beta gamma…" and len(cut) <= 20
    assert excerpt_of("x" * 50, 10) == "x" * 9 + "…"


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            ["<", ">", "\"", "'", "&", "#", ";", ":", "(", ")", "[", "]", "!", "`", "*", "_",
             "\n", " ", "\t", "=", "/", "\\", "javascript", "script", "on", "error", "img",
             "src", "href", "a", "svg", "data", "alert(1)", "&#x6A;", "http", "x"]
        ),
        max_size=60,
    ).map("".join)
)  # fmt: skip
def test_random_markdown_never_yields_active_content(markdown: str) -> None:
    rendered = render(markdown)
    assert_inert(rendered.html)
    assert isinstance(rendered.text, str)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_text_renders(markdown: str) -> None:
    assert_inert(render(markdown).html)
