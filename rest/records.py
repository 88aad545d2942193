"""Records people can see: anyone's stats, and the caller's own race history.

Both come from ``typogram.records.Records`` (the tables the workers keep,
cached and stamped with a version the workers renew after each commit).
The history is the caller's alone: the user is the token's subject, and
no parameter names another; guests have none (401).
"""

from __future__ import annotations

import msgspec
from starlette.requests import Request

from rest.context import paging, platform_of
from rest.routing import Answer, Api
from rest.users import user_named
from typogram.tokens import Claims

api = Api()
MAX_PAGE = 100


class PersonalBestView(msgspec.Struct):
    category: str
    mode: str
    length: int
    lang: str
    punctuation: bool
    numbers: bool
    difficulty: str
    wpm: float
    accuracy: float
    achieved_at: int


class RaceTotalsView(msgspec.Struct):
    played: int
    finished: int
    won: int


class RatingView(msgspec.Struct):
    rating: float  # mu - 3 sigma, what profiles show
    mu: float
    sigma: float
    races: int
    rank: int  # 1-based among rated users, by rating
    updated_at: int


class StreakView(msgspec.Struct):
    current: int
    best: int
    last_date: str | None


class TrendPoint(msgspec.Struct):
    at: int
    wpm: float
    accuracy: float


class UserStatsView(msgspec.Struct):
    user_id: str
    username: str
    tests: int
    time_typed_ms: int
    average_wpm: float | None
    average_accuracy: float | None
    best_wpm: float | None
    personal_bests: list[PersonalBestView]
    races: RaceTotalsView
    rating: RatingView | None
    challenge_streak: StreakView
    wpm_trend: list[TrendPoint]


class RaceRecordView(msgspec.Struct):
    race: str
    at: int
    text: str | None
    custom: bool
    difficulty: str
    lang: str
    players: int | None
    place: int
    finished: bool
    wpm: float
    accuracy: float | None
    time_ms: int | None
    tournament: str | None
    rated: bool
    rating_before: float | None
    rating_after: float | None


class RacePage(msgspec.Struct):
    races: list[RaceRecordView]
    next_cursor: str | None


@api.route(
    "GET",
    "/api/v1/users/{username}/stats",
    summary="A user's public stats: tests, bests, races, rating and rank, streak",
    tag="users",
    response=UserStatsView,
    errors=(404, 429),
)
async def stats(request: Request) -> Answer:
    user = await user_named(request)
    doc = await platform_of(request).records.stats(user.id)
    return Answer({**doc, "username": user.username})


@api.route(
    "GET",
    "/api/v1/users/me/races",
    summary="The caller's races, newest first, paged by cursor",
    tag="users",
    response=RacePage,
    auth="user",
    errors=(400, 401, 429),
    query={
        "limit": f"page size, 1..{MAX_PAGE} (default 20)",
        "cursor": "next_cursor of the previous page",
    },
)
async def my_races(request: Request, claims: Claims) -> Answer:
    limit, cursor = paging(request, max_page=MAX_PAGE)
    page, following = await platform_of(request).records.races_page(
        claims.subject, limit=limit, cursor=cursor
    )
    return Answer({"races": page, "next_cursor": following})
