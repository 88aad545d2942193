# ruff: noqa: RUF001  (Cyrillic word lists: their letters only look like Latin ones)
"""Test texts from real word-frequency data (the ``wordfreq`` package).

Rules:

1. A text is a function of its ``TextSpec`` and a seed: ``generate(spec,
   seed)`` is deterministic (``random.Random(seed)``), so a stored seed
   regenerates the text a result was typed on.
2. Words come from ``wordfreq.top_n_list`` and are kept only when every
   character is in the language's alphabet: no digits, apostrophes,
   abbreviations or tokens from other scripts. One-letter tokens are kept
   only when they are real words of that language (French ``l`` and ``d``
   are halves of elisions, not words).
3. Difficulty picks the pool: ``easy`` the most common short words,
   ``medium`` the common vocabulary, ``hard`` rarer and longer words, and
   hard always adds punctuation and numbers.
4. A time test gets at least as many characters as a typist at the WPM cap
   types in its seconds, so nobody runs out of text.
5. The only I/O is loading a language's list, which is cached in a bounded
   LRU (``functools.lru_cache``): a process keeps at most ``CACHED_LISTS``.
   Word lists ship inside the wordfreq package and are never committed here.
6. No slurs or profanity: ``vocabulary`` drops every word ``is_blocked``
   names, once per language, so no pool, test, race, challenge or practice
   text can hold one. Blocked are the words of the language's dictionary in
   the ``glin-profanity`` package (whole words, case-folded, with its
   accent-folded aliases); the words of its English dictionary too, since
   other languages' text borrows English swearing, unless the word is at
   least ``NATIVE_RATIO`` times as frequent in the language as in English
   (a native word that merely looks English: French ``retard``, Dutch
   ``hoe``, Swedish ``slut``); and ``BLOCKED_EXTRA``/``BLOCKED_STEMS`` for
   what the package lacks (no list for ``uk`` and ``id``, a transliterated
   one for ``ru``). A seed therefore regenerates its text only under the
   same wordfreq and glin-profanity data.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

Mode = Literal["words", "time"]
Difficulty = Literal["easy", "medium", "hard"]

LOAD_WORDS = 8_000
CACHED_LISTS = 16

# Lower-case alphabets; a word is kept when all its characters are in its language's set.
_LATIN = "abcdefghijklmnopqrstuvwxyz"
ALPHABETS: dict[str, str] = {
    "en": _LATIN,
    "es": _LATIN + "áéíóúüñ",
    "fr": _LATIN + "àâæçéèêëîïôœùûüÿ",
    "de": _LATIN + "äöüß",
    "it": _LATIN + "àèéìíîòóùú",
    "pt": _LATIN + "áâãàçéêíóôõú",
    "nl": _LATIN + "éëïöü",
    "pl": "aąbcćdeęfghijklłmnńoóprsśtuwyzźż",
    "ru": "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
    "tr": "abcçdefgğh\u0131ijklmnoöprsştuüvyz",  # \u0131: dotless i
    "sv": _LATIN + "åäö",
    "fi": _LATIN + "åäö",
    "cs": _LATIN + "áčďéěíňóřšťúůýž",
    "uk": "абвгґдеєжзиіїйклмнопрстуфхцчшщьюя",
    "id": _LATIN,
}
ONE_LETTER_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset("a"),
    "es": frozenset("ayoeu"),
    "fr": frozenset({"a", "à", "y"}),
    "it": frozenset({"a", "e", "è", "i", "o"}),
    "pt": frozenset({"a", "e", "o", "é"}),
    "pl": frozenset("aiouwz"),
    "ru": frozenset("авиксоуя"),
    "cs": frozenset("aikosuvz"),
    "uk": frozenset("авійзуоя"),
    "sv": frozenset({"i", "å", "ö"}),
}
LANGUAGES: tuple[str, ...] = tuple(ALPHABETS)

# Rule 6. glin-profanity's dictionary per language (it has none for uk and id).
PROFANITY_LISTS: dict[str, str] = {
    "en": "english", "es": "spanish", "fr": "french", "de": "german", "it": "italian",
    "pt": "portuguese", "nl": "dutch", "pl": "polish", "ru": "russian", "tr": "turkish",
    "sv": "swedish", "fi": "finnish", "cs": "czech",
}  # fmt: skip
NATIVE_RATIO = 20.0
# The obscene roots of Russian and Ukrainian mat (with the verb prefixes they
# take) and the commonest Indonesian obscenities and insults: whole words in
# BLOCKED_EXTRA, beginnings of words in BLOCKED_STEMS. Kept short on purpose;
# a root that also starts innocent words is listed as whole words instead.
BLOCKED_EXTRA: dict[str, frozenset[str]] = {
    "ru": frozenset({"сука", "суки", "суку", "сукой", "бля", "жопа", "жопу", "жопы"}),
    "uk": frozenset(
        {"сука", "суки", "суку", "сукою", "бля", "лайно", "лайна", "дупа", "дупу", "дупи",
         "дупою", "срака", "сраку", "сраки"}
    ),
    "id": frozenset(
        {"kontol", "memek", "ngentot", "entot", "bangsat", "bajingan", "jancuk", "tai",
         "tolol", "goblok", "brengsek", "keparat", "pelacur", "lonte", "perek", "sialan"}
    ),
}  # fmt: skip
BLOCKED_STEMS: dict[str, tuple[str, ...]] = {
    "ru": (
        "хуй", "хуе", "хуё", "хуя", "нахуй", "нахуя", "похуй", "охуе", "охуи", "пизд",
        "распизд", "спизд", "бляд", "блят", "ебан", "ебат", "ебал", "ебну", "ёб", "заеб",
        "выеб", "наеб", "уеб", "съеб", "отъеб", "доеб", "поеб", "мудак", "мудил", "пидор",
        "пидар", "гандон", "залуп", "шлюх", "сучк", "сучар", "говн", "дерьм",
    ),
    "uk": (
        "хуй", "хує", "хуї", "хуя", "нахуй", "похуй", "пизд", "бляд", "блят", "їба", "їбу",
        "єба", "заїб", "виїб", "наїб", "мудак", "мудил", "підор", "підар", "гандон",
        "залуп", "шльон", "сучк", "гівн",
    ),
}  # fmt: skip
# Tests with a leaderboard of their own (plain options only): ``words-25-en``…
BOARD_TESTS = frozenset({("words", 25), ("words", 50), ("time", 15), ("time", 60)})

_SENTENCE_ENDS = (".", ".", ".", "?", "!")
_INNER_MARKS = (",", ",", ",", ";", ":")


class TextError(ValueError):
    """A spec no text can be made for (unknown language, bad sizes)."""


@dataclass(frozen=True, slots=True)
class TextSpec:
    mode: Mode
    lang: str = "en"
    count: int | None = None  # words mode: how many words
    seconds: int | None = None  # time mode: the test's clock
    punctuation: bool = False
    numbers: bool = False
    difficulty: Difficulty = "medium"
    # A course lesson's test (``typogram.courses``): its own personal-best category, no board.
    lesson: str | None = None

    @property
    def size(self) -> int:
        """The words count or the seconds, whichever the mode uses."""
        value = self.count if self.mode == "words" else self.seconds
        if value is None:
            raise TextError(
                f"a {self.mode} test needs {'count' if self.mode == 'words' else 'seconds'}"
            )
        return value

    @property
    def category(self) -> str:
        """Personal-best category: ``words-25-en``, ``time-60-de-punct-num-hard``…,
        ``lesson-<lesson id>`` for a lesson's test."""
        if self.lesson is not None:
            return f"lesson-{self.lesson}"
        parts = [self.mode, str(self.size), self.lang]
        parts += ["punct"] if self.punctuation else []
        parts += ["num"] if self.numbers else []
        parts += [self.difficulty] if self.difficulty != "medium" else []
        return "-".join(parts)

    @classmethod
    def from_category(cls, category: str) -> TextSpec:
        """The spec a ``category`` names (its inverse); ``TextError`` for any other string."""
        mode, _, rest = category.partition("-")
        size, _, rest = rest.partition("-")
        lang, *options = rest.split("-")
        if mode not in ("words", "time") or not size.isdigit() or not 0 < len(size) <= 4:
            raise TextError(f"not a category: {category!r}")
        difficulty = options[-1] if options and options[-1] in ("easy", "hard") else "medium"
        spec = cls(
            mode,  # type: ignore[arg-type]
            lang,
            count=int(size) if mode == "words" else None,
            seconds=int(size) if mode == "time" else None,
            punctuation="punct" in options,
            numbers="num" in options,
            difficulty=difficulty,  # type: ignore[arg-type]
        )
        if spec.category != category:  # options out of order, repeated or unknown
            raise TextError(f"not a category: {category!r}")
        return spec

    @property
    def board(self) -> str | None:
        """The leaderboard this test counts for, or ``None`` (options change the game)."""
        if self.lesson is not None:  # a lesson's text is no race against everyone
            return None
        plain = not (self.punctuation or self.numbers) and self.difficulty == "medium"
        return self.category if plain and (self.mode, self.size) in BOARD_TESTS else None


def is_word(token: str, lang: str) -> bool:
    alphabet = ALPHABETS[lang]
    if not token or any(ch not in alphabet for ch in token):
        return False
    return len(token) > 1 or token in ONE_LETTER_WORDS.get(lang, frozenset())


@lru_cache(maxsize=CACHED_LISTS)
def vocabulary(lang: str) -> tuple[str, ...]:
    """The language's words, most frequent first, filtered to its alphabet (cached)."""
    if lang not in ALPHABETS:
        raise TextError(f"unsupported language {lang!r}")
    from wordfreq import top_n_list  # loaded lazily: the package reads its data files on import

    words: list[str] = []
    seen: set[str] = set()
    for token in top_n_list(lang, LOAD_WORDS):
        word = token.lower()
        if word not in seen and is_word(word, lang) and not is_blocked(word, lang):
            seen.add(word)
            words.append(word)
    return tuple(words)


@lru_cache(maxsize=CACHED_LISTS + 1)
def blocklist(lang: str) -> frozenset[str]:
    """The whole words rule 6 blocks in ``lang`` outright (lower case), loaded once."""
    from glin_profanity import Filter  # reads its dictionaries on first use

    words = BLOCKED_EXTRA.get(lang, frozenset())
    if lang in PROFANITY_LISTS:
        words |= frozenset(Filter({"languages": [PROFANITY_LISTS[lang]]}).words)
    return words


def is_blocked(word: str, lang: str) -> bool:
    """Rule 6: ``word`` (lower case) is a slur or profanity in ``lang``."""
    if word in blocklist(lang) or word.startswith(BLOCKED_STEMS.get(lang, ())):
        return True
    if word not in blocklist("en"):
        return False
    if lang == "en":
        return True
    from wordfreq import word_frequency

    return word_frequency(word, lang) < NATIVE_RATIO * word_frequency(word, "en")


# (lang, difficulty) pools built in this process. Both caches hold every
# language (CACHED_LISTS >= len(ALPHABETS)), so a built pool stays built.
_BUILT: set[tuple[str, str]] = set()


def is_loaded(lang: str, difficulty: Difficulty) -> bool:
    """True when ``generate`` for this pair needs no I/O (microseconds, fine on an event loop)."""
    return (lang, difficulty) in _BUILT


@lru_cache(maxsize=CACHED_LISTS * 3)
def pool(lang: str, difficulty: Difficulty) -> tuple[str, ...]:
    """The words a difficulty draws from."""
    chosen = _pool(lang, difficulty)
    _BUILT.add((lang, difficulty))
    return chosen


def _pool(lang: str, difficulty: Difficulty) -> tuple[str, ...]:
    words = vocabulary(lang)
    if difficulty == "easy":
        chosen = [w for w in words[:400] if len(w) <= 6]
    elif difficulty == "medium":
        chosen = list(words[:2_000])
    else:
        chosen = [w for w in words[500:] if len(w) >= 5]
    if len(chosen) < 50:  # a thin list still gives a usable test
        chosen = list(words[:2_000])
    return tuple(chosen)


def words_for_seconds(seconds: int, wpm_cap: float) -> int:
    """Characters a typist at the cap types in ``seconds`` (a WPM word is 5 characters)."""
    return math.ceil(seconds * wpm_cap * 5 / 60)


def generate(spec: TextSpec, seed: int, *, wpm_cap: float = 300.0) -> str:
    """The test text for ``spec``; the same spec and seed always give the same text."""
    if spec.lang not in ALPHABETS:
        raise TextError(f"unsupported language {spec.lang!r}")
    if spec.size < 1:
        raise TextError("a test needs at least one word or second")
    rng = random.Random(seed)
    words = pool(spec.lang, spec.difficulty)
    hard = spec.difficulty == "hard"
    punctuation, numbers = spec.punctuation or hard, spec.numbers or hard
    min_chars = words_for_seconds(spec.size, wpm_cap) if spec.mode == "time" else 0
    out: list[str] = []
    length = -1  # no space before the first word
    sentence_left = rng.randint(4, 12)
    previous = ""
    while (len(out) < spec.size) if spec.mode == "words" else (length < min_chars):
        word = rng.choice(words)
        if word == previous:  # "the the" reads like a typo in the test itself
            continue
        previous = word
        if numbers and rng.random() < 0.1:
            word = str(rng.randint(0, 10 ** rng.randint(1, 4) - 1))
        if punctuation:
            word, sentence_left = _punctuate(word, rng, sentence_left, first=not out)
        out.append(word)
        length += len(word) + 1
    if punctuation and out and out[-1][-1] not in ".?!":
        out[-1] = out[-1].rstrip(",;:") + "."
    return " ".join(out)


def _punctuate(word: str, rng: random.Random, left: int, *, first: bool) -> tuple[str, int]:
    """Capitalise sentence starts and end sentences; returns the word and words left."""
    if first or left == 0:
        word = word[:1].upper() + word[1:]
        left = rng.randint(4, 12)
    left -= 1
    if left == 0:
        return word + rng.choice(_SENTENCE_ENDS), 0
    if rng.random() < 0.12:
        return word + rng.choice(_INNER_MARKS), left
    return word, left
