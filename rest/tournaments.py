"""Tournaments: admins create them; users list, view and join them.

The tournament's live state is ``rooms.tournament.TournamentState`` in the
cache (``tournament:{id}:state``, changed through ``workers.tournament_store``
so joins here and scores from the ``tournaments`` worker never overwrite each
other); the ``tournaments`` and ``tournament_participants`` tables keep the
record. Creating needs the ``admin`` role in the token; joining any signed-in
user (guests when the tournament allows them). Races created with
``race.create {"tournament": id}`` while it runs count toward it.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

import msgspec
import orjson
from sqlalchemy import select
from starlette.requests import Request

from rest.context import platform_of, require_role
from rest.routing import Api, Reply
from rooms import tournament
from typogram import keys
from typogram.codes import ErrorCode
from typogram.db.schema import tournament_participants, tournaments
from typogram.errors import AppError
from typogram.roles import Role
from typogram.tokens import Claims
from workers import tournament_store

api = Api()
MAX_LIST = 100


class TournamentCreate(msgspec.Struct, forbid_unknown_fields=True):
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
    starts_at: int
    ends_at: int
    opens_at: int | None = None
    max_participants: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 100
    scoring: Literal["best_wpm", "points"] = "best_wpm"
    points_by_place: Annotated[list[int], msgspec.Meta(max_length=50)] = msgspec.field(
        default_factory=lambda: [10, 8, 6, 5, 4]
    )
    allow_guests: bool = False
    min_rating: float | None = None
    max_rating: float | None = None


class TournamentView(msgspec.Struct):
    tournament: str
    title: str
    phase: str
    opens_at: int
    starts_at: int
    ends_at: int
    scoring: str
    participants: int
    max_participants: int
    seq: int
    top: list[dict[str, Any]] = msgspec.field(default_factory=list)


def _now_ms() -> int:
    return int(time.time() * 1000)


@api.route(
    "POST",
    "/api/v1/tournaments",
    summary="Create a tournament (admins)",
    tag="tournaments",
    body=TournamentCreate,
    response=TournamentView,
    status=201,
    auth="user",
    errors=(400, 401, 403, 429),
)
async def create(request: Request, body: TournamentCreate, claims: Claims) -> Reply:
    require_role(claims, frozenset({Role.ADMIN}), "admins")
    platform = platform_of(request)
    now = _now_ms()
    state = tournament.TournamentState(
        tournament_id=uuid.uuid4().hex,
        title=body.title.strip(),
        opens_at_ms=body.opens_at if body.opens_at is not None else min(now, body.starts_at),
        starts_at_ms=body.starts_at,
        ends_at_ms=body.ends_at,
        max_participants=body.max_participants,
        scoring=tournament.Scoring(body.scoring),
        points_by_place=tuple(body.points_by_place),
        allow_guests=body.allow_guests,
        min_rating=body.min_rating,
        max_rating=body.max_rating,
    )
    try:
        tournament.validate(state)
    except tournament.TournamentError as exc:
        raise AppError(exc.code, exc.message) from None
    state, _ = tournament.handle(state, tournament.Tick(), now)  # the phase the clock says
    async with platform.db.write() as conn:
        await conn.execute(
            tournaments.insert().values(
                id=state.tournament_id,
                title=state.title,
                opens_at=state.opens_at_ms,
                starts_at=state.starts_at_ms,
                ends_at=state.ends_at_ms,
                max_participants=state.max_participants,
                scoring=str(state.scoring),
                points_by_place=orjson.dumps(list(state.points_by_place)).decode(),
                allow_guests=int(state.allow_guests),
                min_rating=state.min_rating,
                max_rating=state.max_rating,
                status="active",
                created_by=claims.subject,
                created_at=now,
            )
        )
    await tournament_store.save(platform.cache, state, now)
    return Reply(_view(state), status=201)


@api.route(
    "GET",
    "/api/v1/tournaments",
    summary="Tournaments, newest first",
    tag="tournaments",
    response=list[TournamentView],
    errors=(429,),
)
async def list_tournaments(request: Request) -> Reply:
    platform = platform_of(request)
    async with platform.db.read() as conn:
        rows = await conn.execute(
            select(tournaments.c.id)
            .where(tournaments.c.status == "active")
            .order_by(tournaments.c.starts_at.desc())
            .limit(MAX_LIST)
        )
        ids = [row.id for row in rows]
    out = []
    for tid in ids:
        state = await tournament_store.load(platform.cache, tid)
        if state is not None:
            out.append(_view(tournament.handle(state, tournament.Tick(), _now_ms())[0]))
    return Reply(out)


@api.route(
    "GET",
    "/api/v1/tournaments/{tournament_id}",
    summary="One tournament with its top rankings",
    tag="tournaments",
    response=TournamentView,
    errors=(404, 429),
)
async def view(request: Request) -> Reply:
    platform = platform_of(request)
    state = await tournament_store.load(platform.cache, request.path_params["tournament_id"])
    if state is None:
        raise AppError(ErrorCode.NOT_FOUND, "no such tournament")
    state, _ = tournament.handle(state, tournament.Tick(), _now_ms())
    return Reply(_view(state, top=tournament.rankings(state)))


@api.route(
    "POST",
    "/api/v1/tournaments/{tournament_id}/join",
    summary="Join a tournament",
    tag="tournaments",
    response=TournamentView,
    auth="any",
    errors=(401, 403, 404, 409, 429),
)
async def join(request: Request, claims: Claims) -> Reply:
    platform = platform_of(request)
    tid = request.path_params["tournament_id"]
    now = _now_ms()
    rating = None
    if not claims.is_guest:
        raw = await platform.cache.get(keys.user_rating(claims.subject))
        rating = float(orjson.loads(raw)["mu"]) if raw is not None else 1500.0
    event = tournament.Join(claims.subject, claims.name, claims.is_guest, rating)

    def step(state: tournament.TournamentState) -> tournament.Step:
        try:
            return tournament.handle(state, event, now)
        except tournament.TournamentError as exc:
            raise AppError(exc.code, exc.message) from None

    await tournament_store.change(platform.cache, platform.pubsub, tid, step, now)
    async with platform.db.write() as conn:
        await conn.execute(
            tournament_participants.insert().values(
                tournament_id=tid,
                user_id=claims.subject[:64],
                name=claims.name[:64],
                status="joined",
                joined_at=now,
            )
        )
    state = await tournament_store.load(platform.cache, tid)
    assert state is not None
    return Reply(_view(state))


def _view(
    state: tournament.TournamentState, top: list[dict[str, Any]] | None = None
) -> TournamentView:
    snap = tournament.snapshot(state)
    return TournamentView(**snap, top=top or [])
