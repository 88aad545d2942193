"""A lesson's test: its ``TextSpec`` and its text, from the lesson's source.

Rules:

1. Every lesson test is a ``TextSpec`` with ``lesson`` set: its personal
   bests are per lesson (``lesson-<id>``) and it reaches no leaderboard.
2. ``fixed``: the text as written (whitespace runs as one space), a words
   test of its word count.
3. ``generated`` without keys: ``typogram.texts.generate`` (the same words,
   punctuation, numbers and difficulty as any test). With ``keys``: words
   from the language's list that hold the keys most (``practice_words``);
   with ``only_keys``, words made of those keys alone, of three letters or
   more when there are enough (``MIN_KEY_WORDS`` of them at least, else the
   focus rule). Focused texts are plain words.
4. ``adaptive``: words that exercise the learner's weak keys and bigrams
   (``typogram.insights.practice_words``); a learner with no analytics yet
   gets common words.
5. A time test gets as much text as a typist at the WPM cap types in its
   seconds (``texts.words_for_seconds``).
6. Deterministic: the same source, language, seed and weaknesses give the
   same text. Loading a language's list is the only I/O (``texts.pool``).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from functools import lru_cache

from typogram import texts
from typogram.courses.model import (
    AdaptiveSource,
    FixedSource,
    GeneratedSource,
    Source,
    clean_text,
)
from typogram.insights import CANDIDATES, practice_words, word_score

MIN_KEY_WORDS = 5
MIN_KEY_WORD_CHARS = 3
KEY_WORDS_KEPT = 300  # the most frequent words made of the keys


def spec_of(source: Source, lang: str, lesson_id: str) -> texts.TextSpec:
    """Rule 1 (and the sizes of rule 2)."""
    if isinstance(source, FixedSource):
        count = len(clean_text(source.text).split(" "))
        return texts.TextSpec("words", lang, count=count, lesson=lesson_id)
    if isinstance(source, AdaptiveSource):
        return texts.TextSpec("words", lang, count=source.count, lesson=lesson_id)
    timed = source.mode == "time"
    focused = bool(source.keys.strip())
    return texts.TextSpec(
        source.mode,
        lang,
        count=None if timed else source.count,
        seconds=source.seconds if timed else None,
        punctuation=source.punctuation and not focused,
        numbers=source.numbers and not focused,
        difficulty=source.difficulty,
        lesson=lesson_id,
    )


@lru_cache(maxsize=256)
def key_words(lang: str, keys: str) -> tuple[str, ...]:
    """Rule 3: the language's most frequent words made only of ``keys`` (lower case)."""
    allowed = set(keys.lower())
    made_of = [word for word in texts.vocabulary(lang) if set(word) <= allowed]
    # Two-letter entries of a frequency list are mostly abbreviations ("dj", "kg").
    longer = [word for word in made_of if len(word) >= MIN_KEY_WORD_CHARS]
    return tuple((longer if len(longer) >= MIN_KEY_WORDS else made_of)[:KEY_WORDS_KEPT])


def build_text(
    source: Source,
    spec: texts.TextSpec,
    seed: int,
    *,
    wpm_cap: float,
    weak_keys: Sequence[str] = (),
    weak_bigrams: Sequence[str] = (),
) -> str:
    """Rules 2-6: the text of one lesson test."""
    if isinstance(source, FixedSource):
        return clean_text(source.text)
    rng = random.Random(seed)
    if isinstance(source, AdaptiveSource):
        words = texts.pool(spec.lang, "medium")
        return " ".join(practice_words(words, weak_keys, weak_bigrams, source.count, rng))
    if not source.keys.strip():
        return texts.generate(spec, seed, wpm_cap=wpm_cap)
    candidates: Sequence[str] = key_words(spec.lang, source.keys) if source.only_keys else ()
    focus = [key for key in dict.fromkeys(source.keys.lower()) if not key.isspace()]
    if len(candidates) < MIN_KEY_WORDS:
        candidates = focus_words(texts.pool(spec.lang, spec.difficulty), focus)
    return " ".join(_draw(candidates, spec, rng, wpm_cap))


def needs_loading(source: Source, lang: str) -> bool:
    """Whether ``build_text`` may read a word list first (call it off the event loop)."""
    if isinstance(source, FixedSource):
        return False
    difficulty = source.difficulty if isinstance(source, GeneratedSource) else "medium"
    return not texts.is_loaded(lang, difficulty)


def focus_words(words: Sequence[str], focus: Sequence[str]) -> list[str]:
    """Rule 3: the words that hold the focus keys most (common words when none does)."""
    scored = sorted(words, key=lambda word: -word_score(word, focus, ()))[:CANDIDATES]
    chosen = [word for word in scored if word_score(word, focus, ()) > 0]
    return chosen if len(chosen) >= 2 else list(words[:CANDIDATES])


def _draw(words: Sequence[str], spec: texts.TextSpec, rng: random.Random, cap: float) -> list[str]:
    """Words drawn at random (none twice in a row) up to the spec's size (rule 5)."""
    min_chars = texts.words_for_seconds(spec.size, cap) if spec.mode == "time" else 0
    out: list[str] = []
    length = -1
    distinct = len(set(words))
    while (len(out) < spec.size) if spec.mode == "words" else (length < min_chars):
        word = rng.choice(words)
        if out and word == out[-1] and distinct > 1:
            continue
        out.append(word)
        length += len(word) + 1
    return out
