"""``typogram.text_rules``: whole-value patterns, hidden characters, username keys."""

from __future__ import annotations

import ast
import re
import unicodedata
from pathlib import Path

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from typogram.protocol import ChatSend, ProtocolError, decode
from typogram.text_rules import (
    BLANK_CHARACTERS,
    HIDDEN_CATEGORIES,
    hidden_character,
    username_key,
    visible_text_problem,
    walk_hidden,
    whole,
)

ROOT = Path(__file__).resolve().parents[2]
HIDDEN = st.characters(categories=sorted(HIDDEN_CATEGORIES)).filter(lambda c: c != "\n")
VISIBLE = st.characters(
    categories=["L", "M", "N", "P", "S", "Zs"], exclude_characters=sorted(BLANK_CHARACTERS)
)


@given(st.from_regex(r"[A-Za-z0-9_]{1,20}", fullmatch=True), st.sampled_from(["\n", "\r\n", " "]))
def test_a_whole_pattern_refuses_anything_after_the_value(value: str, tail: str) -> None:
    pattern = whole(r"[A-Za-z0-9_]+")
    assert re.search(pattern, value)
    assert not re.search(pattern, value + tail)
    assert not re.search(pattern, tail + value)


def test_msgspec_patterns_built_with_whole_refuse_a_trailing_newline() -> None:
    decoder = msgspec.json.Decoder(ChatSend)
    with pytest.raises(msgspec.ValidationError):
        decoder.decode(b'{"room": "lobby\\n", "text": "hi"}')


@given(st.text(VISIBLE, max_size=40), HIDDEN, st.text(VISIBLE, max_size=40))
def test_any_hidden_character_anywhere_is_found(before: str, hidden: str, after: str) -> None:
    found = hidden_character(before + hidden + after)
    assert found == f"U+{ord(hidden):04X}"
    assert visible_text_problem(before + hidden + after) is not None


@given(st.text(VISIBLE, max_size=80))
def test_visible_text_passes(text: str) -> None:
    assert hidden_character(text) is None
    assert visible_text_problem(text) is None


@given(
    st.text(
        st.one_of(st.characters(), st.sampled_from([*sorted(BLANK_CHARACTERS), "\n", " "])),
        max_size=60,
    ),
    st.booleans(),
)
def test_the_fast_path_for_clean_text_agrees_with_the_rule(text: str, newlines: bool) -> None:
    assert hidden_character(text, allow_newlines=newlines) == walk_hidden(
        text, allow_newlines=newlines
    )


@given(st.lists(st.text(VISIBLE, max_size=20), max_size=5))
def test_newlines_pass_only_where_allowed(lines: list[str]) -> None:
    text = "\n".join(lines)
    assert hidden_character(text, allow_newlines=True) is None
    if "\n" in text:
        assert hidden_character(text) == "U+000A"


@pytest.mark.parametrize(
    "char", ["\u202e", "\u202a", "\u2066", "\u2069", "\u200b", "\u200c", "\u200d", "\u2060",
             "\ufeff", "\u00ad", "\u3164", "\u115f", "\u034f", "\u2028", "\u2029", "\x00", "\x1b",
             "\r", "\t"],
)  # fmt: skip
def test_the_usual_hiding_places_are_refused(char: str) -> None:
    assert hidden_character(f"a{char}b", allow_newlines=True) is not None


@given(st.text(st.characters(codec="utf-8"), max_size=30))
def test_username_keys_are_stable_and_case_free(name: str) -> None:
    key = username_key(name)
    assert username_key(key) == key
    assert username_key(name.upper()) == username_key(name.lower()) or name.upper() != name.lower()
    assert username_key(unicodedata.normalize("NFKD", name)) == key


def test_look_alike_usernames_share_a_key() -> None:
    assert username_key("Admin") == username_key("ADMIN") == username_key("admin")
    assert username_key("\uff41\uff44\uff4d\uff49\uff4e") == "admin"  # full-width
    assert username_key("Stra\u00dfe") == username_key("STRASSE")


@given(st.text(VISIBLE, max_size=30), HIDDEN.filter(lambda c: not "\ud800" <= c <= "\udfff"))
def test_chat_text_with_a_hidden_character_is_a_bad_request(text: str, hidden: str) -> None:
    frame = msgspec.json.encode(
        {"t": "chat.send", "id": 7, "d": {"room": "lobby", "text": text + hidden}}
    )
    with pytest.raises(ProtocolError) as caught:
        decode(frame)
    assert caught.value.id == 7


def test_chat_text_keeps_newlines() -> None:
    inbound = decode(b'{"t": "chat.send", "id": 1, "d": {"room": "lobby", "text": "a\\nb"}}')
    assert isinstance(inbound.body, ChatSend)
    assert inbound.body.text == "a\nb"


def _patterns(tree: ast.AST) -> list[tuple[int, str]]:
    """Regex literals given to ``re.compile`` or ``Meta(pattern=...)``."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = (
            node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        )
        candidates: list[ast.expr] = []
        if name == "compile" and node.args:
            candidates.append(node.args[0])
        candidates += [kw.value for kw in node.keywords if kw.arg == "pattern"]
        found += [
            (c.lineno, c.value)
            for c in candidates
            if isinstance(c, ast.Constant) and isinstance(c.value, str | bytes)
        ]
    return found


def test_no_pattern_in_the_code_ends_with_a_dollar() -> None:
    """Rule 1 over the source: ``$`` admits a trailing newline; use ``whole`` or ``\\Z``."""
    offenders = []
    for folder in ("typogram", "rest", "gateway", "rooms", "matchmaking", "workers"):
        for path in (ROOT / folder).rglob("*.py"):
            for line, pattern in _patterns(ast.parse(path.read_text(), str(path))):
                text = pattern.decode() if isinstance(pattern, bytes) else pattern
                if text.endswith("$") and not text.endswith("\\$"):
                    offenders.append(f"{path.relative_to(ROOT)}:{line}: {text}")
    assert not offenders
