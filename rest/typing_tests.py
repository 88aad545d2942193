"""New typing tests: generate a text from word-frequency data and keep it for submission.

A test is issued to one caller (user or guest) and kept in the cache for
``typing_test_ttl_s`` under ``keys.typing_test``; ``POST /api/v1/results``
scores a log against exactly that text.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
import uuid
from collections.abc import Mapping
from typing import Any, get_args

import msgspec
import orjson
from starlette.requests import Request

from rest.context import platform_of
from rest.routing import Answer, Api
from typogram import keys
from typogram.codes import ErrorCode
from typogram.errors import AppError
from typogram.platform import Platform
from typogram.ports import Cache
from typogram.settings import Settings
from typogram.texts import LANGUAGES, Difficulty, Mode, TextSpec, generate, is_loaded
from typogram.tokens import Claims

api = Api()

MIN_WORDS = 5
MIN_SECONDS = 5
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}
_TEST_ID = re.compile(r"[0-9a-f]{32}")


class NewTest(msgspec.Struct):
    test_id: str
    text: str
    mode: str
    lang: str
    count: int | None
    seconds: int | None
    punctuation: bool
    numbers: bool
    difficulty: str
    seed: int
    category: str
    board: str | None
    expires_in: int
    created_at: int


def _int(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int | str:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        return "must be an integer"
    return value if low <= value <= high else f"must be between {low} and {high}"


def _flag(query: Mapping[str, str], name: str) -> bool | str:
    raw = query.get(name, "").strip().lower()
    if raw in _TRUE:
        return True
    return False if raw in _FALSE else "must be true or false"


def parse_spec(query: Mapping[str, str], settings: Settings) -> TextSpec:
    """The query string as a ``TextSpec``; every bad parameter is named in one 400."""
    faults: dict[str, str] = {}
    mode = query.get("mode", "words")
    if mode not in get_args(Mode):
        faults["mode"] = "must be words or time"
    lang = query.get("lang", "en")
    if lang not in LANGUAGES:
        faults["lang"] = "must be one of " + ", ".join(LANGUAGES)
    difficulty = query.get("difficulty", "medium")
    if difficulty not in get_args(Difficulty):
        faults["difficulty"] = "must be easy, medium or hard"
    count = _int(query, "count", 25, MIN_WORDS, settings.typing_max_words)
    seconds = _int(query, "seconds", 30, MIN_SECONDS, settings.typing_max_seconds)
    punctuation, numbers = _flag(query, "punctuation"), _flag(query, "numbers")
    for name, value in (
        ("count", count),
        ("seconds", seconds),
        ("punctuation", punctuation),
        ("numbers", numbers),
    ):
        if isinstance(value, str):
            faults[name] = value
    if faults:
        raise AppError(ErrorCode.BAD_REQUEST, "invalid test parameters", fields=faults)
    assert isinstance(count, int) and isinstance(seconds, int)
    assert isinstance(punctuation, bool) and isinstance(numbers, bool)
    return TextSpec(
        mode=mode,  # type: ignore[arg-type]  # checked against Mode above
        lang=lang,
        count=count if mode == "words" else None,
        seconds=seconds if mode == "time" else None,
        punctuation=punctuation,
        numbers=numbers,
        difficulty=difficulty,  # type: ignore[arg-type]  # checked against Difficulty above
    )


def spec_of(stored: Mapping[str, Any]) -> TextSpec:
    return TextSpec(
        mode=stored["mode"],
        lang=stored["lang"],
        count=stored["count"],
        seconds=stored["seconds"],
        punctuation=stored["punctuation"],
        numbers=stored["numbers"],
        difficulty=stored["difficulty"],
        lesson=stored.get("lesson_id"),
    )


def is_test_id(test_id: str) -> bool:
    """Shaped like an id ``new_test`` hands out (anything else was never issued)."""
    return _TEST_ID.fullmatch(test_id) is not None


async def load_test(cache: Cache, test_id: str, subject: str) -> dict[str, Any] | None:
    """A test issued to ``subject`` and not yet expired, else ``None``."""
    if not is_test_id(test_id):
        return None
    raw = await cache.get(keys.typing_test(test_id))
    if raw is None:
        return None
    stored: dict[str, Any] = orjson.loads(raw)
    return stored if stored.get("issued_to") == subject else None


@api.route(
    "GET",
    "/api/v1/tests/new",
    summary="A new typing test (words or time mode)",
    tag="tests",
    response=NewTest,
    auth="any",
    errors=(400, 401),
    query={
        "mode": "words (default) or time",
        "count": f"words mode: number of words, {MIN_WORDS}..typing_max_words (default 25)",
        "seconds": f"time mode: seconds, {MIN_SECONDS}..typing_max_seconds (default 30)",
        "lang": "language: " + ", ".join(LANGUAGES) + " (default en)",
        "punctuation": "true or false (default false)",
        "numbers": "true or false (default false)",
        "difficulty": "easy, medium (default) or hard (hard adds punctuation and numbers)",
    },
)
async def new_test(request: Request, claims: Claims) -> Answer:
    platform = platform_of(request)
    settings = platform.settings
    spec = parse_spec(request.query_params, settings)
    seed = secrets.randbits(62)
    # The first use of a language reads its word list (~0.1 s): off the event loop.
    # After that a text takes ~30 µs, far less than a hop to a thread and back.
    if is_loaded(spec.lang, spec.difficulty):
        text = generate(spec, seed, wpm_cap=settings.typing_wpm_cap)
    else:
        text = await asyncio.to_thread(generate, spec, seed, wpm_cap=settings.typing_wpm_cap)
    return Answer(await issue(platform, claims.subject, spec, seed, text))


async def issue(
    platform: Platform,
    subject: str,
    spec: TextSpec,
    seed: int,
    text: str,
    *,
    stored_extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Keep a new test for submission by ``subject`` only (``load_test``) and return its
    public body (``NewTest``). ``stored_extra`` is kept with it, never shown."""
    settings = platform.settings
    test_id = uuid.uuid4().hex
    created_at = int(time.time() * 1000)
    body = {
        "test_id": test_id,
        "text": text,
        "mode": spec.mode,
        "lang": spec.lang,
        "count": spec.count,
        "seconds": spec.seconds,
        "punctuation": spec.punctuation,
        "numbers": spec.numbers,
        "difficulty": spec.difficulty,
        "seed": seed,
        "category": spec.category,
        "board": spec.board,
        "expires_in": settings.typing_test_ttl_s,
        "created_at": created_at,
    }
    stored = {**body, **(stored_extra or {}), "issued_to": subject}
    await platform.cache.set(
        keys.typing_test(test_id), orjson.dumps(stored), ttl=settings.typing_test_ttl_s
    )
    return body
