"""A tournament's state: the database is the record, ``tournament:{id}:state`` a cache.

REST (create, edit, join), the ``tournaments`` worker (race scores, the
sweep) and the gateways (``tournament.watch``, tournament races) all go
through ``TournamentStore``; a gateway built without one (tests) reads the
cache alone through ``CachedTournaments``.

Rules
-----
1. ``tournaments`` (settings, phase as ``status``, ``seq``),
   ``tournament_participants`` (joined, score, races, when the score was
   reached, final rank) and ``tournament_races`` (races counted) hold all of
   ``rooms.tournament.TournamentState``. ``load`` reads the cache and, on a
   miss, rebuilds the state from them and fills the cache with
   ``set_if_absent`` (a fill never buries a newer write).
2. ``change`` applies a pure step under a short lock in the cache, then
   writes what changed in one transaction guarded by ``seq`` (``UPDATE …
   WHERE seq = <the state's>``). A state the database is ahead of (a write
   the cache lost, a writer without the lock) matches no row: the cached
   state is dropped, rebuilt from the database and the step tried again, at
   most ``CHANGE_ATTEMPTS`` times. A database behind the cached state (a
   tournament from before migration 0006, whose standings lived only in the
   cache) takes the whole state. Only after the commit is the cache written
   and are the broadcasts published: a failed write changes nothing.
3. A step that finishes the tournament (``TournamentFinished``) writes, in
   the same transaction, every ranked participant's ``final_rank``,
   ``status = 'finished'`` and ``finished_at``.
4. ``sweep`` passes every tournament whose phase the clock has moved
   (scheduled → open → running → finished) through ``change`` with a
   ``Tick``, so a tournament ends, and its final standings reach the
   database, even when no race arrives. Every process of the
   ``tournaments`` group runs it every ``tournament_sweep_s``; running it
   twice changes nothing more.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

import orjson
from sqlalchemy import and_, func, or_, select

from rooms import tournament
from typogram import keys
from typogram.codes import ErrorCode
from typogram.db.database import Database
from typogram.db.schema import tournament_participants, tournament_races, tournaments
from typogram.errors import AppError
from typogram.logs import get_logger
from typogram.ports import Cache, PubSub
from typogram.protocol import push_payload
from typogram.tokens import GUEST_PREFIX

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from typogram.platform import Platform

LOCK_TTL_S: Final = 5.0
LOCK_WAIT_S: Final = 5.0
CHANGE_ATTEMPTS: Final = 3
SWEEP_BATCH: Final = 100
MIN_CACHE_S: Final = 3600.0

Change = Callable[[tournament.TournamentState], tournament.Step]
log = get_logger("typogram.tournaments")

_t, _p, _r = tournaments, tournament_participants, tournament_races


def _lock(tournament_id: str) -> str:
    return keys.tournament_state(tournament_id) + ":lock"


def _tick(state: tournament.TournamentState, now_ms: int) -> tournament.Step:
    return tournament.handle(state, tournament.Tick(), now_ms)


async def _cached(cache: Cache, tournament_id: str) -> tournament.TournamentState | None:
    raw = await cache.get(keys.tournament_state(tournament_id))
    return tournament.decode(raw) if raw is not None else None


class CachedTournaments:
    """Tournaments read from the cache alone: no database, nothing rebuilt or written."""

    def __init__(self, cache: Cache) -> None:
        self._cache = cache

    async def load(self, tournament_id: str) -> tournament.TournamentState | None:
        return await _cached(self._cache, tournament_id)


class TournamentStore:
    def __init__(
        self, db: Database, cache: Cache, pubsub: PubSub, *, keep_after_end_s: float
    ) -> None:
        self._db = db
        self._cache = cache
        self._pubsub = pubsub
        self._keep_s = keep_after_end_s

    @classmethod
    def of(cls, platform: Platform) -> TournamentStore:
        return cls(
            platform.db,
            platform.cache,
            platform.pubsub,
            keep_after_end_s=platform.settings.tournament_keep_after_end_s,
        )

    # -- reading -----------------------------------------------------------------------------

    async def load(self, tournament_id: str) -> tournament.TournamentState | None:
        """Rule 1: the cached state, else the database's (``None``: no such tournament)."""
        if len(tournament_id) > 32:
            return None
        cached = await _cached(self._cache, tournament_id)
        if cached is not None:
            return cached
        state = await self.rebuild(tournament_id)
        if state is not None:
            await self._save(state, fill=True)
        return state

    async def rebuild(self, tournament_id: str) -> tournament.TournamentState | None:
        """The state as the database holds it (primary: it follows writes)."""
        async with self._db.read(primary=True) as conn:
            row = (await conn.execute(select(_t).where(_t.c.id == tournament_id))).first()
            if row is None:
                return None
            people = await conn.execute(
                select(_p)
                .where(_p.c.tournament_id == tournament_id)
                .order_by(_p.c.joined_at, _p.c.user_id)
            )
            counted = await conn.execute(
                select(_r.c.race_id).where(_r.c.tournament_id == tournament_id)
            )
            return _state_of(row, people.all(), [r.race_id for r in counted])

    async def listing(self, now_ms: int, limit: int) -> list[dict[str, Any]]:
        """Snapshots of the newest tournaments (by start), from the database alone."""
        async with self._db.read() as conn:
            rows = (
                await conn.execute(select(_t).order_by(_t.c.starts_at.desc(), _t.c.id).limit(limit))
            ).all()
            counts: dict[str, int] = dict(
                (
                    await conn.execute(
                        select(_p.c.tournament_id, func.count())
                        .where(_p.c.tournament_id.in_([r.id for r in rows]))
                        .group_by(_p.c.tournament_id)
                    )
                ).all()
            )
        out = []
        for row in rows:
            state, _ = _tick(_state_of(row, [], []), now_ms)
            joined = int(counts.get(row.id, 0))
            out.append({**tournament.snapshot(state), "participants": joined, "top": []})
        return out

    # -- writing -----------------------------------------------------------------------------

    async def create(self, state: tournament.TournamentState, created_by: str, now: int) -> None:
        async with self._db.write() as conn:
            await conn.execute(
                _t.insert().values(
                    id=state.tournament_id,
                    **_settings_of(state),
                    created_by=created_by[:64],
                    created_at=now,
                    updated_at=now,
                )
            )
        await self._save(state)

    async def change(
        self, tournament_id: str, step: Change, now_ms: int
    ) -> list[tournament.Effect]:
        """Rule 2: apply ``step`` and persist it; raises ``AppError`` (``step`` may too)."""
        token = uuid.uuid4().hex.encode()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LOCK_WAIT_S
        while not await self._cache.set_if_absent(_lock(tournament_id), token, LOCK_TTL_S):
            if loop.time() > deadline:
                raise AppError(ErrorCode.UNAVAILABLE, "the tournament is busy; retry")
            await asyncio.sleep(0.02)
        try:
            effects = await self._change_locked(tournament_id, step, now_ms)
        finally:
            if await self._cache.get(_lock(tournament_id)) == token:
                await self._cache.delete(_lock(tournament_id))
        channel = keys.channel_tournament(tournament_id)
        for effect in effects:
            if isinstance(effect, tournament.Broadcast):
                await self._pubsub.publish(channel, push_payload(effect.type, effect.data))
        return effects

    async def _change_locked(
        self, tournament_id: str, step: Change, now_ms: int
    ) -> list[tournament.Effect]:
        for _ in range(CHANGE_ATTEMPTS):
            state = await self.load(tournament_id)
            if state is None:
                raise AppError(ErrorCode.NOT_FOUND, f"no tournament {tournament_id}")
            new, effects = step(state)
            if new is state:
                return effects
            async with self._db.write() as conn:
                written = await _write(conn, state, new, effects, now_ms)
            if written:
                await self._save(new)
                return effects
            # The database is ahead of this state: forget it and start again from there.
            await self._cache.delete(keys.tournament_state(tournament_id))
        raise AppError(ErrorCode.UNAVAILABLE, "the tournament is busy; retry")

    async def sweep(self, now_ms: int) -> int:
        """Rule 4; returns how many tournaments it moved."""
        due = or_(
            and_(_t.c.status == str(tournament.Phase.SCHEDULED), _t.c.opens_at <= now_ms),
            and_(_t.c.status == str(tournament.Phase.OPEN), _t.c.starts_at <= now_ms),
            and_(
                _t.c.status == str(tournament.Phase.RUNNING),
                _t.c.ends_at + _t.c.grace_ms <= now_ms,
            ),
        )
        async with self._db.read(primary=True) as conn:
            found = await conn.execute(
                select(_t.c.id).where(due).order_by(_t.c.ends_at).limit(SWEEP_BATCH)
            )
            ids = [r.id for r in found]
        moved = 0
        for tournament_id in ids:
            try:
                await self.change(tournament_id, lambda s: _tick(s, now_ms), now_ms)
                moved += 1
            except AppError as exc:  # busy: the next sweep comes soon
                log.warning(
                    "tournament sweep skipped one",
                    extra={"tournament": tournament_id, "reason": exc.message},
                )
        return moved

    async def _save(self, state: tournament.TournamentState, *, fill: bool = False) -> None:
        end_s = (state.ends_at_ms + state.grace_ms) / 1000
        ttl = max(MIN_CACHE_S, end_s - time.time() + self._keep_s)
        key = keys.tournament_state(state.tournament_id)
        if fill:
            if not await self._cache.set_if_absent(key, tournament.encode(state), ttl):
                return
        else:
            await self._cache.set(key, tournament.encode(state), ttl)
        top = orjson.dumps(tournament.rankings(state))
        await self._cache.set(keys.tournament_rankings(state.tournament_id), top, ttl)


# -- rows <-> state ------------------------------------------------------------------------------


def _settings_of(state: tournament.TournamentState) -> dict[str, Any]:
    return {
        "title": state.title,
        "opens_at": state.opens_at_ms,
        "starts_at": state.starts_at_ms,
        "ends_at": state.ends_at_ms,
        "max_participants": state.max_participants,
        "scoring": str(state.scoring),
        "points_by_place": orjson.dumps(list(state.points_by_place)).decode(),
        "allow_guests": int(state.allow_guests),
        "min_rating": state.min_rating,
        "max_rating": state.max_rating,
        "grace_ms": state.grace_ms,
        "top_n": state.top_n,
        "status": str(state.phase),
        "seq": state.seq,
    }


def _state_of(
    row: Any, people: Sequence[Any], counted: Sequence[str]
) -> tournament.TournamentState:
    status = row.status if row.status in set(tournament.Phase) else tournament.Phase.SCHEDULED
    return tournament.TournamentState(
        tournament_id=row.id,
        title=row.title,
        opens_at_ms=row.opens_at,
        starts_at_ms=row.starts_at,
        ends_at_ms=row.ends_at,
        max_participants=row.max_participants,
        scoring=tournament.Scoring(row.scoring),
        points_by_place=tuple(int(p) for p in orjson.loads(row.points_by_place)),
        allow_guests=bool(row.allow_guests),
        min_rating=row.min_rating,
        max_rating=row.max_rating,
        grace_ms=row.grace_ms,
        top_n=row.top_n,
        phase=tournament.Phase(status),
        participants={
            p.user_id: tournament.Participant(
                p.user_id, p.name, p.joined_at, float(p.score), int(p.races), p.achieved_at
            )
            for p in people
        },
        counted_races=frozenset(counted),
        seq=row.seq,
    )


async def _write(
    conn: AsyncConnection,
    before: tournament.TournamentState,
    after: tournament.TournamentState,
    effects: Sequence[tournament.Effect],
    now_ms: int,
) -> bool:
    """Rules 2-3 in the caller's transaction; False when the database is ahead of ``before``."""
    tid = after.tournament_id
    finished = any(isinstance(e, tournament.TournamentFinished) for e in effects)
    values = {**_settings_of(after), "updated_at": now_ms}
    if finished:
        values["finished_at"] = now_ms
    moved = await conn.execute(
        _t.update().where(_t.c.id == tid, _t.c.seq == before.seq).values(**values)
    )
    if moved.rowcount != 1:
        stored = (await conn.execute(select(_t.c.seq).where(_t.c.id == tid))).scalar()
        if stored is None or stored > before.seq:
            return False
        # Behind the cache (standings from before the migration): the whole state goes in.
        await conn.execute(_t.update().where(_t.c.id == tid).values(**values))
        before = tournament.TournamentState(tid, "", 0, 0, 1)
    await _write_participants(conn, before, after)
    await _write_races(conn, before, after, now_ms)
    if finished:
        for entry in tournament.rankings(after, limit=None):
            await conn.execute(
                _p.update()
                .where(_p.c.tournament_id == tid, _p.c.user_id == entry["user"])
                .values(final_rank=entry["rank"])
            )
    return True


async def _write_participants(
    conn: AsyncConnection, before: tournament.TournamentState, after: tournament.TournamentState
) -> None:
    tid = after.tournament_id
    for user_id, p in after.participants.items():
        if before.participants.get(user_id) == p:
            continue
        values = {
            "name": p.name[:64],
            "joined_at": p.joined_at_ms,
            "score": p.score,
            "races": p.races,
            "achieved_at": p.achieved_at_ms,
        }
        updated = await conn.execute(
            _p.update().where(_p.c.tournament_id == tid, _p.c.user_id == user_id).values(**values)
        )
        if updated.rowcount == 0:
            await conn.execute(
                _p.insert().values(
                    tournament_id=tid,
                    user_id=user_id[:64],
                    status="joined",
                    guest=int(user_id.startswith(GUEST_PREFIX)),
                    **values,
                )
            )


async def _write_races(
    conn: AsyncConnection,
    before: tournament.TournamentState,
    after: tournament.TournamentState,
    now_ms: int,
) -> None:
    new = after.counted_races - before.counted_races
    if not new:
        return
    tid = after.tournament_id
    found = await conn.execute(
        select(_r.c.race_id).where(_r.c.tournament_id == tid, _r.c.race_id.in_(sorted(new)))
    )
    new -= {r.race_id for r in found}
    if new:
        await conn.execute(
            _r.insert(),
            [{"tournament_id": tid, "race_id": r, "counted_at": now_ms} for r in sorted(new)],
        )
