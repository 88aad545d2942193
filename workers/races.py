"""``races`` group (``race-events``): a finished race's record; ``tournaments`` group
(``tournament-scores``): a finished race's standings into its tournament.

* ``race.result`` (one per race, id = the race id; ``typogram.race_events``
  reads the version 1 name ``race.finished`` too): in **one transaction**
  (``record_race``) the ``rated_races`` row that claims the race, its
  ``races`` row (text, custom or not), a ``race_results`` row per registered
  racer (``typogram.race_records``), and for the rated standings the new
  ``user_ratings`` (``matchmaking.rating.update``, rows locked while read)
  with one ``rating_history`` row each. A failure anywhere rolls all of it
  back: no rating change without its results, no results without their
  ratings. A replay (or a concurrent duplicate, which waits on the claim row
  and then fails on it) changes nothing. After the commit, also for a
  replay, the players' stored ratings go to the cache and their cached
  records are marked stale.
* ``race.finished`` (one per finish): nothing here; its row is written with
  the race's ``race.result`` (boards and achievements read it, in their
  own groups).
* Every ``rating_rank_histogram_s / 2`` the group rebuilds the ratings
  histogram behind ranks when it is due (``typogram.ratings`` rule 5).
* ``tournament.race``: ``rooms.tournament.RaceCompleted`` applied through
  ``tournaments.store``; a race already counted or outside the window
  is skipped (idempotent). Only accepted finishes count (``rooms.tournament``
  rule 3): the race's ``custom`` and each finisher's ``flags`` go with it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from matchmaking import rating
from rooms import tournament
from tournaments.store import TournamentStore
from typogram import race_events, race_records
from typogram.codes import ErrorCode
from typogram.db.schema import race_results, races, rated_races, rating_history, user_ratings
from typogram.errors import AppError
from typogram.ports import Event
from typogram.results import race_accepted
from typogram.topics import RACE_EVENTS, TOURNAMENT_RACE, TOURNAMENT_SCORES
from workers.runtime import Group, Periodic

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from typogram.platform import Platform


async def handle_race_event(platform: Platform, topic: str, event: Event) -> None:
    if race_events.kind_of(event) == race_events.STANDINGS:
        await record_race(platform, event)


async def record_race(platform: Platform, event: Event) -> bool:
    """Store a finished race once; True when this call stored it."""
    race = race_records.decode(event.data)
    now = int(time.time() * 1000)
    try:
        async with platform.db.write() as conn:
            fresh = not await _recorded(conn, race.race)
            if fresh:
                # The claim first: a concurrent duplicate blocks on this row, then fails.
                await conn.execute(rated_races.insert().values(race_id=race.race, rated_at=now))
                await conn.execute(races.insert().values(**race_records.race_row(race, now)))
                await _store_results(conn, race, now)
                await _rate(conn, race)
    except IntegrityError:
        async with platform.db.read(primary=True) as conn:
            if not await _recorded(conn, race.race):
                raise
        fresh = False  # the duplicate's: it stored the race
    players = [s.user for s in race.registered]
    rated = [str(s["user"]) for s in race.rated_standings()]
    if fresh:  # each accepted finish joins its racer's history, once
        for user in rated:
            score = race.results.get(user)
            if score is not None and not score.flags:
                await race_accepted(platform.db, platform.cache, user, score.wpm)
    # Also for a replay: a cache write lost after the commit is healed by the retry.
    await platform.ratings.remember(await platform.ratings.read(rated))
    await platform.records.changed(players)
    return fresh


async def _recorded(conn: AsyncConnection, race_id: str) -> bool:
    found = await conn.execute(
        select(rated_races.c.race_id).where(rated_races.c.race_id == race_id)
    )
    return found.first() is not None


async def _store_results(conn: AsyncConnection, race: race_records.FinishedRace, now: int) -> None:
    rows = race_records.result_rows(race, now)
    if not rows:
        return
    # Rows an older version stored from ``race.result`` stay as they are.
    found = await conn.execute(
        select(race_results.c.id).where(race_results.c.id.in_([r["id"] for r in rows]))
    )
    kept = {r.id for r in found}
    missing = [r for r in rows if r["id"] not in kept]
    if missing:
        await conn.execute(race_results.insert(), missing)


async def _rate(conn: AsyncConnection, race: race_records.FinishedRace) -> None:
    standings = race.rated_standings()
    users = [str(s["user"]) for s in standings]
    if len(users) < 2:
        return
    t = user_ratings
    found = await conn.execute(select(t).where(t.c.user_id.in_(users)).with_for_update())
    before = {r.user_id: rating.Rating(r.mu, r.sigma, r.races) for r in found}
    after = rating.update(before, standings)
    at = race.ended_at if race.ended_at is not None else int(time.time() * 1000)
    places = {str(s["user"]): int(s["place"]) for s in standings}
    history: list[dict[str, Any]] = []
    for user_id, new in after.items():
        values = {
            "mu": new.mu,
            "sigma": new.sigma,
            "races": new.races,
            "display": new.display,
            "updated_at": at,
        }
        if user_id in before:
            await conn.execute(t.update().where(t.c.user_id == user_id).values(**values))
        else:
            await conn.execute(t.insert().values(user_id=user_id, **values))
        old = before.get(user_id, rating.Rating())
        history.append(
            {
                "user_id": user_id,
                "race_id": race.race,
                "mu_before": old.mu,
                "sigma_before": old.sigma,
                "display_before": old.display,
                "mu_after": new.mu,
                "sigma_after": new.sigma,
                "display_after": new.display,
                "races": new.races,
                "place": places[user_id],
                "created_at": at,
            }
        )
    await conn.execute(rating_history.insert(), history)


async def handle_tournament_score(platform: Platform, topic: str, event: Event) -> None:
    if event.type != TOURNAMENT_RACE:
        return
    d = event.data
    results = d.get("results") or {}
    completed = tournament.RaceCompleted(
        race_id=str(d["race"]),
        started_at_ms=int(d.get("started_at") or 0),
        ended_at_ms=int(d.get("ended_at") or event.ts),
        # Each finisher's flags from the replay beside its row: flagged finishes don't count.
        standings=[
            {**row, "flags": list((results.get(str(row.get("user"))) or {}).get("flags") or [])}
            for row in d.get("standings") or []
        ],
        custom=bool(d.get("custom")),
    )

    def step(state: tournament.TournamentState) -> tournament.Step:
        try:
            return tournament.handle(state, completed, event.ts)
        except tournament.TournamentError:
            return state, []  # counted already, or outside the window: nothing to do

    try:
        await TournamentStore.of(platform).change(str(d["tournament"]), step, event.ts)
    except AppError as exc:
        if exc.code is not ErrorCode.NOT_FOUND:
            raise  # retried, then dead-lettered by the runtime


async def sweep_tournaments(platform: Platform) -> None:
    """``tournaments.store`` rule 4, on the ``tournaments`` group's schedule."""
    await TournamentStore.of(platform).sweep(int(time.time() * 1000))


async def refresh_rank_histogram(platform: Platform) -> None:
    """``typogram.ratings`` rule 5, ahead of the readers."""
    await platform.ratings.refresh_histogram(int(time.time() * 1000))


GROUP = Group(
    name="races",
    topics=(RACE_EVENTS,),
    handle=handle_race_event,
    periodic=(
        Periodic(
            "rating-histogram", lambda s: s.rating_rank_histogram_s / 2, refresh_rank_histogram
        ),
    ),
)
TOURNAMENTS_GROUP = Group(
    name="tournaments",
    topics=(TOURNAMENT_SCORES,),
    handle=handle_tournament_score,
    periodic=(Periodic("tournament-sweep", lambda s: s.tournament_sweep_s, sweep_tournaments),),
)
