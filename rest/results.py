"""Result submission (scored on the server from the keystroke log) and the caller's history.

Submission order: size limit → the issued test (a user's claim on it and
the user's best so far go out in the same round trip) → replay (a key that
is not a key is 422 ``bad_key``…) → score on the test's clock → plausibility
verdict (``typogram.anticheat``: reject is 422 with its reason codes; a
refused submission gives the claim back) → a claim not obtained is 409 →
``Results.accept``: publish ``result.accepted`` (the durable record on Kafka;
the SQL rows follow from the ``results`` worker), decide the personal best in
the cache. A result with too little typing is stored but ``ranked`` false
(no board). Guests are scored but nothing is stored or published. An
``Idempotency-Key``
header makes a retry return the first answer: the key is claimed
(``set_if_absent``, short TTL) before the work and replaced by the answer for
``typing_idempotency_ttl_s`` after it.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
import uuid
from typing import Annotated, Any

import msgspec
import orjson
from starlette.requests import Request

from rest.context import paging, platform_of
from rest.routing import Answer, Api
from rest.typing_tests import is_test_id, load_test, spec_of
from typogram import boards, keys, rhythm
from typogram.anticheat import Timing, Verdict, judge, limits_from
from typogram.codes import ErrorCode
from typogram.errors import AppError
from typogram.history import History, history_of
from typogram.logs import get_logger
from typogram.result_record import PublicResult, Submission, record_of
from typogram.results import ALREADY_SUBMITTED, Results
from typogram.settings import Settings
from typogram.tokens import Claims
from typogram.typing import LogError, Result, replay, score

api = Api()
log = get_logger("typogram.rest.results")

# Decoding refuses longer logs outright; ``typing_max_keystrokes`` (lower) answers 413.
HARD_MAX_KEYSTROKES = 50_000
PENDING_TTL_S = 60  # a claimed key whose request died is free again after this
MAX_PAGE = 100
_IDEMPOTENCY_KEY = re.compile(r"\A[A-Za-z0-9_.:-]{1,64}\Z")

Keystroke = tuple[
    Annotated[int, msgspec.Meta(ge=0, le=24 * 3600 * 1000)],
    Annotated[str, msgspec.Meta(min_length=1, max_length=9)],
]


class ResultBody(msgspec.Struct, forbid_unknown_fields=True):
    test_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    keystrokes: Annotated[list[Keystroke], msgspec.Meta(max_length=HARD_MAX_KEYSTROKES)]


class SecondView(msgspec.Struct):
    raw: int
    wpm: int
    errors: int


class ResultView(PublicResult):
    """A result as the API shows it (``typogram.result_record``), with its seconds
    when it was just submitted."""

    per_second: list[SecondView] | None = None


class Submitted(msgspec.Struct):
    result: ResultView
    personal_best: bool
    stored: bool


class ResultPage(msgspec.Struct):
    results: list[ResultView]
    next_cursor: str | None


def refused(verdict: Verdict) -> AppError:
    """The 422 of a rejected log: the reason codes in ``fields.keystrokes``."""
    return AppError(
        ErrorCode.UNPROCESSABLE, verdict.message, fields={"keystrokes": ",".join(verdict.codes)}
    )


def malformed(exc: LogError) -> AppError:
    """The 422 of a log that is not one (a key that is not a key, ...)."""
    return AppError(ErrorCode.UNPROCESSABLE, str(exc), fields={"keystrokes": exc.code})


def evidence_of(result: Result, timing: Timing, best: float | None) -> dict[str, Any]:
    """What a reviewer sees of a flagged result (JSON-ready)."""
    return {
        "wpm": result.wpm,
        "raw_wpm": result.raw_wpm,
        "accuracy": result.accuracy,
        "duration_ms": result.duration_ms,
        "keystrokes": result.keystrokes,
        "best_wpm": best,
        "timing": timing.evidence(),
    }


def ranked(result: Result, settings: Settings) -> bool:
    return boards.enough_typing(
        result.duration_ms,
        result.words,
        min_seconds=settings.typing_board_min_seconds,
        min_words=settings.typing_board_min_words,
    )


def results_of(request: Request) -> Results:
    platform = platform_of(request)
    settings = platform.settings
    return Results(
        platform.db,
        platform.cache,
        platform.events,
        score_writes=platform.score_writes,
        recent=settings.typing_recent_results,
        recent_ttl_s=settings.typing_recent_cache_ttl_s,
        claim_ttl_s=settings.typing_test_ttl_s,
        # The in-process log is not durable: the row goes to SQL before the 201 there.
        write_through=not settings.kafka_bootstrap,
    )


@api.route(
    "POST",
    "/api/v1/results",
    summary="Submit a keystroke log for a test; the server scores it",
    tag="results",
    body=ResultBody,
    response=Submitted,
    status=201,
    auth="any",
    errors=(400, 401, 404, 409, 413, 422),
)
async def submit(request: Request, body: ResultBody, claims: Claims) -> Answer:
    header = request.headers.get("idempotency-key")
    if header is None:
        return await _submit(request, body, claims)
    if not _IDEMPOTENCY_KEY.match(header):
        raise AppError(
            ErrorCode.BAD_REQUEST,
            "Idempotency-Key must be 1-64 of A-Z a-z 0-9 _ . : -",
            fields={"Idempotency-Key": "invalid"},
        )
    platform = platform_of(request)
    cache = platform.cache
    key = keys.idempotency("results", claims.subject, header)
    fingerprint = hashlib.sha256(await request.body()).hexdigest()
    pending = orjson.dumps({"state": "pending", "fp": fingerprint})
    if not await cache.set_if_absent(key, pending, ttl=PENDING_TTL_S):
        return await _replayed(await cache.get(key), fingerprint)
    try:
        reply = await _submit(request, body, claims)
    except Exception:
        await cache.delete(key)  # nothing was stored: the client may retry with this key
        raise
    done = {"state": "done", "fp": fingerprint, "status": reply.status, "body": reply.body}
    await cache.set(key, orjson.dumps(done), ttl=platform.settings.typing_idempotency_ttl_s)
    return reply


async def _replayed(raw: bytes | None, fingerprint: str) -> Answer:
    if raw is None:  # the first request failed and released the key just now
        raise AppError(ErrorCode.CONFLICT, "a request with this Idempotency-Key just failed; retry")
    doc = orjson.loads(raw)
    if doc.get("fp") != fingerprint:
        raise AppError(
            ErrorCode.UNPROCESSABLE,
            "this Idempotency-Key was used with a different request",
            fields={"Idempotency-Key": "reused with a different body"},
        )
    if doc.get("state") != "done":
        raise AppError(ErrorCode.CONFLICT, "a request with this Idempotency-Key is in progress")
    return Answer(doc["body"], int(doc["status"]), {"Idempotent-Replayed": "true"})


async def _submit(request: Request, body: ResultBody, claims: Claims) -> Answer:
    settings = platform_of(request).settings
    if len(body.keystrokes) > settings.typing_max_keystrokes:
        raise AppError(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"a log may hold at most {settings.typing_max_keystrokes} keystrokes",
            fields={"keystrokes": "too many"},
        )
    results = None if claims.is_guest else results_of(request)
    # A user's claim goes out with the read of the test (one round trip); a
    # submission refused on the way gives it back, so only an accepted one keeps it.
    claiming = (
        asyncio.ensure_future(results.claim(body.test_id))
        if results is not None and is_test_id(body.test_id)
        else None
    )
    try:
        submission, per_second = await _judged(request, body, claims)
        claimed = claiming is not None and await claiming
    except BaseException:
        if claiming is not None and await _claimed(claiming):
            assert results is not None
            await results.release(body.test_id)
        raise
    if results is None:  # a guest: scored, nothing stored
        view: dict[str, Any] = {
            **record_of(submission).view(),
            "id": None,
            "per_second": per_second,
        }
        return Answer({"result": view, "personal_best": False, "stored": False}, 200)
    if not claimed:
        raise AppError(ErrorCode.CONFLICT, ALREADY_SUBMITTED)
    row, best = await results.accept(submission, claimed=True)
    return Answer(
        {"result": {**row, "per_second": per_second}, "personal_best": best, "stored": True}, 201
    )


async def _claimed(claiming: asyncio.Future[bool]) -> bool:
    """Whether a refused submission holds the claim (one that failed does not)."""
    try:
        return await claiming
    except Exception:
        return False


async def _judged(
    request: Request, body: ResultBody, claims: Claims
) -> tuple[Submission, list[dict[str, Any]]]:
    """The issued test, the log replayed, scored and judged: 404, 400 or 422 on the way."""
    platform = platform_of(request)
    settings = platform.settings
    known = History()
    if claims.is_guest:
        stored = await load_test(platform.cache, body.test_id, claims.subject)
    else:
        stored, known = await asyncio.gather(
            load_test(platform.cache, body.test_id, claims.subject),
            history_of(platform.cache, claims.subject, settings.typing_history_min_results),
        )
    best = known.best
    if stored is None:
        raise AppError(
            ErrorCode.NOT_FOUND, "no such test, or it has expired", fields={"test_id": "unknown"}
        )
    spec = spec_of(stored)
    try:
        replayed = replay(stored["text"], body.keystrokes)
    except LogError as exc:
        raise malformed(exc) from exc
    result = score(replayed, seconds=spec.seconds if spec.mode == "time" else None)
    verdict, timing = judge(
        replayed, result, limits_from(settings), best_wpm=best, profile=known.rhythm
    )
    if verdict.action == "reject":
        raise refused(verdict)
    accepted = verdict.action == "accept" and not claims.is_guest
    submission = Submission(
        result_id=uuid.uuid4().hex,
        user_id=claims.subject,
        username=claims.name,
        test_id=body.test_id,
        spec=spec,
        seed=int(stored["seed"]),
        result=result,
        verdict=verdict,
        created_at=int(time.time() * 1000),
        ranked=ranked(result, settings),
        evidence=evidence_of(result, timing, best) if verdict.action == "flag" else {},
        rhythm=rhythm.encode(rhythm.fold(known.rhythm, result)) if accepted else None,
    )
    per_second = [{"raw": s.raw, "wpm": s.wpm, "errors": s.errors} for s in result.per_second]
    return submission, per_second


@api.route(
    "GET",
    "/api/v1/results/me",
    summary="The caller's results, newest first, paged by cursor",
    tag="results",
    response=ResultPage,
    auth="user",
    errors=(400, 401),
    query={
        "limit": f"page size, 1..{MAX_PAGE} (default 20)",
        "cursor": "next_cursor of the previous page",
    },
)
async def my_results(request: Request, claims: Claims) -> Answer:
    limit, cursor = paging(request, max_page=MAX_PAGE)
    page, following = await results_of(request).page(claims.subject, limit=limit, cursor=cursor)
    return Answer({"results": page, "next_cursor": following})
