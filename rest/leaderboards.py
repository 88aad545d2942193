"""``GET /api/v1/leaderboards/{board}``: the top of a board, or the caller's place on it."""

from __future__ import annotations

import time

import msgspec
from starlette.requests import Request

from rest.context import authenticate, platform_of
from rest.routing import Answer, Api
from typogram import boards
from typogram.codes import ErrorCode
from typogram.errors import AppError
from typogram.leaderboards import VIEW_SIZE, Leaderboards

api = Api()
DEFAULT_LIMIT = 50


class Entry(msgspec.Struct):
    rank: int
    user_id: str
    username: str
    wpm: float
    at: int


class Board(msgspec.Struct):
    board: str
    window: str
    period: str
    entries: list[Entry]
    rank: int | None = None


@api.route(
    "GET",
    "/api/v1/leaderboards/{board}",
    summary="A leaderboard's top entries, or the caller's rank and neighbours (around=me)",
    tag="leaderboards",
    response=Board,
    errors=(400, 401, 404),
    query={
        "window": "daily, weekly or alltime (default alltime)",
        "limit": f"entries, 1..{VIEW_SIZE} (default {DEFAULT_LIMIT})",
        "around": "me: the caller's rank and the entries around it (needs a token)",
    },
)
async def leaderboard(request: Request) -> Answer:
    board = request.path_params["board"]
    query = request.query_params
    try:
        boards.check_board(board)
    except boards.BoardError as exc:
        raise AppError(ErrorCode.NOT_FOUND, str(exc), fields={"board": "unknown"}) from exc
    window = query.get("window", "alltime")
    try:
        period = boards.period(window, int(time.time() * 1000))
    except boards.BoardError as exc:
        raise AppError(ErrorCode.BAD_REQUEST, str(exc), fields={"window": "unknown"}) from exc
    try:
        limit = int(query.get("limit", str(DEFAULT_LIMIT)))
    except ValueError:
        limit = 0
    if not 1 <= limit <= VIEW_SIZE:
        raise AppError(
            ErrorCode.BAD_REQUEST,
            f"limit must be an integer between 1 and {VIEW_SIZE}",
            fields={"limit": "invalid"},
        )
    platform = platform_of(request)
    store = Leaderboards(platform.db, platform.cache, platform.score_writes)
    body = {"board": board, "window": window, "period": period.name}
    around = query.get("around")
    if around is not None:
        if around != "me":
            raise AppError(ErrorCode.BAD_REQUEST, "around must be me", fields={"around": "invalid"})
        claims = await authenticate(request, "user")
        rank, entries = await store.around(board, period.name, claims.subject)
        return Answer({**body, "entries": entries, "rank": rank})
    return Answer({**body, "entries": await store.top(board, period.name, limit), "rank": None})
