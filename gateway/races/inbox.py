"""A node's race inbox: commands forwarded between nodes, their answers, match notices.

Every node subscribes to its own inbox channel (``keys.channel_race_node(node)``).
Six kinds of small JSON messages arrive there, typed in ``gateway.races.messages``
(one tagged union, decoded once by its ``t``, the race commands they carry by
their ``k``; anything else is dropped whole, except that the commands of an
``apply`` or ``batch`` that do not decode are answered ``bad_request``):

* ``apply`` -- another node got a command for a race this node owns. The
  inbox hands it to ``serve`` (the engine applies it locally) and answers on
  the asker's inbox with the replies, the error, or ``moved`` when the race
  is not (or no longer) owned here.
* ``batch`` -- quiet commands (``race.progress`` and connection notices:
  fire-and-forget, the next ``race.state`` is the acknowledgement), served
  one by one like ``apply`` but answered only when one failed or moved. The
  asker does not wait (``send_quiet``): it collects quiet commands per owner
  node for ``BATCH_WINDOW_S`` and publishes each owner's as ONE message --
  one PUBLISH and one pub/sub delivery instead of one per report. It keeps a
  bounded table of ``on_answer`` callbacks; a command that waits with quiet
  ones for the same owner is sent after them (``forward`` flushes first), so
  a ``race.finish`` never overtakes the last ``race.progress``. Once the
  owner has served a batch it sends one ``settled`` message naming the
  batch's requests (after any failure answers, on the same connection):
  the asker forgets their callbacks at once instead of holding every one
  until it times out (which kept thousands of closures alive long enough to
  fill the garbage collector's young generation, and lengthened its pauses).
  From an owner that never settles (an older version) they time out as before.
* ``answer`` -- the answer to a command this node forwarded; it resolves the
  waiting ``forward`` call, matched by request id. ``settled`` -- the
  requests of a served ``batch``: their callbacks are dropped.
* ``matched`` -- a matchmaker on some node started a race for a player
  queued here; ``InboxHandler.matched`` delivers ``match.found`` to the player.
* ``pushes`` -- the ``race.state`` snapshots of one tick slice of an owner's
  races that this node watches, ``[race, type, push]`` each, in one message
  (``pushes_message``; see ``gateway.races.pushes``): handed to ``InboxHandler.pushes_received``
  at once, in order.

Before serving an ``apply`` or ``batch`` command, ``InboxHandler.forwarded(race,
sender)`` tells the owner which node sent it: that node watches the race
(``gateway.races.pushes`` sends a race's snapshots only to the nodes that watch it).

Every node also listens on the shared channel ``keys.channel_race_nodes()``
for ``owner`` notices: a node that adopts a race says so there
(``announce_owner``) and ``InboxHandler.owner_moved`` lets the others update the owner they
remember at once, so they can trust a known owner for long instead of asking
Redis for it again every second.

``apply``, ``batch`` and ``matched`` wait in a bounded queue (``INBOX_SIZE``)
served by one task, so they are handled in arrival order; answers are resolved
at once from the pub/sub callback. A full queue drops the message (the asker
times out with ``unavailable`` and retries). Quiet commands waiting to go out
are bounded too (``OUTBOX_SIZE``: beyond it a command fails at once with
``unavailable``).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol

import msgspec

from gateway.races import messages
from gateway.races.messages import (
    Answer,
    Apply,
    Batch,
    InboxMessage,
    Matched,
    Owner,
    Pushes,
    RaceCommand,
    Refused,
    Settled,
    failed,
)
from typogram import keys
from typogram.codes import ErrorCode
from typogram.errors import AppError
from typogram.ports import PubSub

log = logging.getLogger(__name__)

INBOX_SIZE: Final = 4096
QUIET_PENDING: Final = 4096  # quiet commands whose failure we could still report
OUTBOX_SIZE: Final = 4096  # quiet commands collected for the next batches, all owners
BATCH_WINDOW_S: Final = 0.005  # how long the first quiet command waits for others
Replies = list[tuple[str, Mapping[str, Any]]]
OnAnswer = Callable[[Answer], None]  # a quiet command's error or ``moved``


def pushes_message(entries: list[tuple[str, str, bytes]]) -> bytes:
    """One ``pushes`` message: ``(race, push type, push_payload bytes)`` each, in order."""
    batch = [(race_id, kind, msgspec.Raw(payload)) for race_id, kind, payload in entries]
    return messages.encode(Pushes(batch))


class InboxHandler(Protocol):
    """What a node does with its inbox's messages (``gateway.races.engine.RaceEngine``)."""

    async def serve_forwarded(self, race_id: str, command: RaceCommand) -> Replies | None:
        """Apply a command forwarded by another node; ``None``: not owned here."""

    async def matched(self, message: Matched) -> None:
        """A ``matched`` notice: deliver ``match.found`` to the player."""

    def owner_moved(self, race_id: str, node: str) -> None:
        """Another node now owns the race."""

    def forwarded(self, race_id: str, node: str) -> None:
        """A node forwarded a command for the race (it watches the race)."""

    def pushes_received(self, race_id: str, kind: str, push: bytes) -> None:
        """One push of a ``pushes`` message (a race owned elsewhere)."""


class RaceInbox:
    def __init__(
        self,
        pubsub: PubSub,
        *,
        node_id: str,
        timeout_s: float,
        handler: InboxHandler,
    ) -> None:
        self._pubsub = pubsub
        self._node = node_id
        self._timeout = timeout_s
        self._handler = handler
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._quiet: OrderedDict[str, tuple[float, OnAnswer]] = OrderedDict()
        self._queue: asyncio.Queue[Apply | Batch | Matched | Refused] = asyncio.Queue(INBOX_SIZE)
        self._subscribed = False
        self._outbox: dict[str, list[tuple[str, str, RaceCommand]]] = {}  # owner -> commands
        self._outbox_size = 0
        self._outbox_ready = asyncio.Event()
        self._ids = itertools.count()
        self.batches_sent = 0

    def __len__(self) -> int:
        """Forwarded commands still waiting for their answer."""
        return len(self._pending)

    @property
    def quiet_pending(self) -> int:
        """Quiet commands sent whose batch the owner has not settled yet."""
        return len(self._quiet)

    async def open(self) -> None:
        await self._pubsub.subscribe(keys.channel_race_node(self._node), self._on_message)
        await self._pubsub.subscribe(keys.channel_race_nodes(), self._on_message)
        self._subscribed = True

    async def close(self) -> None:
        if self._subscribed:
            self._subscribed = False
            await self._pubsub.unsubscribe(keys.channel_race_nodes(), self._on_message)
            await self._pubsub.unsubscribe(keys.channel_race_node(self._node), self._on_message)

    async def announce_owner(self, race_id: str) -> None:
        """Tell every node that this node owns ``race_id`` now (after adopting it)."""
        notice = Owner(race_id, self._node)
        await self._pubsub.publish(keys.channel_race_nodes(), messages.encode(notice))

    async def forward(self, owner: str, race_id: str, command: RaceCommand) -> Answer:
        """Send ``command`` to the owner's inbox; its answer, or ``unavailable`` on timeout."""
        request = uuid.uuid4().hex
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._pending[request] = future
        message = Apply(request, self._node, race_id, command)
        try:
            if owner in self._outbox:  # quiet commands for this owner go first
                await self._send_batch(owner, self._take(owner))
            await self._pubsub.publish(keys.channel_race_node(owner), messages.encode(message))
            async with asyncio.timeout(self._timeout):
                return await future
        except TimeoutError:
            raise AppError(ErrorCode.UNAVAILABLE, "the race's node did not answer; retry") from None
        finally:
            self._pending.pop(request, None)

    def send_quiet(
        self, owner: str, race_id: str, command: RaceCommand, on_answer: OnAnswer
    ) -> None:
        """Queue ``command`` for the owner's next batch; ``on_answer`` runs only if it fails
        or moved. Returns at once: the batch goes out within ``BATCH_WINDOW_S``."""
        request = f"q{next(self._ids)}"
        if self._outbox_size >= OUTBOX_SIZE:
            on_answer(failed(request, ErrorCode.UNAVAILABLE.value, "too many race commands queued"))
            return
        now = time.monotonic()
        while self._quiet:  # forget the oldest: expired, or over the bound
            _, (deadline, _) = next(iter(self._quiet.items()))
            if deadline > now and len(self._quiet) < QUIET_PENDING:
                break
            self._quiet.popitem(last=False)
        self._quiet[request] = (now + self._timeout, on_answer)
        self._outbox.setdefault(owner, []).append((request, race_id, command))
        self._outbox_size += 1
        self._outbox_ready.set()

    def _take(self, owner: str) -> list[tuple[str, str, RaceCommand]]:
        commands = self._outbox.pop(owner, [])
        self._outbox_size -= len(commands)
        return commands

    async def _send_batch(self, owner: str, commands: list[tuple[str, str, RaceCommand]]) -> None:
        """One message with all of ``commands``; if it cannot be sent, each one fails."""
        if not commands:
            return
        message = Batch(self._node, commands)
        try:
            await self._pubsub.publish(keys.channel_race_node(owner), messages.encode(message))
        except Exception as exc:
            log.warning("race batch to %s not sent: %r", owner, exc)
            for request, _, _ in commands:
                unreachable = "the race's node is unreachable"
                self._resolve(request, failed(request, ErrorCode.UNAVAILABLE.value, unreachable))
            return
        self.batches_sent += 1

    async def _flush_forever(self) -> None:
        """Send each owner's collected quiet commands, ``BATCH_WINDOW_S`` after the first."""
        while True:
            await self._outbox_ready.wait()
            await asyncio.sleep(BATCH_WINDOW_S)
            self._outbox_ready.clear()
            for owner in list(self._outbox):
                await self._send_batch(owner, self._take(owner))

    async def send_to_node(self, node: str, message: InboxMessage) -> None:
        await self._pubsub.publish(keys.channel_race_node(node), messages.encode(message))

    def _on_message(self, channel: str, payload: bytes) -> None:
        try:
            message = messages.decode(payload)  # validates every push as JSON, once
        except ValueError as exc:
            log.warning("dropping malformed race inbox message %r: %s", payload[:200], exc)
            return
        match message:
            case Pushes():
                self._deliver_pushes(message)
            case Answer():
                self._resolve(message.req, message)
            case Settled():
                self._settled(message.reqs)
            case Owner(race=race_id, node=node):
                if node != self._node:
                    self._handler.owner_moved(race_id, node)
            case Apply() | Batch() | Matched() | Refused():
                try:
                    self._queue.put_nowait(message)
                except asyncio.QueueFull:
                    log.warning("race inbox full; dropping a %s", type(message).__name__.lower())

    def _deliver_pushes(self, message: Pushes) -> None:
        on_pushes = self._handler.pushes_received
        for race_id, kind, raw in message.p:
            push = bytes(raw)
            if not (push.startswith(b"{") and push.endswith(b"}")):
                log.warning("dropping a push that is not an object on race %s", race_id)
                continue
            try:
                on_pushes(race_id, kind, push)
            except Exception:
                log.exception("race push delivery failed")

    def _settled(self, requests: list[str]) -> None:
        """The owner served these quiet requests: any failure was answered before."""
        quiet = self._quiet
        for request in requests:
            quiet.pop(request, None)

    def _resolve(self, request: str, answer: Answer) -> None:
        """An answer to one of ours: wake its ``forward`` or run its ``on_answer``."""
        future = self._pending.get(request)
        if future is not None and not future.done():
            future.set_result(answer)
        quiet = self._quiet.pop(request, None)
        if quiet is not None:
            try:
                quiet[1](answer)
            except Exception:
                log.exception("race inbox answer callback failed")

    async def run(self) -> None:
        """Serve the inbox in arrival order and send quiet batches until cancelled."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._flush_forever(), name="race-inbox-batches")
            group.create_task(self._serve_forever(), name="race-inbox-serve")

    async def _serve_forever(self) -> None:
        while True:
            message = await self._queue.get()
            try:
                match message:
                    case Batch():
                        await self._serve_batch(message)
                    case Apply(req=request, sender=sender, race=race_id, cmd=command, quiet=quiet):
                        await self._answer(sender, request, race_id, command, quiet)
                    case Matched():
                        await self._handler.matched(message)
                    case Refused(sender=sender, errors=errors, rest=rest):
                        log.warning("refusing %d bad race command(s) from %s", len(errors), sender)
                        for request, reason in errors:
                            bad = failed(request, ErrorCode.BAD_REQUEST.value, reason)
                            await self.send_to_node(sender, bad)
                        if rest is not None:
                            await self._serve_batch(rest)
            except Exception:
                log.exception("race inbox message failed")

    async def _serve_batch(self, batch: Batch) -> None:
        requests = []
        for request, race_id, command in batch.cmds:
            await self._answer(batch.sender, request, race_id, command, quiet=True)
            requests.append(request)
        await self.send_to_node(batch.sender, Settled(requests))

    async def _answer(
        self, sender: str, request: str, race_id: str, command: RaceCommand, quiet: bool
    ) -> None:
        self._handler.forwarded(race_id, sender)
        try:
            replies = await self._handler.serve_forwarded(race_id, command)
        except AppError as exc:
            answer = failed(request, exc.code.value, exc.message)
        else:
            if replies is None:
                answer = Answer(request, moved=True)
            elif quiet:
                return  # success needs no answer: the next race.state shows it
            else:
                answer = Answer(request, replies=[(kind, dict(data)) for kind, data in replies])
        await self.send_to_node(sender, answer)
