"""Staff review of reported chat messages: ``/api/v1/admin/reports`` (``typogram.chat_reports``).

Only staff (``roles.STAFF``) may list and decide; anyone else gets 403. The
queue is keyset-paged, oldest first, per status; a report is resolved or
dismissed once (409 after), and every decision is audited with the reviewer
and the note. Deleting the message itself is ``chat.delete`` on the gateway.
"""

from __future__ import annotations

import time
from typing import Annotated, Literal

import msgspec
from starlette.requests import Request

from rest.context import client_ip, paging, platform_of
from rest.routing import Answer, Api
from typogram.chat_reports import STATUSES, ChatReports
from typogram.codes import ErrorCode
from typogram.errors import AppError
from typogram.roles import STAFF
from typogram.tokens import Claims

api = Api()
MAX_PAGE = 100


class ReportDecision(msgspec.Struct, forbid_unknown_fields=True):
    note: Annotated[str, msgspec.Meta(max_length=500)] = ""


class ReportedAuthor(msgspec.Struct):
    id: str
    name: str


class ReportedMessage(msgspec.Struct):
    id: str
    user: ReportedAuthor
    text: str
    ts: int


class ReportView(msgspec.Struct):
    id: str
    room: str
    message: ReportedMessage
    reporter_id: str
    reason: str
    status: Literal["open", "resolved", "dismissed"]
    created_at: int
    reviewed_by: str | None
    reviewed_at: int | None
    note: str


class ReportPage(msgspec.Struct):
    reports: list[ReportView]
    next_cursor: str | None


class ReportDecided(msgspec.Struct):
    report: ReportView


@api.route(
    "GET",
    "/api/v1/admin/reports",
    summary="Reported chat messages waiting for review (or decided), oldest first (staff)",
    tag="admin",
    response=ReportPage,
    auth="user",
    roles=STAFF,
    errors=(400, 401, 403, 429),
    query={
        "status": "open (default), resolved or dismissed",
        "limit": f"page size, 1..{MAX_PAGE} (default 20)",
        "cursor": "next_cursor of the previous page",
    },
)
async def list_reports(request: Request, claims: Claims) -> Answer:
    status = request.query_params.get("status", "open")
    if status not in STATUSES:
        raise AppError(
            ErrorCode.BAD_REQUEST,
            f"status must be one of {', '.join(STATUSES)}",
            fields={"status": "invalid"},
        )
    limit, cursor = paging(request, max_page=MAX_PAGE)
    reports = ChatReports(platform_of(request).db)
    page, following = await reports.page(status, limit=limit, cursor=cursor)
    return Answer({"reports": page, "next_cursor": following})


async def _decide(
    request: Request, body: ReportDecision, claims: Claims, *, resolve: bool
) -> Answer:
    report = await ChatReports(platform_of(request).db).decide(
        request.path_params["report_id"],
        resolve=resolve,
        actor=claims.subject,
        note=body.note,
        ip=client_ip(request),
        now_ms=int(time.time() * 1000),
    )
    return Answer({"report": report})


@api.staff_decision(
    "/api/v1/admin/reports/{report_id}/resolve",
    summary="Resolve a report: it was right and staff acted on it (staff)",
    body=ReportDecision,
    response=ReportDecided,
    errors=(400, 401, 403, 404, 409, 429),
)
async def resolve(request: Request, body: ReportDecision, claims: Claims) -> Answer:
    return await _decide(request, body, claims, resolve=True)


@api.staff_decision(
    "/api/v1/admin/reports/{report_id}/dismiss",
    summary="Dismiss a report: nothing to act on (staff)",
    body=ReportDecision,
    response=ReportDecided,
    errors=(400, 401, 403, 404, 409, 429),
)
async def dismiss(request: Request, body: ReportDecision, claims: Claims) -> Answer:
    return await _decide(request, body, claims, resolve=False)
