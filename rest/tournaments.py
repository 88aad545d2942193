"""Tournaments: admins create and edit them; users list, view and join them.

The state is ``rooms.tournament.TournamentState``, kept by
``tournaments.store.TournamentStore``: the database is the record
(settings, phase, participants and their scores, counted races, final
ranks), ``tournament:{id}:state`` a cache rebuilt from it when missing, so
every read here survives a cache flush. Creating and editing need the
``admin`` role and are audited (``tournament_create``, ``tournament_edit``
with the old and new values); joining needs any signed-in user (guests
when the tournament allows them). Races created with ``race.create
{"tournament": id}`` while it runs count toward it. Rating limits compare
the matchmaking rating (mu, 1500 for the unrated) read through
``typogram.ratings``.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

import msgspec
from starlette.requests import Request

from rest.context import client_ip, platform_of, require_role
from rest.routing import Answer, Api
from rooms import tournament
from tournaments.store import TournamentStore
from typogram.codes import ErrorCode
from typogram.errors import AppError
from typogram.roles import Role
from typogram.tokens import Claims

api = Api()
MAX_LIST = 100
MAX_ID = 32


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


class TournamentEdit(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Only the fields given change; ``null`` clears a rating limit."""

    title: Annotated[str, msgspec.Meta(min_length=1, max_length=120)] | msgspec.UnsetType = (
        msgspec.UNSET
    )
    opens_at: int | msgspec.UnsetType = msgspec.UNSET
    starts_at: int | msgspec.UnsetType = msgspec.UNSET
    ends_at: int | msgspec.UnsetType = msgspec.UNSET
    max_participants: Annotated[int, msgspec.Meta(ge=1, le=100_000)] | msgspec.UnsetType = (
        msgspec.UNSET
    )
    scoring: Literal["best_wpm", "points"] | msgspec.UnsetType = msgspec.UNSET
    points_by_place: Annotated[list[int], msgspec.Meta(max_length=50)] | msgspec.UnsetType = (
        msgspec.UNSET
    )
    allow_guests: bool | msgspec.UnsetType = msgspec.UNSET
    min_rating: float | msgspec.UnsetType | None = msgspec.UNSET
    max_rating: float | msgspec.UnsetType | None = msgspec.UNSET


# Edit body field -> ``TournamentState`` field.
_EDIT_FIELDS = {
    "title": "title",
    "opens_at": "opens_at_ms",
    "starts_at": "starts_at_ms",
    "ends_at": "ends_at_ms",
    "max_participants": "max_participants",
    "scoring": "scoring",
    "points_by_place": "points_by_place",
    "allow_guests": "allow_guests",
    "min_rating": "min_rating",
    "max_rating": "max_rating",
}


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
async def create(request: Request, body: TournamentCreate, claims: Claims) -> Answer:
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
    await TournamentStore.of(platform).create(state, claims.subject, now)
    await platform.accounts.audit(
        "tournament_create",
        "success",
        user_id=claims.subject,
        actor_id=claims.subject,
        ip=client_ip(request),
        detail={
            "tournament": state.tournament_id,
            "title": state.title,
            "opens_at": state.opens_at_ms,
            "starts_at": state.starts_at_ms,
            "ends_at": state.ends_at_ms,
            "scoring": str(state.scoring),
        },
    )
    return Answer(_view(state), status=201)


@api.route(
    "PATCH",
    "/api/v1/tournaments/{tournament_id}",
    summary="Edit a tournament (admins): schedule and scoring before it starts",
    tag="tournaments",
    body=TournamentEdit,
    response=TournamentView,
    auth="user",
    errors=(400, 401, 403, 404, 409, 429),
)
async def edit(request: Request, body: TournamentEdit, claims: Claims) -> Answer:
    require_role(claims, frozenset({Role.ADMIN}), "admins")
    platform = platform_of(request)
    tid = _tournament_id(request)
    given = {k: v for k, v in msgspec.structs.asdict(body).items() if v is not msgspec.UNSET}
    values = {_EDIT_FIELDS[k]: v for k, v in given.items()}
    if isinstance(values.get("title"), str):
        values["title"] = values["title"].strip()
    now = _now_ms()
    changes: dict[str, list[Any]] = {}

    def step(state: tournament.TournamentState) -> tournament.Step:
        try:
            new, effects = tournament.handle(state, tournament.Edit(values), now)
        except tournament.TournamentError as exc:
            raise AppError(exc.code, exc.message) from None
        changes.clear()
        for name, field in _EDIT_FIELDS.items():
            old_value, new_value = getattr(state, field), getattr(new, field)
            if old_value != new_value:
                changes[name] = [_plain(old_value), _plain(new_value)]
        return new, effects

    store = TournamentStore.of(platform)
    await store.change(tid, step, now)
    if changes:
        await platform.accounts.audit(
            "tournament_edit",
            "success",
            user_id=claims.subject,
            actor_id=claims.subject,
            ip=client_ip(request),
            detail={"tournament": tid, "changes": changes},
        )
    state = await store.load(tid)
    if state is None:
        raise AppError(ErrorCode.NOT_FOUND, "no such tournament")
    return Answer(_view(tournament.handle(state, tournament.Tick(), now)[0]))


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _tournament_id(request: Request) -> str:
    tid: str = request.path_params["tournament_id"]
    if not 1 <= len(tid) <= MAX_ID:
        raise AppError(ErrorCode.NOT_FOUND, "no such tournament")
    return tid


@api.route(
    "GET",
    "/api/v1/tournaments",
    summary="Tournaments, newest first",
    tag="tournaments",
    response=list[TournamentView],
    errors=(429,),
)
async def list_tournaments(request: Request) -> Answer:
    store = TournamentStore.of(platform_of(request))
    return Answer(await store.listing(_now_ms(), MAX_LIST))


@api.route(
    "GET",
    "/api/v1/tournaments/{tournament_id}",
    summary="One tournament with its top rankings",
    tag="tournaments",
    response=TournamentView,
    errors=(404, 429),
)
async def view(request: Request) -> Answer:
    store = TournamentStore.of(platform_of(request))
    state = await store.load(_tournament_id(request))
    if state is None:
        raise AppError(ErrorCode.NOT_FOUND, "no such tournament")
    state, _ = tournament.handle(state, tournament.Tick(), _now_ms())
    return Answer(_view(state, top=tournament.rankings(state)))


@api.route(
    "POST",
    "/api/v1/tournaments/{tournament_id}/join",
    summary="Join a tournament",
    tag="tournaments",
    response=TournamentView,
    auth="any",
    errors=(401, 403, 404, 409, 429),
)
async def join(request: Request, claims: Claims) -> Answer:
    platform = platform_of(request)
    tid = _tournament_id(request)
    now = _now_ms()
    rating = None
    if not claims.is_guest:
        stored = await platform.ratings.get(claims.subject)
        rating = stored.mu if stored is not None else 1500.0
    event = tournament.Join(claims.subject, claims.name, claims.is_guest, rating)

    def step(state: tournament.TournamentState) -> tournament.Step:
        try:
            return tournament.handle(state, event, now)
        except tournament.TournamentError as exc:
            raise AppError(exc.code, exc.message) from None

    store = TournamentStore.of(platform)
    await store.change(tid, step, now)
    state = await store.load(tid)
    if state is None:
        raise AppError(ErrorCode.NOT_FOUND, "no such tournament")
    return Answer(_view(state))


def _view(
    state: tournament.TournamentState, top: list[dict[str, Any]] | None = None
) -> TournamentView:
    snap = tournament.snapshot(state)
    return TournamentView(**snap, top=top or [])
