"""The query sanitiser of the search port (typogram/search.py): rules 1-4."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from typogram.search import (
    MAX_TERM_CHARS,
    MAX_TERMS,
    MIN_TERM_CHARS,
    STOPWORDS,
    boolean_query,
    fts5_query,
    terms,
)

_SAFE_TERM = re.compile(r"^[^\W_]+$")


def test_terms_are_lower_case_words_of_any_script() -> None:
    assert terms("Home-Row basics!") == ("home", "row", "basics")
    assert terms("Español: primeros pasos") == ("español", "primeros", "pasos")
    assert terms("Русский язык") == ("русский", "язык")


def test_operators_quotes_and_wildcards_are_separators() -> None:
    assert terms('+speed -"building" (drills)* ~x @3 %%% _under_ a%b') == (
        "speed",
        "building",
        "drills",
        "under",
    )
    assert terms("100% OR 1=1; DROP TABLE courses; --") == ("100", "drop", "table", "courses")


def test_short_words_stopwords_and_repeats_are_dropped() -> None:
    assert terms("the art of it") == ("art",)
    assert terms("a an the") == ()
    assert terms("row ROW Row rows") == ("row", "rows")
    assert terms("") == ()


def test_long_queries_are_bounded() -> None:
    assert len(terms("word " * 10_000)) == 1
    many = " ".join(f"term{i:03d}" for i in range(50))
    assert len(terms(many)) == MAX_TERMS
    assert terms("x" * 5000) == ("x" * MAX_TERM_CHARS,)


@given(st.text(max_size=400))
def test_any_input_gives_safe_terms(query: str) -> None:
    found = terms(query)
    assert len(found) <= MAX_TERMS and len(set(found)) == len(found)
    for term in found:
        assert _SAFE_TERM.match(term), term
        assert MIN_TERM_CHARS <= len(term) <= MAX_TERM_CHARS and term not in STOPWORDS
    boolean = boolean_query(found)
    assert not set(boolean) & set('+-<>()~"@%')
    assert fts5_query(found).count('"') == 2 * len(found)


def test_engine_queries() -> None:
    assert boolean_query(("home", "row")) == "home* row*"
    assert fts5_query(("home", "row")) == '"home"* OR "row"*'
    assert boolean_query(()) == "" and fts5_query(()) == ""
