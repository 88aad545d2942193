"""Rule 6 of ``typogram.texts``: no slurs or profanity in any generated text."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wordfreq import top_n_list, word_frequency

from typogram.texts import (
    BLOCKED_EXTRA,
    BLOCKED_STEMS,
    LANGUAGES,
    LOAD_WORDS,
    NATIVE_RATIO,
    PROFANITY_LISTS,
    TextSpec,
    blocklist,
    generate,
    is_blocked,
    is_word,
    pool,
    vocabulary,
)

_MARKS = string.punctuation + string.digits


@pytest.mark.parametrize("lang", LANGUAGES)
def test_blocked_words_in_the_raw_list_never_reach_the_vocabulary(lang: str) -> None:
    raw = {t.lower() for t in top_n_list(lang, LOAD_WORDS)}
    blocked = {w for w in raw if is_word(w, lang) and is_blocked(w, lang)}
    assert blocked, f"wordfreq's {lang} list holds blocked words; the filter must see some"
    words = set(vocabulary(lang))
    assert not blocked & words
    for difficulty in ("easy", "medium", "hard"):
        assert not any(is_blocked(w, lang) for w in pool(lang, difficulty))  # type: ignore[arg-type]


def test_every_language_is_covered_by_a_list_or_the_supplement() -> None:
    for lang in LANGUAGES:
        assert lang in PROFANITY_LISTS or lang in BLOCKED_EXTRA, lang
        assert blocklist(lang) >= BLOCKED_EXTRA.get(lang, frozenset())
    assert len(blocklist("en")) > 100  # the package's dictionary, not an empty fallback


def test_the_supplement_blocks_whole_words_and_stems_but_not_innocent_neighbours() -> None:
    for lang, words in BLOCKED_EXTRA.items():
        assert all(is_blocked(w, lang) for w in words)
    for lang, stems in BLOCKED_STEMS.items():
        assert all(is_blocked(stem + "\u0430", lang) for stem in stems)  # + Cyrillic a
    # Words that hold a root in the middle or share a beginning with one stay.
    for word in ("хлеб", "небо", "хлебать", "гребля", "страхуй", "сукно", "говорить"):
        assert not is_blocked(word, "ru"), word
    for word in ("лайнер", "дупло", "хліб", "небо", "страхування"):
        assert not is_blocked(word, "uk"), word
    assert not is_blocked("anjing", "id")  # "dog" first, an insult only in context


def test_english_swearing_is_blocked_everywhere_but_native_look_alikes_stay() -> None:
    english = blocklist("en")
    assert all(is_blocked(w, "en") for w in english)
    # Borrowed English swearing goes from other languages' text too...
    raw_sv = {t.lower() for t in top_n_list("sv", LOAD_WORDS)}
    assert {w for w in raw_sv & english if is_word(w, "sv")} - set(vocabulary("sv"))
    for lang in LANGUAGES:
        for word in set(vocabulary(lang)) & english:
            ratio = word_frequency(word, lang) / word_frequency(word, "en")
            assert ratio >= NATIVE_RATIO, (lang, word)
    # ...while a common native word that only looks like one is kept.
    for word, lang in (("retard", "fr"), ("hoe", "nl"), ("slut", "sv")):
        assert word in english
        assert word in vocabulary(lang), (word, lang)


@settings(max_examples=150, deadline=None)
@given(
    lang=st.sampled_from(LANGUAGES),
    difficulty=st.sampled_from(["easy", "medium", "hard"]),
    seed=st.integers(0, 2**62),
)
def test_no_generated_text_holds_a_blocked_word(lang: str, difficulty: str, seed: int) -> None:
    spec = TextSpec("words", lang, count=200, punctuation=True, difficulty=difficulty)  # type: ignore[arg-type]
    for token in generate(spec, seed).split(" "):
        word = token.strip(_MARKS).lower()
        assert not word or not is_blocked(word, lang), (lang, word)
