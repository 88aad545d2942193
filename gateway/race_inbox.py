"""A node's race inbox: commands forwarded between nodes, their answers, match notices.

Every node subscribes to its own inbox channel (``keys.channel_race_node(node)``).
Three kinds of small JSON messages arrive there:

* ``apply`` -- another node got a command for a race this node owns. The
  inbox hands it to ``serve`` (the engine applies it locally) and answers on
  the asker's inbox with the replies, the error, or ``moved`` when the race
  is not (or no longer) owned here. A ``quiet`` command (``race.progress``:
  fire-and-forget, the next ``race.state`` is its acknowledgement) is
  answered only when it failed or moved; the asker does not wait for it
  (``send_quiet``) and keeps a bounded table of ``on_answer`` callbacks.
* ``answer`` -- the answer to a command this node forwarded; it resolves the
  waiting ``forward`` call, matched by request id.
* ``matched`` -- a matchmaker on some node started a race for a player
  queued here; ``on_matched`` delivers ``match.found`` to the player.

``apply`` and ``matched`` wait in a bounded queue (``INBOX_SIZE``) served by
one task, so they are handled in arrival order; answers are resolved at once
from the pub/sub callback. A full queue drops the message (the asker times
out with ``unavailable`` and retries).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

import orjson

from typogram import keys
from typogram.codes import ErrorCode
from typogram.errors import AppError
from typogram.ports import PubSub

log = logging.getLogger(__name__)

INBOX_SIZE: Final = 4096
QUIET_PENDING: Final = 4096  # quiet commands whose failure we could still report
Command = Mapping[str, Any]
Replies = list[tuple[str, Mapping[str, Any]]]
Serve = Callable[[str, Command], Awaitable[Replies | None]]  # None: not owned here
OnMatched = Callable[[Mapping[str, Any]], Awaitable[Any]]
OnAnswer = Callable[[Mapping[str, Any]], None]  # a quiet command's error or ``moved``


class RaceInbox:
    def __init__(
        self,
        pubsub: PubSub,
        *,
        node_id: str,
        timeout_s: float,
        serve: Serve,
        on_matched: OnMatched | None = None,
    ) -> None:
        self._pubsub = pubsub
        self._node = node_id
        self._timeout = timeout_s
        self._serve = serve
        self.on_matched = on_matched
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._quiet: OrderedDict[str, tuple[float, OnAnswer]] = OrderedDict()
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(INBOX_SIZE)
        self._subscribed = False

    def __len__(self) -> int:
        """Forwarded commands still waiting for their answer."""
        return len(self._pending)

    async def open(self) -> None:
        await self._pubsub.subscribe(keys.channel_race_node(self._node), self._on_message)
        self._subscribed = True

    async def close(self) -> None:
        if self._subscribed:
            self._subscribed = False
            await self._pubsub.unsubscribe(keys.channel_race_node(self._node), self._on_message)

    async def forward(self, owner: str, race_id: str, command: Command) -> dict[str, Any]:
        """Send ``command`` to the owner's inbox; its answer, or ``unavailable`` on timeout."""
        request = uuid.uuid4().hex
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request] = future
        message = {"t": "apply", "req": request, "from": self._node, "race": race_id}
        try:
            await self._pubsub.publish(
                keys.channel_race_node(owner), orjson.dumps({**message, "cmd": command})
            )
            async with asyncio.timeout(self._timeout):
                answer: dict[str, Any] = await future
                return answer
        except TimeoutError:
            raise AppError(ErrorCode.UNAVAILABLE, "the race's node did not answer; retry") from None
        finally:
            self._pending.pop(request, None)

    async def send_quiet(
        self, owner: str, race_id: str, command: Command, on_answer: OnAnswer
    ) -> None:
        """Send ``command`` without waiting; ``on_answer`` runs only if it fails or moved."""
        request = uuid.uuid4().hex
        now = time.monotonic()
        while self._quiet:  # forget the oldest: expired, or over the bound
            _, (deadline, _) = next(iter(self._quiet.items()))
            if deadline > now and len(self._quiet) < QUIET_PENDING:
                break
            self._quiet.popitem(last=False)
        self._quiet[request] = (now + self._timeout, on_answer)
        message = {"t": "apply", "req": request, "from": self._node, "race": race_id}
        await self._pubsub.publish(
            keys.channel_race_node(owner), orjson.dumps({**message, "quiet": 1, "cmd": command})
        )

    async def send_to_node(self, node: str, message: Mapping[str, Any]) -> None:
        await self._pubsub.publish(keys.channel_race_node(node), orjson.dumps(message))

    def _on_message(self, channel: str, payload: bytes) -> None:
        try:
            message = orjson.loads(payload)
            kind = message["t"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("dropping malformed race inbox message %r", payload[:200])
            return
        if kind == "answer":
            request = str(message.get("req"))
            future = self._pending.get(request)
            if future is not None and not future.done():
                future.set_result(message)
            quiet = self._quiet.pop(request, None)
            if quiet is not None:
                try:
                    quiet[1](message)
                except Exception:
                    log.exception("race inbox answer callback failed")
            return
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            log.warning("race inbox full; dropping a %s", kind)

    async def run(self) -> None:
        """Serve ``apply`` and ``matched`` messages in arrival order until cancelled."""
        while True:
            message = await self._queue.get()
            try:
                if message["t"] == "apply":
                    await self._answer(message)
                elif message["t"] == "matched" and self.on_matched is not None:
                    await self.on_matched(message)
            except Exception:
                log.exception("race inbox message failed")

    async def _answer(self, message: Mapping[str, Any]) -> None:
        answer: dict[str, Any] = {"t": "answer", "req": message["req"]}
        try:
            replies = await self._serve(str(message["race"]), message["cmd"])
        except AppError as exc:
            answer["error"] = [exc.code.value, exc.message]
        else:
            if replies is None:
                answer["moved"] = True
            elif message.get("quiet"):
                return  # success needs no answer: the next race.state shows it
            else:
                answer["replies"] = replies
        await self.send_to_node(str(message["from"]), answer)
