"""Everything a connection needs, assembled once by the ``Gateway``.

Also owns the end of a session's life (leave rooms, stop watching the user,
clear presence), which both the connection and the sweeper use.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gateway.chatrooms import ChatRooms
from gateway.fanout import Fanout
from gateway.metrics import GatewayMetrics
from gateway.presence import Presence
from gateway.sessions import Session, SessionRegistry
from typogram.settings import Settings
from typogram.tokens import TokenService

if TYPE_CHECKING:
    from gateway.session import Connection

log = logging.getLogger(__name__)

TokenVersion = Callable[[str], Awaitable[int | None]]


@dataclass(eq=False)
class Hub:
    settings: Settings
    tokens: TokenService
    token_version: TokenVersion | None
    sessions: SessionRegistry
    fanout: Fanout
    chat: ChatRooms
    presence: Presence
    metrics: GatewayMetrics
    clock: Callable[[], float]
    connections: set[Connection] = field(default_factory=set)
    draining: bool = False

    def queued(self) -> int:
        return sum(conn.queued for conn in self.connections)

    async def start_session(self, session: Session) -> None:
        await self.fanout.watch_user(session.user.id)
        await self.presence.set(session.user.id, session.status)

    async def end_session(self, session: Session) -> None:
        """Forget a session for good; safe to call twice."""
        if session not in self.sessions:
            return
        self.sessions.remove(session)
        user_id = session.user.id
        try:
            await self.chat.leave_all(session)
            await self.fanout.unwatch_user(user_id)
            if not self.sessions.of_user(user_id):
                await self.presence.clear(user_id)
        except Exception:  # a backend hiccup must not leak the rest of the cleanup
            log.exception("ending session %s failed", session.id)

    async def sweep(self) -> int:
        """End sessions whose resume window passed; returns how many."""
        expired = self.sessions.expired(self.clock())
        for session in expired:
            await self.end_session(session)
        return len(expired)
