"""Slugs and tags (typogram/slugs.py): rules 1-3."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from typogram.slugs import (
    MAX_SLUG_CHARS,
    SLUG,
    decode_tags,
    encode_tags,
    slug_problem,
    slugify,
    tags_problem,
)


def test_slug_rule() -> None:
    for good in ("abc", "a-b", "post-2026", "a" * 64):
        assert slug_problem(good) is None, good
    for bad in ("ab", "-abc", "abc-", "ABC", "a_b", "a b", "a.b", "ü-x", "a" * 65, "a/b", ""):
        assert slug_problem(bad) is not None, bad


def test_tags_rule() -> None:
    assert tags_problem(["a", "b-2", "x" * 32]) is None
    assert tags_problem(["A"]) and tags_problem(["a b"]) and tags_problem(["x" * 33])
    assert tags_problem(["-a"]) and tags_problem(["%"]) and tags_problem(["_"])
    assert tags_problem([str(n) for n in range(11)]) == "at most 10 tags"
    assert encode_tags(["a", "b", "a"]) == ",a,b," and decode_tags(",a,b,") == ["a", "b"]


def test_slugify_makes_slugs_from_titles() -> None:
    assert slugify("Hello, World!") == "hello-world"
    assert slugify("  Typing at 120 WPM: how?  ") == "typing-at-120-wpm-how"
    assert slugify("Español: primeros pasos") == "espanol-primeros-pasos"
    assert slugify("Русский") == "" and slugify("!!") == "" and slugify("ab") == ""
    long = slugify("word " * 40)
    assert len(long) <= MAX_SLUG_CHARS and not long.endswith("-") and SLUG.match(long)
    assert len(slugify("a" * 100)) == MAX_SLUG_CHARS


@given(st.text(max_size=200))
def test_slugify_gives_a_valid_slug_or_nothing(title: str) -> None:
    slug = slugify(title)
    assert slug == "" or SLUG.match(slug)
