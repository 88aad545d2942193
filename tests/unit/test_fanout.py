"""``gateway.chat.fanout`` and ``gateway.chat.control``: what reaches a node's sessions
through room and user channels, with the pub/sub port in memory and fakes for the
rest of the node (handovers, moderation, latency, the sockets)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.chat.control import Revoke, Takeover, TakeoverRequest, decode_control, takeover
from gateway.chat.fanout import Fanout
from gateway.sessions.session import Session, SessionRegistry, Watermark
from typogram import keys
from typogram.adapters.memory_pubsub import MemoryPubSub
from typogram.codes import CloseCode
from typogram.protocol import numbered_payload, push_payload
from typogram.revocation import RevokeNotice, encode_notice
from typogram.tokens import Claims, TokenType


@dataclass
class Link:
    """A session's socket: records what it is sent and how it is closed."""

    sent: list[bytes] = field(default_factory=list)
    closed: list[tuple[int, str]] = field(default_factory=list)

    def send(self, frame: bytes, kind: str) -> None:
        self.sent.append(frame)

    def terminate(self, code: int, reason: str, *, flush: bool = False) -> None:
        self.closed.append((code, reason))


@dataclass
class Node:
    """The rest of the node as the fan-out sees it."""

    handed_over: list[str] = field(default_factory=list)
    moderation: list[tuple[str, Mapping[str, Any]]] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)

    def requested(self, session_id: str) -> None:
        self.handed_over.append(session_id)

    def moderated(self, room: str, data: Mapping[str, Any]) -> None:
        self.moderation.append((room, data))

    def observe(self, amount: float) -> None:
        self.latencies.append(amount)


@dataclass
class World:
    pubsub: MemoryPubSub
    sessions: SessionRegistry
    fanout: Fanout
    node: Node

    def session(self, user: str, *, version: int = 1, sid: str = "") -> tuple[Session, Link]:
        claims = Claims(user, TokenType.ACCESS, version, user, "user", "jti", 2_000_000_000, sid)
        session = self.sessions.create(claims)
        link = Link()
        session.link = link
        return session, link


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with MemoryPubSub() as pubsub:
        sessions = SessionRegistry(
            window_s=30, max_detached=10, replay_frames=100, replay_bytes=1 << 20
        )
        node = Node()
        fanout = Fanout(pubsub, sessions, handovers=node, latency=node, moderation=node)
        yield World(pubsub, sessions, fanout, node)


async def test_a_user_push_reaches_every_local_session_of_that_user_only(world: World) -> None:
    ada, ada_link = world.session("ada")
    ada2, ada2_link = world.session("ada")
    _, bob_link = world.session("bob")
    for session in (ada, ada2):
        await world.fanout.watch_user(session.user.id)
    await world.pubsub.publish(
        keys.channel_user("ada"), push_payload("match.found", {"race": "r1"})
    )
    expected = [b'{"t":"match.found","d":{"race":"r1"},"s":1}']
    assert (ada_link.sent, ada2_link.sent, bob_link.sent) == (expected, expected, [])


async def test_a_takeover_hands_over_a_local_session_and_reaches_no_client(
    world: World,
) -> None:
    ada, link = world.session("ada")
    await world.fanout.watch_user("ada")
    await world.fanout.request_takeover("ada", ada.id)
    await world.fanout.request_takeover("ada", "not-here")  # held by no session here
    assert world.node.handed_over == [ada.id]
    assert link.sent == [] and link.closed == []


async def test_a_revoke_closes_the_sessions_it_covers_and_reaches_no_client(
    world: World,
) -> None:
    _, old_link = world.session("ada", version=1)
    _, new_link = world.session("ada", version=2)
    _, other_link = world.session("ada", version=2, sid="phone")
    await world.fanout.watch_user("ada")
    notice = encode_notice(RevokeNotice(version=2, reason="password changed"))
    await world.pubsub.publish(keys.channel_user("ada"), notice)
    await world.pubsub.publish(keys.channel_user("ada"), encode_notice(RevokeNotice(sid="phone")))
    assert old_link.closed == [(CloseCode.UNAUTHORIZED, "token revoked: password changed")]
    assert new_link.closed == []
    assert other_link.closed == [(CloseCode.UNAUTHORIZED, "token revoked")]
    assert old_link.sent == new_link.sent == other_link.sent == []


@pytest.mark.parametrize(
    "payload",
    [
        b'{"t":"takeover","d":{}}',
        b'{"t":"takeover","d":{"session":7}}',
        b'{"t":"revoke","d":{"version":"two"}}',
        b'{"t":"revoke","d":[]}',
        b'{"t":"takeover"}',
        b"not json",
        b'["t","takeover"]',
    ],
)
async def test_a_malformed_control_message_is_dropped(world: World, payload: bytes) -> None:
    ada, link = world.session("ada")
    await world.fanout.watch_user("ada")
    await world.pubsub.publish(keys.channel_user("ada"), payload)
    assert world.node.handed_over == [] and link.sent == [] and link.closed == []
    assert not ada.ended


async def test_room_pushes_reach_members_and_tell_moderation_and_latency(
    world: World,
) -> None:
    ada, ada_link = world.session("ada")
    _, bob_link = world.session("bob")
    ada.marks["lobby"] = Watermark(0)
    await world.fanout.join_room("lobby", ada)
    data = {"muted": ["bob"], "moderators": [], "owner": None, "slow_mode_s": 0}
    moderation = numbered_payload(1, push_payload("room.moderation", data), time.time())
    await world.pubsub.publish(keys.channel_room("lobby"), moderation)
    assert world.node.moderation == [("lobby", data)]
    assert len(world.node.latencies) == 1 and 0 <= world.node.latencies[0] < 60
    assert [orjson.loads(frame)["t"] for frame in ada_link.sent] == ["room.moderation"]
    assert bob_link.sent == []
    await world.fanout.leave_room("lobby", ada)
    await world.pubsub.publish(keys.channel_room("lobby"), moderation)
    assert len(ada_link.sent) == 1 and world.fanout.rooms == 0


@given(session=st.text(max_size=40))
def test_takeover_round_trips_and_keeps_its_wire_format(session: str) -> None:
    payload = takeover(session)
    assert orjson.loads(payload) == {"t": "takeover", "d": {"session": session}}
    assert decode_control(payload) == Takeover(TakeoverRequest(session))


@given(
    version=st.none() | st.integers(0, 2**31),
    sid=st.none() | st.text(max_size=20),
    reason=st.text(max_size=30),
)
def test_a_revoke_notice_decodes_as_the_kernel_wrote_it(
    version: int | None, sid: str | None, reason: str
) -> None:
    notice = RevokeNotice(version=version, sid=sid, reason=reason)
    assert decode_control(encode_notice(notice)) == Revoke(notice)
