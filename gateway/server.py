"""The gateway node: a websockets server on ``/ws`` and the services behind it.

Use::

    async with gateway_of(platform) as gateway:   # or Gateway(settings, NodePorts(...))
        await gateway.serve(stop)   # returns after ``stop`` is set and the drain is done

``gateway_of`` is the one way a node is built from a ``Platform`` (the
process roles, tests on a platform); ``NodePorts`` is what a node is given,
which tests on loose adapters build themselves (``tests/gateway_ports.py``).

Entering binds ``settings.host:settings.ws_port`` (port 0 picks a free one,
see ``port``); ``serve`` runs the resume sweeper until ``stop`` is set, then
drains: stop accepting, flush every client and close it with 1012, wait up to
``gateway_drain_timeout_s``, then cut whatever is left. Leaving the context
drains too if ``serve`` never ran. The ports (cache, with the fenced writes and the
push log over it, pubsub, events, queues) must be open for the whole life of the
gateway; the caller owns them.

Admission: an address over a per-address cap (``gateway.connection.admission``) gets
HTTP 429 at the handshake; past ``ws_max_connections`` open sockets (or
while draining) a new socket is closed at once with 1013. With
``ws_allowed_origins`` set, a browser ``Origin`` outside the list gets HTTP
403; clients that send no Origin (non-browsers) are let in."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Self

from prometheus_client import CollectorRegistry
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from gateway.chat.fanout import Fanout
from gateway.chat.presence import Presence
from gateway.chat.rooms import ChatRooms, RoomStates
from gateway.chat.roomstate import SharedRooms
from gateway.connection.admission import Admission, Capacity
from gateway.connection.connection import Connection, GatewayConnection, peer_address
from gateway.connection.wsinternals import abort, forget_handshake
from gateway.hub import Handovers, Hub, SyncAppearOffline
from gateway.metrics import GatewayMetrics
from gateway.races.matcher import RatingSource
from gateway.races.service import Races, TournamentSource
from gateway.sessions.session import SessionRegistry
from gateway.sessions.store import SessionStore
from tournaments.store import TournamentStore
from typogram import proxies
from typogram.codes import CloseCode
from typogram.fencing import FencedWrites
from typogram.match_queues import MatchQueues
from typogram.ports import Cache, EventLog, PubSub
from typogram.proxies import Network
from typogram.push_log import PushLog
from typogram.revocation import TokenCheck
from typogram.settings import Settings
from typogram.tasks import Supervisor
from typogram.tokens import TokenService

if TYPE_CHECKING:
    from typogram.platform import Platform

log = logging.getLogger(__name__)

WS_PATH = "/ws"
RETRY_AFTER_S = 5  # what a 429 at the handshake suggests
PRESENCE_TTL_HEARTBEATS = 3


@dataclass(frozen=True, slots=True)
class NodePorts:
    """What a node is given: open ports (the caller owns them and keeps them open for
    the node's life) and what it reads from the rest of the platform. Without the
    optional ones (tests): every token passes the revocation check, every player
    queues at 1500, tournaments come from the cache alone and the node makes its own
    supervisor."""

    tokens: TokenService
    cache: Cache
    fences: FencedWrites  # over ``cache``
    pushes: PushLog  # over ``cache``
    pubsub: PubSub
    events: EventLog
    queues: MatchQueues
    revocation: TokenCheck | None = None
    ratings: RatingSource | None = None
    tournaments: TournamentSource | None = None
    sync_appear_offline: SyncAppearOffline | None = None
    # The process's supervisor (``Platform.tasks``): runs the node's background work and
    # is told of a failed connection writer.
    tasks: Supervisor | None = None


def gateway_of(
    platform: Platform,
    settings: Settings | None = None,
    *,
    registry: CollectorRegistry | None = None,
) -> Gateway:
    """The node on ``platform``'s ports, reading ratings and tournaments (through the
    tournament store) from it, its metrics in the platform's registry. ``settings``
    (default the platform's) and ``registry`` let a test pick a port or keep metrics
    apart."""
    ports = NodePorts(
        tokens=platform.tokens,
        cache=platform.cache,
        fences=platform.fences,
        pushes=platform.push_log,
        pubsub=platform.pubsub,
        events=platform.events,
        queues=platform.match_queues,
        revocation=platform.revocation,
        ratings=platform.ratings,
        tournaments=TournamentStore.of(platform),
        sync_appear_offline=platform.accounts.sync_appear_offline,
        tasks=platform.tasks,
    )
    return Gateway(
        settings if settings is not None else platform.settings,
        ports,
        registry=registry if registry is not None else platform.metrics.registry,
    )


class Gateway:
    def __init__(
        self,
        settings: Settings,
        ports: NodePorts,
        *,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        cache, fences, pubsub, events = ports.cache, ports.fences, ports.pubsub, ports.events
        self.settings = settings
        tasks = ports.tasks if ports.tasks is not None else Supervisor()
        self.metrics = GatewayMetrics(registry if registry is not None else CollectorRegistry())
        self.node_id = uuid.uuid4().hex[:16]
        # How much work this node takes on, from its loop lag (sampled while ``serve`` runs).
        self.capacity = Capacity(
            max_lag_s=settings.gateway_max_loop_lag_ms / 1000,
            max_inflight=settings.gateway_chat_max_inflight,
        )
        # Records outlive a detach by the resume window, plus heartbeats of slack.
        record_ttl = settings.ws_resume_window_s + settings.ws_heartbeat_s * 3
        presence_ttl = settings.ws_heartbeat_s * PRESENCE_TTL_HEARTBEATS
        handovers = Handovers()
        # A session whose record another node took (it thought this one dead) is handed
        # over as if asked: this node stops writing and numbering for it.
        store = SessionStore(
            cache, fences, self.node_id, record_ttl, clock, fenced=handovers.requested
        )
        sessions = SessionRegistry(
            window_s=settings.ws_resume_window_s,
            max_detached=settings.ws_max_connections,
            replay_frames=settings.ws_replay_frames,
            replay_bytes=settings.ws_replay_bytes,
            # Every numbered frame marks the session's record: a crash loses at most what
            # the last ``FLUSH_TICK_S`` delivered, so a resume elsewhere is mostly resumed.
            numbered=store.mark,
        )
        room_states = RoomStates()  # told of moderation by the fan-out, run by the chat rooms
        fanout = Fanout(
            pubsub,
            sessions,
            handovers=handovers,
            latency=self.metrics.fanout_latency,
            moderation=room_states,
        )
        self.races = Races(
            settings,
            node_id=self.node_id,
            cache=cache,
            fences=fences,
            pubsub=pubsub,
            events=events,
            sessions=sessions,
            clock=clock,
            queues=ports.queues,
            ratings=ports.ratings,
            tournaments=ports.tournaments,
            tasks=tasks,
        )
        self._hub = Hub(
            settings=settings,
            tokens=ports.tokens,
            revocation=ports.revocation,
            sessions=sessions,
            fanout=fanout,
            chat=ChatRooms(
                cache=cache,
                pushes=ports.pushes,
                pubsub=pubsub,
                events=events,
                fanout=fanout,
                clock=clock,
                history=settings.gateway_chat_history,
                max_text=settings.gateway_chat_max_text,
                slow_mode_s=settings.gateway_chat_slow_mode_s,
                max_rooms=settings.ws_max_rooms_per_session,
                push_log=settings.ws_replay_frames,
                push_ttl=record_ttl,
                shared=SharedRooms(
                    cache,
                    self.node_id,
                    presence_ttl,
                    clock,
                    moderation_ttl=settings.gateway_chat_room_ttl_s,
                ),
                states=room_states,
                capacity=self.capacity,
                guests_read_only=settings.gateway_chat_guests_read_only,
            ),
            presence=Presence(cache, presence_ttl),
            metrics=self.metrics,
            store=store,
            clock=clock,
            sync_appear_offline=ports.sync_appear_offline,
            admission=Admission(
                per_ip_before_hello=settings.ws_max_connections_per_ip_before_hello,
                per_ip=settings.ws_max_connections_per_ip,
                per_user=settings.ws_max_connections_per_user,
                refused=self.metrics.refused,
            ),
            handovers_requested=handovers,
            races=self.races,
            tasks=tasks,
        )
        self.metrics.loop_lag.set_function(lambda: self.capacity.lag_s)
        self.metrics.bind(
            connections=lambda: len(self._hub.connections),
            queued=self._hub.queued,
            detached=lambda: self._hub.sessions.detached,
            users=lambda: self._hub.sessions.users,
            rooms=self._hub.chat.online,
        )
        caps = self._hub.admission
        self._trusted_proxies = proxies.trusted_networks(settings.trusted_proxies)

        class Admitted(GatewayConnection):
            """This gateway's sockets: counted in its connection caps."""

            admission = caps
            send_buffer = settings.ws_send_buffer_bytes

        self._connection_class: type[GatewayConnection] = Admitted
        self._server: Server | None = None
        self._clock = clock
        self._drained = False

    # -- lifecycle -------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._server is not None or self._drained:
            raise RuntimeError("a Gateway is entered once")
        s = self.settings
        origins: Any = [*s.ws_allowed_origins, None] if s.ws_allowed_origins else None
        await self.races.open()
        self._server = await serve(
            self._handle,
            s.host,
            s.ws_port,
            process_request=self._admit,
            create_connection=self._connection_class,
            origins=origins,
            compression="deflate" if s.ws_compression else None,
            max_size=s.ws_max_frame_bytes,
            ping_interval=None,  # node-wide pings: ``Hub.heartbeat``, not a task per socket
            ping_timeout=None,
            close_timeout=s.ws_close_timeout_s,
            open_timeout=s.ws_hello_timeout_s,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.drain()

    @property
    def hub(self) -> Hub:
        """The services every connection of this node is given."""
        return self._hub

    @property
    def port(self) -> int:
        """The bound port (useful with ``ws_port=0``)."""
        if self._server is None:
            raise RuntimeError("the gateway is not running")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def serve(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, then drain. Wire SIGTERM to ``stop.set``."""
        if self._server is None:
            raise RuntimeError("enter the Gateway before serving")
        hub = self._hub
        interval = max(0.05, min(1.0, self.settings.ws_resume_window_s / 4))
        refreshed = 0.0
        async with asyncio.TaskGroup() as group:
            writer = group.create_task(hub.store.run(), name="session-store")
            handovers = group.create_task(hub.handovers(), name="handovers")
            races = group.create_task(self.races.run(), name="races")
            lag = group.create_task(self.capacity.sample(), name="loop-lag")
            while not stop.is_set():
                try:
                    await hub.store.renew_lease()
                    await hub.sweep()
                    await hub.recheck_tokens()
                    if self._clock() - refreshed >= self.settings.ws_heartbeat_s:
                        refreshed = self._clock()
                        await hub.heartbeat()
                        await hub.chat.refresh()
                except Exception:
                    log.exception("session sweep failed")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(interval):
                        await stop.wait()
            await self.drain()
            writer.cancel()
            handovers.cancel()
            races.cancel()
            lag.cancel()

    async def drain(self) -> None:
        """Stop accepting, flush and close every client with 1012, bounded in time."""
        if self._drained or self._server is None:
            self._drained = True
            return
        self._drained = True
        hub, server = self._hub, self._server
        hub.draining = True
        server.close(close_connections=False)  # stop accepting; wait for handlers below
        # Sessions stay resumable on other nodes: written as no longer collected here.
        hub.store.draining = True
        for session in hub.sessions:  # numbering stops: the records written now are exact
            session.ended = True
        with contextlib.suppress(Exception):
            await hub.store.stop(list(hub.sessions))
        async with asyncio.TaskGroup() as group:
            for conn in list(hub.connections):
                group.create_task(conn.shutdown(CloseCode.GOING_AWAY, "server going away"))
        try:
            async with asyncio.timeout(self.settings.gateway_drain_timeout_s):
                await server.wait_closed()
        except TimeoutError:
            log.warning("drain timed out with %d connections left", len(hub.connections))
            for ws in server.connections:
                abort(ws)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.ws_close_timeout_s):
                    await server.wait_closed()
        for session in list(hub.sessions):  # detached sessions have no socket to close
            await hub.end_session(session, keep=True)
        with contextlib.suppress(Exception):
            await hub.store.stop([])
            await hub.store.drop_lease()
        with contextlib.suppress(Exception):
            await self.races.close()  # hands its races' leases to another node

    def statistics(self) -> dict[str, float]:
        hub = self._hub
        return {
            "connections": len(hub.connections),
            "sessions": len(hub.sessions),
            "sessions_detached": hub.sessions.detached,
            "rooms": hub.fanout.rooms,
            "chat_rooms": len(hub.chat),
            "send_queue_depth": hub.queued(),
            "frames_on_lane": hub.lane_frames,
            "draining": float(hub.draining),
            **{f"admission_{k}": v for k, v in hub.admission.statistics().items()},
        }

    # -- per connection --------------------------------------------------------------

    def _admit(self, ws: ServerConnection, request: Request) -> Response | None:
        if request.path.split("?", 1)[0] != WS_PATH:
            return ws.respond(HTTPStatus.NOT_FOUND, "not found\n")
        admission = self._hub.admission
        address = client_address(ws, request, self._trusted_proxies)
        cap = admission.admit(ws, address)  # released when the TCP connection is gone
        if cap is not None:
            response = ws.respond(HTTPStatus.TOO_MANY_REQUESTS, admission.message(cap) + "\n")
            response.headers["Retry-After"] = str(RETRY_AFTER_S)
            return response
        return None

    def _handle(self, ws: ServerConnection) -> Awaitable[None]:
        """What ``websockets`` awaits for an opened socket: the connection's ``run`` itself
        (a plain method, so no coroutine of its own stays on the stack while it idles)."""
        hub = self._hub
        forget_handshake(ws)  # the address was taken at admission
        if hub.draining:
            return ws.close(CloseCode.GOING_AWAY, "server going away")
        if len(hub.connections) >= self.settings.ws_max_connections:
            hub.metrics.closes.labels(str(int(CloseCode.TRY_AGAIN_LATER))).inc()
            return ws.close(CloseCode.TRY_AGAIN_LATER, "node full, try another")
        return Connection(ws, hub).run()


def client_address(ws: ServerConnection, request: Request, networks: Sequence[Network]) -> str:
    """The client's address, decided once per socket at the handshake: what the
    connection caps count and a guest's mutes bind to. The peer's, or from
    ``X-Forwarded-For`` when the peer is one of ``trusted_proxies`` (the rules of
    ``typogram.proxies``, as on the REST side)."""
    return proxies.client_address(
        peer_address(ws), request.headers.get("X-Forwarded-For"), networks
    )
