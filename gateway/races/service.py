"""Races, matchmaking and tournament watching on one gateway node (the shell around
``rooms.race``, ``matchmaking.policy`` and ``rooms.tournament``).

Pieces:

* ``gateway.races.engine.RaceEngine`` -- the races this node owns. Authority,
  forwarding and failover are described there; in short: one owner per race
  holding a lease ``race:{id}:owner`` (``race_lease_s``, all renewed in one
  fenced script every third of it), state in ``race:{id}:state`` written behind
  and only while the lease is held,
  every changed race at most every 200 ms (``gateway.races.store``), events from other
  nodes forwarded to the owner's inbox channel ``ch:race-node:{node}``
  (``gateway.races.inbox``) and answered there (``race.progress`` is
  fire-and-forget: only a refusal is answered), lapsed leases adopted by
  any node from ``race:active``; every owned race ticked in slices spread
  over ``race_tick_ms`` (``gateway.races.ticker``).
* ``gateway.races.matcher.Matchmaker`` -- tickets in ``race:matchmaking:{difficulty}:{lang}``
  queues (the ``typogram.match_queues`` port), a matcher loop on every node, atomic takes.
* ``gateway.races.members.Watchers`` -- local sessions per race channel
  (``ch:race:{id}``) and tournament channel (``ch:tournament:{id}``), each
  push numbered per session. The pushes of a race this node owns come
  straight from its engine (``gateway.races.pushes``: encoded once, no Redis
  round trip); those of races owned elsewhere through Redis: snapshots in one
  message per tick slice on this node's race inbox, sent only to nodes that
  watch the race, the rest on the race channel, parsed once per node.

A player is in one queue or one race at a time (``race:player:{user}``,
see ``typogram.match_queues``); a race's players are released when it ends.

Sessions: a session joins a race's channel when it creates or joins it, when
``match.found`` reaches it, or on its first race message (so a session
resumed on another node picks the race up again). A node starts watching a
race owned elsewhere only right before forwarding it a command or on a
``match.found`` from its owner: that is how the owner knows whom to publish
to. Every second the node tells the owner about local racers whose socket
dropped (``Disconnect``), came back (``Reconnect``) or whose session ended
(``Leave``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import uuid
from collections.abc import Callable
from typing import Final, Protocol

from gateway.races.engine import RaceEngine
from gateway.races.matcher import Matchmaker, RatingSource, marker_ttl, race_config, race_text
from gateway.races.members import Watchers
from gateway.races.messages import (
    Disconnect,
    Finish,
    Join,
    Leave,
    Matched,
    RaceCommand,
    Reconnect,
    Start,
)
from gateway.sessions.session import Respond, Session, SessionRegistry
from rooms import race, tournament
from rooms.race_state import RaceState
from tournaments.store import CachedTournaments
from typogram import boards, keys
from typogram.codes import ErrorCode
from typogram.errors import AppError
from typogram.fencing import FencedWrites
from typogram.history import History, history_of
from typogram.match_queues import MatchQueues
from typogram.ports import Cache, EventLog, PubSub
from typogram.protocol import (
    MatchCancel,
    MatchJoin,
    RaceCreate,
    RaceFinish,
    RaceJoin,
    RaceLeave,
    RaceMessage,
    RaceProgress,
    RaceStart,
    TournamentUnwatch,
    TournamentWatch,
    parse_push,
)
from typogram.settings import Settings
from typogram.tasks import Supervisor

log = logging.getLogger(__name__)

CODE_ALPHABET: Final = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH: Final = 6
HOUSEKEEPING_S: Final = 1.0


class TournamentSource(Protocol):
    async def load(self, tournament_id: str) -> tournament.TournamentState | None:
        """The tournament's state: the cache, else rebuilt from the database."""
        ...


def _ignore(exc: AppError) -> None:
    """Housekeeping's connection notices need no answer."""


class Races:
    def __init__(
        self,
        settings: Settings,
        *,
        node_id: str,
        cache: Cache,
        fences: FencedWrites,
        pubsub: PubSub,
        events: EventLog,
        sessions: SessionRegistry,
        clock: Callable[[], float],
        queues: MatchQueues,
        ratings: RatingSource | None = None,
        tournaments: TournamentSource | None = None,
        tasks: Supervisor | None = None,
    ) -> None:
        """``queues`` must be open while the service runs (its owner, the platform, closes
        it). ``ratings`` and ``tournaments`` read through to the database; without them
        every player queues at 1500 and tournaments are read from the cache alone.
        ``tasks`` runs the engine's background work."""
        self._s = settings
        self._tournaments = tournaments if tournaments is not None else CachedTournaments(cache)
        self._cache = cache
        self._pubsub = pubsub
        self._sessions = sessions
        self._queue = queues
        self.watchers = Watchers(pubsub)
        self.engine = RaceEngine(
            settings,
            node_id=node_id,
            cache=cache,
            fences=fences,
            pubsub=pubsub,
            events=events,
            clock=clock,
            outcomes=self,
            local=self.watchers,
            tasks=tasks,
        )
        self.matcher = Matchmaker(
            settings,
            node_id=node_id,
            queue=self._queue,
            cache=cache,
            engine=self.engine,
            clock=clock,
            ratings=ratings,
        )
        self._dropped: set[tuple[str, Session]] = set()
        self._halt = asyncio.Event()
        self._opened = False
        self._clock = clock

    # -- lifecycle -----------------------------------------------------------------------

    async def open(self) -> None:
        await self.engine.start()
        self._opened = True

    async def run(self) -> None:
        """Engine, matcher and housekeeping until ``halt`` (or cancellation)."""
        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(self.engine.run(), name="race-engine"),
                group.create_task(self.matcher.run(), name="matcher"),
                group.create_task(self._housekeeping(), name="race-housekeeping"),
            ]
            await self._halt.wait()
            for task in tasks:
                task.cancel()

    async def halt(self, *, release: bool = True) -> None:
        """Stop this node's race service; ``release=False`` acts like a crash (leases lapse)."""
        self._halt.set()
        await self.engine.stop(release=release)

    async def close(self) -> None:
        if not self._opened:
            return
        self._opened = False
        self._halt.set()
        with contextlib.suppress(Exception):
            await self.engine.stop(release=not self.engine.halted)
        with contextlib.suppress(Exception):
            await self.watchers.close()

    def statistics(self) -> dict[str, float]:
        return {**self.engine.statistics(), **self.watchers.statistics()}

    # -- frames --------------------------------------------------------------------------

    async def dispatch(self, session: Session, body: RaceMessage, reply: Respond) -> None:
        if type(body) is RaceProgress:  # the hot path: every racer, twice a second
            await self._progress(session, body, reply)
            return
        user = session.user
        match body:
            case MatchJoin():
                ticket = await self.matcher.join(session, body)
                reply("match.queued", {"ticket": ticket})
            case MatchCancel(ticket=ticket):
                await self.matcher.cancel(session, ticket)
                reply("match.cancelled", {"ticket": ticket})
            case RaceCreate():
                await self._create(session, body, reply)
            case RaceJoin(code=code, race=race_id):
                await self._join(session, code, race_id, reply)
            case RaceStart(race=race_id):
                await self._apply(session, race_id, Start(user.id), reply)
            case RaceLeave(race=race_id):
                await self._apply(session, race_id, Leave(user.id), reply)
                await self.watchers.remove(keys.channel_race(race_id), session)
                await self._queue.release(user.id, race_id)
            case RaceProgress():
                await self._progress(session, body, reply)
            case RaceFinish(race=race_id, keystrokes=log_):
                received = int(self._clock() * 1000)  # the finish's time (rooms.race rule 7)
                known = History()
                if not user.guest:  # the anti-cheat history rules (typogram.history)
                    known = await history_of(
                        self._cache,
                        user.id,
                        self._s.typing_history_min_results,
                        board=boards.RACES,
                        now_ms=received,
                    )
                command = Finish(user.id, log_, received, known.best, known.record)
                await self._apply(session, race_id, command, reply)
            case TournamentWatch(tournament=tid):
                await self._watch_tournament(session, tid, reply)
            case TournamentUnwatch(tournament=tid):
                await self.watchers.remove(keys.channel_tournament(tid), session)
                reply("tournament.unwatched", {"tournament": tid})

    async def _progress(self, session: Session, body: RaceProgress, reply: Respond) -> None:
        """``race.progress``: fire-and-forget when forwarded (a refusal comes back later as
        an error); no reply when applied here either, the next ``race.state`` shows it."""
        channel = keys.channel_race(body.race)
        if not self.watchers.watching(channel, session):
            await self.watchers.add(channel, session)
        await self.engine.progress(
            body.race, session.user.id, body.pos, body.errors, _refused(reply)
        )

    def progress_ready(self, session: Session, body: RaceProgress) -> bool:
        """Whether ``progress_now`` can take this report without an await: the session
        already watches the race and ``RaceEngine.progress_ready`` says yes."""
        return self.engine.progress_ready(body.race) and self.watchers.watching(
            keys.channel_race(body.race), session
        )

    def progress_now(self, session: Session, body: RaceProgress, reply: Respond) -> None:
        """``race.progress`` at once (after ``progress_ready``); raises ``AppError`` when
        the core refuses it, as ``dispatch`` does."""
        self.engine.progress_now(body.race, session.user.id, body.pos, body.errors, _refused(reply))

    async def _apply(
        self, session: Session, race_id: str, command: RaceCommand, reply: Respond
    ) -> None:
        """A command that waits for its replies, wherever the race is owned."""
        channel = keys.channel_race(race_id)
        if not self.watchers.watching(channel, session):
            await self.watchers.add(channel, session)
        try:
            replies = await self.engine.apply(race_id, command)
        except AppError:
            if isinstance(command, Join | Reconnect):
                await self.watchers.remove(channel, session)
            raise
        for kind, data in replies:
            reply(kind, data)

    async def _create(self, session: Session, body: RaceCreate, reply: Respond) -> None:
        user = session.user
        race_id = uuid.uuid4().hex[:20]
        seed = secrets.randbits(31)
        text = (
            body.text
            if body.text is not None
            else race_text(self._s, body.difficulty, body.lang, seed)
        )
        if not text.strip():
            raise AppError(ErrorCode.BAD_REQUEST, "the text is blank")
        if body.tournament is not None:
            await self._check_tournament(session, body.tournament)
        code = await self._new_code(race_id)
        where = await self._queue.claim(user.id, race_id, marker_ttl(self._s))
        if where is not None:
            await self._cache.delete(keys.race_code(code))
            raise AppError(ErrorCode.CONFLICT, "you are already queued or in a race")
        state = RaceState(
            race_id,
            text,
            seed,
            body.difficulty,
            body.lang,
            race_config(self._s),
            tournament_id=body.tournament,
            code=code,
            custom=body.text is not None,  # unrated and off the boards (rooms.race rule 11)
        )
        await self.watchers.add(keys.channel_race(race_id), session)
        _, replies = await self.engine.create(state, [race.Join(user.id, user.name, user.guest)])
        reply("race.created", {"race": race_id, "code": code})
        for kind, data in replies:
            reply(kind, data)

    async def _new_code(self, race_id: str) -> str:
        life = marker_ttl(self._s)
        for _ in range(8):
            code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
            if await self._cache.set_if_absent(keys.race_code(code), race_id.encode(), ttl=life):
                return code
        raise AppError(ErrorCode.UNAVAILABLE, "no free race code; retry")

    async def _join(
        self, session: Session, code: str | None, race_id: str | None, reply: Respond
    ) -> None:
        user = session.user
        if race_id is not None:  # back to a race one is seated in
            await self._apply(session, race_id, Reconnect(user.id), reply)
            return
        if code is None:
            raise AppError(ErrorCode.BAD_REQUEST, "race.join needs a code or a race")
        found = await self._cache.get(keys.race_code(code.upper()))
        if found is None:
            raise AppError(ErrorCode.NOT_FOUND, "no race with that code")
        race_id = found.decode()
        where = await self._queue.claim(user.id, race_id, marker_ttl(self._s))
        if where is not None:
            raise AppError(ErrorCode.CONFLICT, "you are already queued or in another race")
        try:
            await self._apply(session, race_id, Join(user.id, user.name, user.guest), reply)
        except AppError:
            await self._queue.release(user.id, race_id)
            raise

    async def _tournament(self, tid: str) -> tournament.TournamentState:
        state = await self._tournaments.load(tid)
        if state is None:
            raise AppError(ErrorCode.NOT_FOUND, f"no tournament {tid}")
        now = int(self._clock() * 1000)
        return tournament.handle(state, tournament.Tick(), now)[0]

    async def _check_tournament(self, session: Session, tid: str) -> None:
        state = await self._tournament(tid)
        if state.phase is not tournament.Phase.RUNNING:
            raise AppError(ErrorCode.CONFLICT, f"the tournament is {state.phase}")
        if session.user.id not in state.participants:
            raise AppError(ErrorCode.FORBIDDEN, "join the tournament first")

    async def _watch_tournament(self, session: Session, tid: str, reply: Respond) -> None:
        state = await self._tournament(tid)
        await self.watchers.add(keys.channel_tournament(tid), session)
        reply("tournament.state", tournament.snapshot(state))
        top = tournament.rankings(state)
        reply("tournament.rankings", {"tournament": tid, "top": top})

    # -- callbacks from the engine ---------------------------------------------------------

    async def race_finished(self, state: RaceState) -> None:
        for user_id in state.racers:
            await self._queue.release(user_id, state.race_id)
        if state.code:
            await self._cache.delete(keys.race_code(state.code))

    async def player_matched(self, message: Matched) -> None:
        user_id, race_id = message.user, message.race
        payload = message.payload.encode()
        sessions = [s for s in self._sessions.of_user(user_id) if not s.ended]
        if not sessions:  # the player moved on: try wherever they are now (once)
            if not message.again:
                await self._pubsub.publish(keys.channel_user(user_id), payload)
            return
        push = parse_push(payload)
        channel = keys.channel_race(race_id)
        for session in sessions:
            if self.watchers.watching(channel, session):
                continue  # sent again (``Matchmaker.redeliver``): delivered once is enough
            await self.watchers.add(channel, session)
            session.deliver(push)
        # The seat was awaited (``rooms.race`` rule 5a): the player has it now. Sent
        # without waiting; lost, the player shows up by typing.
        with contextlib.suppress(AppError):
            await self.engine.apply(race_id, Reconnect(user_id), _ignore)

    # -- housekeeping ---------------------------------------------------------------------

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(HOUSEKEEPING_S)
            try:
                await self._drop_finished()
                await self._connections()
                await self.matcher.prune()
                await self.matcher.redeliver()
            except Exception:
                log.exception("race housekeeping failed")

    async def _drop_finished(self) -> None:
        """Finished races' channels go (``Watchers.drop_finished``), with their dropped racers."""
        prefix = keys.channel_race("")
        finished = {c[len(prefix) :] for c in await self.watchers.drop_finished()}
        if finished:
            self._dropped = {(r, s) for r, s in self._dropped if r not in finished}

    async def _connections(self) -> None:
        prefix = keys.channel_race("")
        for channel, session in self.watchers.sessions():
            if not channel.startswith(prefix):
                continue
            race_id, user_id = channel[len(prefix) :], session.user.id
            command: RaceCommand | None = None
            if session.ended:
                command = Leave(user_id)
                await self.watchers.remove(channel, session)
                self._dropped.discard((race_id, session))
            elif session.link is None and (race_id, session) not in self._dropped:
                command = Disconnect(user_id)
                self._dropped.add((race_id, session))
            elif session.link is not None and (race_id, session) in self._dropped:
                command = Reconnect(user_id)
                self._dropped.discard((race_id, session))
            if command is not None:
                with contextlib.suppress(AppError):  # no waiting on the owner: a refusal is moot
                    await self.engine.apply(race_id, command, _ignore)


def _refused(reply: Respond) -> Callable[[AppError], None]:
    """What a quiet progress report forwarded to another node does when refused there."""

    def refused(exc: AppError) -> None:
        reply("error", {"code": exc.code.value, "message": exc.message})

    return refused
