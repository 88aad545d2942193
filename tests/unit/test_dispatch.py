"""``gateway.dispatch``: where a decoded client frame goes, on a node built by the
composition root (``gateway.server.Gateway``) over the in-memory ports, with a fake
connection and a fake socket -- no network."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from gateway.dispatch import dispatch
from gateway.hub import Hub
from gateway.server import Gateway
from gateway.sessions.session import Respond, Session
from tests.conftest import make_settings
from tests.gateway_ports import memory_ports
from typogram.codes import ErrorCode
from typogram.errors import AppError
from typogram.protocol import (
    Auth,
    ChatSend,
    Hello,
    Inbound,
    Message,
    Ping,
    PresenceQuery,
    PresenceSet,
    RaceCreate,
    RoomJoin,
    RoomLeave,
)
from typogram.tokens import Claims, TokenType

NOW = 1_900_000_000.0


@dataclass
class Asker:
    """The connection a frame came in on: records replies and renewals."""

    replies: list[tuple[int | None, str, Mapping[str, Any]]] = field(default_factory=list)
    renewed: list[tuple[str, int | None]] = field(default_factory=list)

    def replier(self, re: int | None) -> Respond:
        def reply(kind: str, data: Mapping[str, Any]) -> None:
            self.replies.append((re, kind, data))

        return reply

    async def renew(self, token: str, re: int | None) -> None:
        self.renewed.append((token, re))

    def kinds(self) -> list[str]:
        return [kind for _, kind, _ in self.replies]


@dataclass
class Link:
    """A session's socket: the frames pushed to it."""

    frames: list[dict[str, Any]] = field(default_factory=list)

    def send(self, frame: bytes, kind: str) -> None:
        self.frames.append(orjson.loads(frame))

    def terminate(self, code: int, reason: str, *, flush: bool = False) -> None:
        raise AssertionError("not expected")


@dataclass
class Node:
    hub: Hub

    def session(self, user: str) -> tuple[Session, Link]:
        claims = Claims(user, TokenType.ACCESS, 1, user, "user", "jti", int(NOW) + 3600)
        session = self.hub.sessions.create(claims)
        session.link = link = Link()
        return session, link

    async def ask(self, session: Session, body: Message, id: int | None = 1) -> Asker:
        asker = Asker()
        await dispatch(self.hub, asker, session, Inbound(type(body).__name__, id, body))
        return asker


@pytest.fixture
async def node() -> AsyncIterator[Node]:
    settings = make_settings()
    async with contextlib.AsyncExitStack() as stack:
        gateway = Gateway(settings, await memory_ports(stack, settings), clock=lambda: NOW)
        yield Node(gateway.hub)


async def test_a_joined_member_hears_the_room_and_its_own_message(node: Node) -> None:
    ada, ada_link = node.session("ada")
    bob, bob_link = node.session("bob")
    joined = await node.ask(ada, RoomJoin("lobby"), id=7)
    assert joined.replies[0][:2] == (7, "room.joined")
    await node.ask(bob, RoomJoin("lobby"))
    sent = await node.ask(bob, ChatSend("lobby", "hello"), id=9)
    assert [(re, kind) for re, kind, _ in sent.replies] == [(9, "chat.sent")]
    heard = [f for f in ada_link.frames if f["t"] == "chat.message"]
    assert [f["d"]["text"] for f in heard] == ["hello"]
    assert [f["t"] for f in bob_link.frames if f["t"] == "chat.message"] == ["chat.message"]
    assert node.hub.fanout.members("lobby") == 2 and "lobby" in ada.rooms


async def test_a_message_without_an_id_is_not_acknowledged(node: Node) -> None:
    ada, _ = node.session("ada")
    await node.ask(ada, RoomJoin("lobby"))
    assert (await node.ask(ada, ChatSend("lobby", "hi"), id=None)).replies == []
    assert (await node.ask(ada, PresenceSet("away"), id=None)).replies == []
    assert ada.status == "away"


async def test_leaving_a_room_stops_its_pushes(node: Node) -> None:
    ada, ada_link = node.session("ada")
    bob, _ = node.session("bob")
    for session in (ada, bob):
        await node.ask(session, RoomJoin("lobby"))
    left = await node.ask(ada, RoomLeave("lobby"))
    assert left.kinds() == ["room.left"]
    before = len(ada_link.frames)
    await node.ask(bob, ChatSend("lobby", "anyone?"))
    assert len(ada_link.frames) == before and "lobby" not in ada.rooms


async def test_presence_is_set_and_shown_to_roommates(node: Node) -> None:
    ada, _ = node.session("ada")
    bob, _ = node.session("bob")
    for session in (ada, bob):
        await node.ask(session, RoomJoin("lobby"))
    assert (await node.ask(ada, PresenceSet("busy"))).kinds() == ["presence.updated"]
    query = await node.ask(bob, PresenceQuery(["ada", "nobody"]))
    (_, kind, data), *_ = query.replies
    assert kind == "presence.state" and data["users"]["ada"] == "busy"
    assert data["users"]["nobody"] == "offline"


async def test_ping_answers_with_the_node_clock_and_auth_renews_on_the_connection(
    node: Node,
) -> None:
    ada, _ = node.session("ada")
    assert (await node.ask(ada, Ping(), id=3)).replies == [(3, "pong", {"ts": int(NOW * 1000)})]
    asker = await node.ask(ada, Auth("a.fresh.token"), id=4)
    assert asker.renewed == [("a.fresh.token", 4)] and asker.replies == []


async def test_a_second_hello_is_a_conflict(node: Node) -> None:
    ada, _ = node.session("ada")
    with pytest.raises(AppError) as caught:
        await node.ask(ada, Hello(token="t"))
    assert caught.value.code is ErrorCode.CONFLICT


async def test_race_messages_on_a_node_without_races_are_unavailable(node: Node) -> None:
    ada, _ = node.session("ada")
    bare = Node(dataclasses.replace(node.hub, races=None))
    with pytest.raises(AppError) as caught:
        await bare.ask(ada, RaceCreate())
    assert caught.value.code is ErrorCode.UNAVAILABLE
