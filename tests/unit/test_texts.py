from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from typogram.texts import (
    ALPHABETS,
    LANGUAGES,
    TextError,
    TextSpec,
    generate,
    is_word,
    pool,
    vocabulary,
    words_for_seconds,
)


def test_at_least_ten_languages_each_with_a_clean_vocabulary() -> None:
    assert len(LANGUAGES) >= 10
    for lang in LANGUAGES:
        words = vocabulary(lang)
        assert len(words) > 1_000, lang
        assert all(is_word(w, lang) for w in words)
        assert len(set(words)) == len(words)


def test_junk_tokens_are_filtered() -> None:
    assert not is_word("don't", "en")
    assert not is_word("3d", "en")
    assert not is_word("l", "fr")  # half of an elision
    assert is_word("à", "fr")
    assert not is_word("hello", "ru")
    assert is_word("größe", "de")


def test_the_seed_decides_the_text() -> None:
    spec = TextSpec("words", "en", count=25)
    assert generate(spec, 7) == generate(spec, 7)
    assert generate(spec, 7) != generate(spec, 8)
    assert len(generate(spec, 7).split(" ")) == 25


def test_a_time_test_outlasts_the_fastest_typist() -> None:
    text = generate(TextSpec("time", "de", seconds=60), 1, wpm_cap=300)
    assert len(text) >= words_for_seconds(60, 300) == 1500


def test_difficulty_pools() -> None:
    easy, hard = pool("en", "easy"), pool("en", "hard")
    assert max(map(len, easy)) <= 6
    assert min(map(len, hard)) >= 5
    assert set(easy) & set(vocabulary("en")[:100])


def test_punctuation_and_numbers() -> None:
    plain = generate(TextSpec("words", "en", count=100), 3)
    assert all(ch in ALPHABETS["en"] + " " for ch in plain)
    marked = generate(TextSpec("words", "en", count=100, punctuation=True, numbers=True), 3)
    assert marked[0].isupper() and marked.endswith((".", "?", "!"))
    assert any(ch.isdigit() for ch in marked) and "," in marked
    hard = generate(TextSpec("words", "en", count=100, difficulty="hard"), 3)
    assert any(ch.isdigit() for ch in hard) and hard.endswith((".", "?", "!"))


def test_categories_and_boards() -> None:
    assert TextSpec("words", "en", count=25).category == "words-25-en"
    assert TextSpec("time", "de", seconds=60).board == "time-60-de"
    special = TextSpec("time", "en", seconds=60, punctuation=True, difficulty="hard")
    assert special.category == "time-60-en-punct-hard"
    assert special.board is None
    assert TextSpec("words", "en", count=30).board is None


def test_bad_specs() -> None:
    with pytest.raises(TextError):
        generate(TextSpec("words", "xx", count=5), 1)
    with pytest.raises(TextError):
        generate(TextSpec("words", "en"), 1)
    with pytest.raises(TextError):
        generate(TextSpec("words", "en", count=0), 1)


@settings(max_examples=60)
@given(
    lang=st.sampled_from(LANGUAGES),
    count=st.integers(1, 60),
    seed=st.integers(0, 2**62),
    punctuation=st.booleans(),
    numbers=st.booleans(),
)
def test_words_mode_gives_exactly_count_words(
    lang: str, count: int, seed: int, punctuation: bool, numbers: bool
) -> None:
    spec = TextSpec("words", lang, count=count, punctuation=punctuation, numbers=numbers)
    text = generate(spec, seed)
    assert len(text.split(" ")) == count
    assert "  " not in text and text == text.strip()


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["words", "time"]),
    st.integers(1, 9999),
    st.sampled_from(["en", "de", "pt", "uk"]),
    st.booleans(),
    st.booleans(),
    st.sampled_from(["easy", "medium", "hard"]),
)
def test_a_category_names_exactly_one_spec(
    mode: str, size: int, lang: str, punct: bool, num: bool, difficulty: str
) -> None:
    spec = TextSpec(
        mode,  # type: ignore[arg-type]
        lang,
        count=size if mode == "words" else None,
        seconds=size if mode == "time" else None,
        punctuation=punct,
        numbers=num,
        difficulty=difficulty,  # type: ignore[arg-type]
    )
    assert TextSpec.from_category(spec.category) == spec


@pytest.mark.parametrize(
    "category",
    ["", "words", "words-25", "race-25-en", "words-x-en", "words-25-en-num-punct",
     "words-25-en-punct-punct", "words-25-en-medium", "words-25-en-wild", "time-00000-en"],
)  # fmt: skip
def test_anything_else_is_not_a_category(category: str) -> None:
    with pytest.raises(TextError):
        TextSpec.from_category(category)
