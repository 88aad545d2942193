"""``races`` group (``race-events``): race results, ratings; ``tournaments`` group
(``tournament-scores``): a finished race's standings into its tournament.

* ``race.result`` (one per accepted finish): a ``race_results`` row, once
  (id ``<race>:<user>``).
* ``race.finished``: ratings via ``matchmaking.rating.update`` for the rated
  players, stored in ``user_ratings`` together with a ``rated_races`` row in
  one transaction, so a replayed event changes nothing; the new ratings
  also go to the cache (``keys.user_rating``) for the matchmaker.
* ``tournament.race``: ``rooms.tournament.RaceCompleted`` applied to the
  cached tournament state (``workers.tournament_store``); a race already
  counted or outside the window is skipped (idempotent).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import select

from matchmaking import rating
from rooms import tournament
from typogram import keys
from typogram.codes import ErrorCode
from typogram.db.schema import race_results, rated_races, user_ratings
from typogram.errors import AppError
from typogram.ports import Event
from typogram.topics import RACE_EVENTS, TOURNAMENT_SCORES
from workers import tournament_store
from workers.runtime import Group

if TYPE_CHECKING:
    from typogram.platform import Platform

RATING_CACHE_TTL_S = 24 * 3600


async def handle_race_event(platform: Platform, topic: str, event: Event) -> None:
    if event.type == "race.result":
        await store_result(platform, event)
    elif event.type == "race.finished":
        await rate_race(platform, event)


async def store_result(platform: Platform, event: Event) -> None:
    d = event.data
    if d.get("guest"):
        return  # guests race unrated and unrecorded
    row_id = f"{d['race']}:{d['user']}"[:100]
    row = {
        "id": row_id,
        "race_id": str(d["race"])[:32],
        "user_id": str(d["user"])[:64],
        "place": int(d["place"]),
        "wpm": float(d["wpm"]),
        "raw_wpm": float(d["raw_wpm"]),
        "accuracy": float(d["accuracy"]),
        "consistency": float(d["consistency"]),
        "time_ms": int(d["time_ms"]),
        "guest": 0,
        "difficulty": str(d.get("difficulty", ""))[:8],
        "lang": str(d.get("lang", ""))[:8],
        "seed": int(d.get("seed", 0)),
        "flags": ",".join(d.get("flags") or ())[:255],
        "tournament_id": d.get("tournament"),
        "created_at": event.ts,
    }
    async with platform.db.write() as conn:
        found = await conn.execute(select(race_results.c.id).where(race_results.c.id == row_id))
        if found.first() is None:
            await conn.execute(race_results.insert().values(**row))


async def rate_race(platform: Platform, event: Event) -> None:
    race_id = str(event.data["race"])[:32]
    standings: list[dict[str, Any]] = list(event.data.get("standings") or [])
    # ``rated`` false: guests, flagged finishes, custom-text races (rooms.race rule 11).
    rated = [s for s in standings if s.get("rated", not s.get("guest"))]
    if len(rated) < 2:
        return
    users = [str(s["user"]) for s in rated]
    async with platform.db.write() as conn:
        done = await conn.execute(
            select(rated_races.c.race_id).where(rated_races.c.race_id == race_id)
        )
        if done.first() is not None:
            return
        rows = await conn.execute(select(user_ratings).where(user_ratings.c.user_id.in_(users)))
        before = {r.user_id: rating.Rating(r.mu, r.sigma, r.races) for r in rows}
        after = rating.update(before, rated)
        for user_id, new in after.items():
            values = {"mu": new.mu, "sigma": new.sigma, "races": new.races, "updated_at": event.ts}
            if user_id in before:
                await conn.execute(
                    user_ratings.update().where(user_ratings.c.user_id == user_id).values(**values)
                )
            else:
                await conn.execute(user_ratings.insert().values(user_id=user_id, **values))
        await conn.execute(rated_races.insert().values(race_id=race_id, rated_at=event.ts))
    for user_id, new in after.items():
        doc = {"mu": new.mu, "sigma": new.sigma, "races": new.races, "display": new.display}
        await platform.cache.set(keys.user_rating(user_id), orjson.dumps(doc), RATING_CACHE_TTL_S)


async def handle_tournament_score(platform: Platform, topic: str, event: Event) -> None:
    if event.type != "tournament.race":
        return
    d = event.data
    completed = tournament.RaceCompleted(
        race_id=str(d["race"]),
        started_at_ms=int(d.get("started_at") or 0),
        ended_at_ms=int(d.get("ended_at") or event.ts),
        standings=list(d.get("standings") or []),
    )

    def step(state: tournament.TournamentState) -> tournament.Step:
        try:
            return tournament.handle(state, completed, event.ts)
        except tournament.TournamentError:
            return state, []  # counted already, or outside the window: nothing to do

    try:
        await tournament_store.change(
            platform.cache, platform.pubsub, str(d["tournament"]), step, event.ts
        )
    except AppError as exc:
        if exc.code is not ErrorCode.NOT_FOUND:
            raise  # retried, then dead-lettered by the runtime


GROUP = Group(name="races", topics=(RACE_EVENTS,), handle=handle_race_event)
TOURNAMENTS_GROUP = Group(
    name="tournaments", topics=(TOURNAMENT_SCORES,), handle=handle_tournament_score
)
