"""Everything a connection needs, assembled once by the ``Gateway``.

Also owns the end of a session's life (leave rooms, stop watching the user,
clear presence), which both the connection and the sweeper use.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final, Protocol

from gateway.chat.fanout import Fanout
from gateway.chat.presence import Presence
from gateway.chat.rooms import ChatRooms
from gateway.connection.admission import Admission
from gateway.metrics import GatewayMetrics
from gateway.races.service import Races
from gateway.sessions.session import Session, SessionRegistry
from gateway.sessions.store import SessionStore
from typogram.codes import CloseCode, ErrorCode
from typogram.errors import AppError
from typogram.revocation import TokenCheck
from typogram.settings import Settings
from typogram.tasks import Supervisor
from typogram.tokens import Claims, TokenService

log = logging.getLogger(__name__)


class Socket(Protocol):
    """An open connection as the node sees it (``gateway.connection.connection.Connection``)."""

    @property
    def queued(self) -> int: ...

    async def keepalive(self, now: float, pong_within: float) -> None: ...

    async def shutdown(self, code: int, reason: str) -> None: ...


# Rewrites a user's "appears offline" mark from the stored profile setting.
SyncAppearOffline = Callable[[str], Awaitable[object]]
MAX_PENDING_HANDOVERS: Final = 1024
HEARTBEAT_BATCH: Final = 500  # presence refreshes in flight at once
PINGS_PER_TURN: Final = 200  # pings sent before the heartbeat lets the loop run other work


class Handovers:
    """Sessions another node resumes, waiting to be handed over (``Hub.handovers``)."""

    def __init__(self, size: int = MAX_PENDING_HANDOVERS) -> None:
        self._queue: asyncio.Queue[str] = asyncio.Queue(size)

    def requested(self, session_id: str) -> None:
        try:
            self._queue.put_nowait(session_id)
        except asyncio.QueueFull:
            log.warning("too many handovers pending; %s is not handed over", session_id)

    async def next(self) -> str:
        return await self._queue.get()


@dataclass(eq=False)
class Hub:
    settings: Settings
    tokens: TokenService
    revocation: TokenCheck | None  # ``None``: tokens are only checked for expiry
    sessions: SessionRegistry
    fanout: Fanout
    chat: ChatRooms
    presence: Presence
    metrics: GatewayMetrics
    store: SessionStore
    clock: Callable[[], float]
    admission: Admission
    handovers_requested: Handovers  # the queue the fan-out fills
    races: Races | None  # races, matchmaking, tournament watching (``gateway.races``)
    # Background tasks (``typogram.tasks``); told of a connection writer that failed.
    tasks: Supervisor = field(default_factory=Supervisor)
    connections: set[Socket] = field(default_factory=set)
    sync_appear_offline: SyncAppearOffline | None = None
    draining: bool = False
    lane_frames: int = 0  # frames handled on the connections' lane (``GatewayConnection``)

    async def check_token(self, claims: Claims) -> None:
        """Refuse (``AppError`` unauthorized) an expired or revoked token, asking the
        shared state rather than this process's copy of it."""
        if claims.expires_at <= self.clock():
            raise AppError(ErrorCode.UNAUTHORIZED, "token expired")
        if self.revocation is not None:
            await self.revocation.check(claims, fresh=True)

    async def recheck_tokens(self) -> int:
        """Close (4001) attached sessions whose token expired, at once, or was revoked,
        asked every ``ws_token_check_s`` per session; returns how many closed.

        The ``revoke`` notices close revoked sockets within moments; this catches
        what a notice cannot: expiry, and a notice lost to a pub/sub outage."""
        now, every = self.clock(), self.settings.ws_token_check_s
        due: list[tuple[Session, Claims]] = []
        closed = 0
        for session in self.sessions:
            if session.link is None or session.ended:
                continue
            if session.claims.expires_at <= now:
                session.revoke(CloseCode.UNAUTHORIZED, "token expired")
                closed += 1
            elif now - session.checked_at >= every:
                due.append((session, session.claims))
        for start in range(0, len(due), HEARTBEAT_BATCH):
            batch = due[start : start + HEARTBEAT_BATCH]
            results = await asyncio.gather(
                *(self.check_token(claims) for _, claims in batch), return_exceptions=True
            )
            for (session, claims), result in zip(batch, results, strict=True):
                if session.claims is not claims:
                    continue  # renewed (``auth``) while it was checked: the new one counts
                if isinstance(result, AppError):
                    session.revoke(CloseCode.UNAUTHORIZED, result.message)
                    closed += 1
                elif isinstance(result, BaseException):
                    log.warning("token check failed for session %s: %r", session.id, result)
                else:
                    session.checked_at = now
        return closed

    def queued(self) -> int:
        return sum(conn.queued for conn in self.connections)

    async def start_session(self, session: Session) -> None:
        if self.sync_appear_offline is not None and not session.user.guest:
            try:  # heals a lost cache; the setting itself is honoured at query time
                await self.sync_appear_offline(session.user.id)
            except Exception:
                log.warning("reading %s's presence setting failed", session.user.id)
        await self.store.claim(session.id)
        self.store.touch(session)
        await self.store.flush()  # resumable elsewhere from the start
        await self.fanout.watch_user(session.user.id)
        await self.presence.set(session.user.id, session.status)

    async def end_session(self, session: Session, *, keep: bool = False) -> None:
        """End a session here; safe to call twice. ``keep``: another node may resume it
        (its record was written as stopped), else its record is deleted too."""
        if session not in self.sessions:
            return
        self.sessions.remove(session)
        user_id = session.user.id
        try:
            if not keep and not self.draining:
                await self.store.forget(session)
            await self.chat.leave_all(session)
            await self.fanout.unwatch_user(user_id)
            if not self.sessions.of_user(user_id):
                await self.presence.clear(user_id)
        except Exception:  # a backend hiccup must not leak the rest of the cleanup
            log.exception("ending session %s failed", session.id)

    async def heartbeat(self) -> None:
        """Node-wide heartbeat: ping every connection (one timer for the node instead of
        a keepalive task per socket), keep attached sessions' records and presence alive."""
        now, timeout = self.clock(), self.settings.ws_ping_timeout_s
        for count, conn in enumerate(list(self.connections), 1):
            await conn.keepalive(now, timeout)
            if count % PINGS_PER_TURN == 0:
                await asyncio.sleep(0)  # 20,000 pings at once held every other frame back
        status: dict[str, str] = {}
        for session in self.sessions:
            if session.link is not None and not session.ended:
                self.store.touch(session)
                status[session.user.id] = session.status
        users = list(status.items())
        for start in range(0, len(users), HEARTBEAT_BATCH):
            batch = users[start : start + HEARTBEAT_BATCH]
            done = await asyncio.gather(
                *(self.presence.set(user, s) for user, s in batch), return_exceptions=True
            )
            if any(isinstance(result, Exception) for result in done):
                log.warning("presence refresh failed for some of %d users", len(batch))

    async def sweep(self) -> int:
        """End sessions whose resume window passed; returns how many."""
        expired = self.sessions.expired(self.clock())
        for session in expired:
            await self.end_session(session)
        return len(expired)

    async def handovers(self) -> None:
        """Hand sessions over to the nodes that resume them, until cancelled."""
        while True:
            session = self.sessions.get(await self.handovers_requested.next())
            if session is None:
                continue
            try:
                session.ended = True  # numbering stops here; the new owner continues
                await self.store.stop([session])
                if session.link is not None:
                    session.link.terminate(CloseCode.REPLACED, "resumed on another node")
                await self.end_session(session, keep=True)
            except Exception:
                log.exception("handing over session %s failed", session.id)
