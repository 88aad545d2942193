"""Matchmaking on a gateway node: queue tickets, match them, start their races.

``join`` puts a ticket in its (difficulty, lang) queue with the player's
rating (``RatingSource``: ``typogram.ratings.Ratings`` reads the cache, then
the table the ``races`` worker writes; guests and unrated players 1500;
without a source, as in tests that need no ratings, everyone 1500) and this
node's id, so whoever matches it knows where
to send ``match.found``. Every node runs ``run``: each ``match_interval_ms``
it reads every queue, asks ``matchmaking.policy.match`` for groups, removes
a group's tickets atomically (``MatchQueues.take``, all or none: when two
nodes match the same tickets only one wins), creates the race with a seeded
text (``typogram.texts``; the seed is stored in the race) through the race
engine, which then owns it, and sends a ``matched`` message to each
player's node inbox; that node delivers ``match.found`` to the player's
sessions, subscribes them to the race and tells the race they showed up.
Pub/sub keeps nothing, so a ``matched`` message can be lost (a node that has
not resubscribed yet after a Redis outage): the matching node sends it again
every ``redeliver`` round (each second) while the seat is still awaited, up to
the race's no-show time; a node delivers ``match.found`` to a session once
and only confirms the seat again. A seat nobody takes up by then is forfeited
(``rooms.race`` rule 5a). Tickets older than
``match_ticket_ttl_s`` are dropped. A ``match.cancel`` that arrives after its
ticket was matched answers ``conflict`` naming the race (``cancel``).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import uuid
from collections.abc import Callable
from typing import Protocol

import msgspec

from gateway.races.engine import RaceEngine
from gateway.races.messages import Matched
from gateway.sessions.session import Session
from matchmaking.policy import MatchPolicy, match
from rooms import race
from rooms.race_state import RaceConfig, RaceState
from typogram import texts
from typogram.codes import ErrorCode
from typogram.errors import AppError
from typogram.match_queues import MatchQueues, MatchTicket, QueuedTicket
from typogram.ports import Cache
from typogram.protocol import MatchJoin, push_payload
from typogram.ratings import StoredRating
from typogram.settings import Settings

log = logging.getLogger(__name__)

GUEST_RATING = 1500.0


class RatingSource(Protocol):
    async def get(self, user_id: str) -> StoredRating | None:
        """The user's stored rating; ``None`` when unrated."""
        ...


def race_config(settings: Settings) -> RaceConfig:
    return RaceConfig(
        max_players=settings.race_max_players,
        countdown_ms=settings.race_countdown_ms,
        time_limit_ms=settings.race_time_limit_ms,
        no_show_ms=settings.race_no_show_ms,
        wpm_cap=settings.typing_wpm_cap,
        resume_ms=int(settings.ws_resume_window_s * 1000),
        progress_tolerance_ms=settings.race_progress_tolerance_ms,
        progress_delay_ms=settings.race_progress_delay_ms,
        board_min_seconds=settings.typing_board_min_seconds,
        board_min_words=settings.typing_board_min_words,
    )


def race_text(settings: Settings, difficulty: str, lang: str, seed: int) -> str:
    if difficulty not in ("easy", "medium", "hard"):
        raise AppError(ErrorCode.BAD_REQUEST, f"unknown difficulty {difficulty!r}")
    spec = texts.TextSpec("words", lang, count=settings.race_words, difficulty=difficulty)  # type: ignore[arg-type]
    try:
        return texts.generate(spec, seed, wpm_cap=settings.typing_wpm_cap)
    except texts.TextError as exc:
        raise AppError(ErrorCode.BAD_REQUEST, str(exc)) from None


def marker_ttl(settings: Settings) -> float:
    """How long a player stays marked in a race if nobody releases them."""
    return (settings.race_countdown_ms + settings.race_time_limit_ms) / 1000 + 60


class Matchmaker:
    def __init__(
        self,
        settings: Settings,
        *,
        node_id: str,
        queue: MatchQueues,
        cache: Cache,
        engine: RaceEngine,
        clock: Callable[[], float],
        ratings: RatingSource | None = None,
    ) -> None:
        self._s = settings
        self._node = node_id
        self._queue = queue
        self._cache = cache
        self._ratings = ratings
        self._engine = engine
        self._clock = clock
        self._policy = MatchPolicy(
            max_players=settings.race_max_players, max_wait_ms=settings.match_max_wait_ms
        )
        self._local: dict[str, Session] = {}  # tickets queued from this node
        # Races started here whose seats may still be awaited: until when to send their
        # ``matched`` messages again, and to which node each goes.
        self._unconfirmed: dict[str, tuple[float, list[tuple[str, Matched]]]] = {}

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def join(self, session: Session, body: MatchJoin) -> str:
        if body.lang not in texts.LANGUAGES:
            raise AppError(ErrorCode.BAD_REQUEST, f"unsupported language {body.lang!r}")
        user = session.user
        ticket = MatchTicket(
            ticket_id=uuid.uuid4().hex[:20],
            user_id=user.id,
            rating=GUEST_RATING if user.guest else await self._rating(user.id),
            difficulty=body.difficulty,
            lang=body.lang,
            enqueued_at_ms=self._now_ms(),
            guest=user.guest,
        )
        where = await self._queue.enqueue(
            QueuedTicket(ticket, user.name, self._node), self._s.match_ticket_ttl_s
        )
        if where is not None:
            what = "queued" if where.startswith("q:") else "in a race"
            raise AppError(ErrorCode.CONFLICT, f"you are already {what}")
        self._local[ticket.ticket_id] = session
        return ticket.ticket_id

    async def cancel(self, session: Session, ticket_id: str) -> None:
        """Take the player's ticket out of its queue. A ticket matched before the cancel
        arrived answers ``conflict`` with its race in ``details`` (the player has a seat
        there, forfeited if never taken up); an unknown ticket, or another player's,
        ``not_found`` (``MatchQueues.matched`` names a race to the ticket's player only)."""
        user_id = session.user.id
        if await self._queue.cancel(user_id, ticket_id):
            self._local.pop(ticket_id, None)
            return
        race_id = await self._queue.matched(user_id, ticket_id)
        if race_id is None:
            raise AppError(ErrorCode.NOT_FOUND, "no such ticket in the queue")
        raise AppError(
            ErrorCode.CONFLICT,
            f"the ticket was already matched into race {race_id}: "
            "take up the seat (race.join) or leave it (race.leave)",
            details={"race": race_id},
        )

    async def _rating(self, user_id: str) -> float:
        stored = await self._ratings.get(user_id) if self._ratings is not None else None
        return stored.mu if stored is not None else GUEST_RATING

    async def prune(self) -> None:
        """Cancel the tickets of local sessions that ended."""
        for ticket_id, session in list(self._local.items()):
            if session.ended:
                self._local.pop(ticket_id, None)
                await self._queue.cancel(session.user.id, ticket_id)

    async def redeliver(self) -> int:
        """Send ``matched`` again for the seats of races started here that are still
        awaited (their player never showed up); returns how many were sent."""
        sent = 0
        now = self._clock()
        for race_id, (until, notices) in list(self._unconfirmed.items()):
            state = await self._engine.load(race_id) if now < until else None
            awaited = set() if state is None else state.awaited()
            notices = [(node, m) for node, m in notices if m.user in awaited]
            if not notices:
                self._unconfirmed.pop(race_id, None)
                continue
            self._unconfirmed[race_id] = (until, notices)
            for node, message in notices:
                await self._engine.send_to_node(node, msgspec.structs.replace(message, again=True))
                sent += 1
        return sent

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._s.match_interval_ms / 1000)
            try:
                await self.round()
            except Exception:
                log.exception("matchmaking round failed")

    async def round(self) -> int:
        """One pass over every queue; returns how many races it started."""
        started = 0
        for queue in await self._queue.queues():
            now = self._now_ms()
            live: list[QueuedTicket] = []
            for entry in await self._queue.tickets(queue):
                if now - entry.ticket.enqueued_at_ms > self._s.match_ticket_ttl_s * 1000:
                    await self._queue.cancel(entry.ticket.user_id, entry.ticket.ticket_id)
                else:
                    live.append(entry)
            by_id = {e.ticket.ticket_id: e for e in live}
            result = match([e.ticket for e in live], now, self._policy)
            for group in result.groups:
                chosen = [by_id[t.ticket_id] for t in group]
                race_id = uuid.uuid4().hex[:20]
                if await self._queue.take(queue, chosen, race_id, marker_ttl(self._s)):
                    await self._start(race_id, chosen)
                    started += 1
        return started

    async def _start(self, race_id: str, chosen: list[QueuedTicket]) -> None:
        for entry in chosen:
            self._local.pop(entry.ticket.ticket_id, None)
        first = chosen[0].ticket
        seed = secrets.randbits(31)
        try:
            text = race_text(self._s, first.difficulty, first.lang, seed)
            state = RaceState(
                race_id, text, seed, first.difficulty, first.lang, race_config(self._s)
            )
            joins: list[race.Event] = [
                race.Join(e.ticket.user_id, e.name, e.ticket.guest, shown=False) for e in chosen
            ]
            state, _ = await self._engine.create(state, [*joins, race.Start(None)])
        except Exception:
            for entry in chosen:
                await self._queue.release(entry.ticket.user_id, race_id)
            raise
        players = [r.wire() for r in sorted(state.racers.values(), key=lambda r: r.seat)]
        notices: list[tuple[str, Matched]] = []
        until = self._clock() + (state.config.countdown_ms + state.config.no_show_ms) / 1000
        self._unconfirmed[race_id] = (until, notices)
        for entry in chosen:
            data = {
                "ticket": entry.ticket.ticket_id,
                "race": race_id,
                "players": players,
                "text": text,
                "start_at": state.start_at_ms,
            }
            payload = push_payload("match.found", data).decode()
            message = Matched(entry.ticket.user_id, race_id, payload)
            notices.append((entry.node, message))
            self._engine.watched_from(race_id, entry.node)  # it will watch: publish to it
            await self._engine.send_to_node(entry.node, message)
