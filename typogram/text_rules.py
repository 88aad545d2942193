"""Text that cannot hide: the rules user-chosen names and messages keep.

Rules:

1. A pattern matches the whole value. Python's ``$`` also matches before a
   final newline, so ``^[a-z]+$`` accepts ``"admin\\n"``. Python-only patterns
   are written ``\\A…\\Z`` or used with ``fullmatch``; a pattern that also
   reaches OpenAPI or a browser (msgspec ``Meta(pattern=…)``) is built with
   ``whole``, whose ``(?![\\s\\S])`` means "nothing follows" in Python and in
   ECMAScript alike.
2. Usernames, display names, room names and chat text carry no character a
   reader cannot see or that reorders what they see: control characters
   (``Cc``; chat keeps ``\\n``), format characters (``Cf``: bidi embeddings,
   overrides and isolates, zero-width space and joiners, word joiner, BOM,
   soft hyphen …), line and paragraph separators, surrogates, and the
   letters that render as blank (Hangul fillers, the combining grapheme
   joiner). ``hidden_character`` names the first one found.
3. Two usernames are the same account name when their keys are equal: the
   key is NFKC_Casefold (NFKC, case-fold, NFKC again), so ``Admin``,
   ``ADMIN`` and full-width ``\\uff41\\uff44\\uff4d\\uff49\\uff4e`` share one key.
"""

from __future__ import annotations

import unicodedata
from typing import Final

HIDDEN_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
# Letters and marks that draw nothing: fillers a name could hide behind.
BLANK_CHARACTERS: Final = frozenset({"\u034f", "\u115f", "\u1160", "\u3164", "\uffa0", "\u2800"})


def whole(pattern: str) -> str:
    """``pattern`` anchored to the whole value, portable to ECMAScript (rule 1)."""
    return rf"^(?:{pattern})(?![\s\S])"


def hidden_character(text: str, *, allow_newlines: bool = False) -> str | None:
    """The first character of ``text`` that rule 2 refuses, as ``U+XXXX``; ``None`` if clean.

    Clean text, the usual case (every chat message), is told in C: a printable
    string holds no ``Cc``/``Cf``/``Cs``/``Zl``/``Zp`` character (``str.isprintable``
    refuses all "Other" and "Separator" categories but the space), and the blank
    letters are not ASCII."""
    if text.isprintable() and (text.isascii() or BLANK_CHARACTERS.isdisjoint(text)):
        return None
    return walk_hidden(text, allow_newlines=allow_newlines)


def walk_hidden(text: str, *, allow_newlines: bool = False) -> str | None:
    """``hidden_character`` one character at a time (what its fast path must agree with)."""
    for char in text:
        if char == "\n" and allow_newlines:
            continue
        if unicodedata.category(char) in HIDDEN_CATEGORIES or char in BLANK_CHARACTERS:
            return f"U+{ord(char):04X}"
    return None


def visible_text_problem(text: str, *, allow_newlines: bool = False) -> str | None:
    """Why ``text`` is refused under rule 2, for ``fields.<name>``; ``None`` when it is not."""
    found = hidden_character(text, allow_newlines=allow_newlines)
    if found is None:
        return None
    allowed = " (newlines are fine)" if allow_newlines else ""
    return f"contains an invisible or control character ({found}){allowed}"


def username_key(username: str) -> str:
    """The key two usernames collide on (rule 3)."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", username).casefold())
