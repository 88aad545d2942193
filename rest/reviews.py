"""Staff review of flagged results: ``/api/v1/admin/flags`` (``typogram.reviews``).

Only staff (``roles.STAFF``: moderators and admins, from the token's role)
may list and decide; anyone else gets 403. Listing is keyset-paged, oldest
first, per status; approving counts the result as acceptance would have
(``typogram.reviews`` rules 2-3: boards, personal best, stats, once),
rejecting keeps it off everything; a flag is decided once (409 after, but
approving an approved flag again is a harmless 200), and every decision is
audited with the reviewer and the note.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

import msgspec
from starlette.requests import Request

from rest.context import client_ip, platform_of
from rest.routing import Answer, Api
from typogram.codes import ErrorCode
from typogram.errors import AppError
from typogram.reviews import STATUSES, Reviews
from typogram.roles import STAFF
from typogram.tokens import Claims

api = Api()
MAX_PAGE = 100


class Decision(msgspec.Struct, forbid_unknown_fields=True):
    note: Annotated[str, msgspec.Meta(max_length=500)] = ""


class BoardEntry(msgspec.Struct):
    board: str
    period: str
    wpm: float
    at: int


class FlagView(msgspec.Struct):
    id: str
    kind: Literal["result", "race", "challenge"]
    subject_id: str
    user_id: str
    username: str
    status: Literal["open", "approved", "rejected"]
    reasons: list[str]
    message: str
    evidence: dict[str, Any]
    boards: list[BoardEntry]
    wpm: float
    created_at: int
    reviewed_by: str | None
    reviewed_at: int | None
    note: str


class FlagPage(msgspec.Struct):
    flags: list[FlagView]
    next_cursor: str | None


class Decided(msgspec.Struct):
    flag: FlagView


def reviews_of(request: Request) -> Reviews:
    platform = platform_of(request)
    return Reviews(
        platform.db, platform.cache, platform.records, score_writes=platform.score_writes
    )


@api.route(
    "GET",
    "/api/v1/admin/flags",
    summary="Flagged results waiting for review (or decided), oldest first (staff)",
    tag="admin",
    response=FlagPage,
    auth="user",
    roles=STAFF,
    errors=(400, 401, 403, 429),
    query={
        "status": "open (default), approved or rejected",
        "limit": f"page size, 1..{MAX_PAGE} (default 20)",
        "cursor": "next_cursor of the previous page",
    },
)
async def list_flags(request: Request, claims: Claims) -> Answer:
    query = request.query_params
    status = query.get("status", "open")
    if status not in STATUSES:
        raise AppError(
            ErrorCode.BAD_REQUEST,
            f"status must be one of {', '.join(STATUSES)}",
            fields={"status": "invalid"},
        )
    try:
        limit = int(query.get("limit", "20"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_PAGE:
        raise AppError(
            ErrorCode.BAD_REQUEST,
            f"limit must be an integer between 1 and {MAX_PAGE}",
            fields={"limit": "invalid"},
        )
    cursor = query.get("cursor") or None
    if cursor is not None and len(cursor) > 200:
        raise AppError(ErrorCode.BAD_REQUEST, "invalid cursor", fields={"cursor": "invalid"})
    page, following = await reviews_of(request).page(status, limit=limit, cursor=cursor)
    return Answer({"flags": page, "next_cursor": following})


async def _decide(request: Request, body: Decision, claims: Claims, *, approve: bool) -> Answer:
    flag = await reviews_of(request).decide(
        request.path_params["flag_id"],
        approve=approve,
        actor=claims.subject,
        note=body.note,
        ip=client_ip(request),
        now_ms=int(time.time() * 1000),
    )
    return Answer({"flag": flag})


@api.staff_decision(
    "/api/v1/admin/flags/{flag_id}/approve",
    summary="Approve a flagged result: it counts as accepted, once (staff)",
    body=Decision,
    response=Decided,
    errors=(400, 401, 403, 404, 409, 429, 503),
)
async def approve(request: Request, body: Decision, claims: Claims) -> Answer:
    return await _decide(request, body, claims, approve=True)


@api.staff_decision(
    "/api/v1/admin/flags/{flag_id}/reject",
    summary="Reject a flagged result: it stays off the boards (staff)",
    body=Decision,
    response=Decided,
    errors=(400, 401, 403, 404, 409, 429),
)
async def reject(request: Request, body: Decision, claims: Claims) -> Answer:
    return await _decide(request, body, claims, approve=False)
