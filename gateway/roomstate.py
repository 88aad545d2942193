"""A chat room's state shared by every node, in the cache.

* Members: each node writes its own members of the room (user → connection
  count) under ``keys.room_node_members(room, node)`` and lists itself in
  the sorted set ``keys.room_members(room)`` scored by when that entry
  expires. Entries live ``ttl`` (three heartbeats) and the gateway rewrites
  them every heartbeat, so a crashed node's members disappear on their own.
* Moderation: ``keys.room_moderation(room)`` holds moderators, mutes and the
  slow-mode interval, with the same TTL, refreshed by the same heartbeat.

Nodes apply each other's mutes and slow mode from the ``room.moderation``
push every member receives; the shared copy is read when a node starts
holding a room and before every moderation event, so it is never stale
where it decides anything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import msgspec

from rooms import chat
from typogram import keys
from typogram.ports import Cache


class Moderation(msgspec.Struct):
    moderators: list[str] = msgspec.field(default_factory=list)
    muted: list[str] = msgspec.field(default_factory=list)
    slow_mode_s: float | None = None


_encode = msgspec.json.Encoder().encode
_moderation = msgspec.json.Decoder(Moderation).decode
_members = msgspec.json.Decoder(dict[str, tuple[str, bool, int]]).decode


@dataclass
class SharedRooms:
    cache: Cache
    node: str
    ttl: float
    clock: Callable[[], float]

    async def members(self, room: str, local: chat.ChatRoomState | None) -> list[dict[str, Any]]:
        """Members on every live node; this node's from ``local`` (it may not be written yet)."""
        merged: dict[str, dict[str, Any]] = {}
        if local is not None:
            merged.update((uid, m.user.wire()) for uid, m in local.members.items())
        now, stale = self.clock(), []
        for node, expires in await self.cache.zrevrange(keys.room_members(room), 0, -1):
            if node == self.node:
                continue
            if expires < now:
                stale.append(node)
                continue
            raw = await self.cache.get(keys.room_node_members(room, node))
            if raw is None:
                continue
            for uid, (name, guest, _) in _members(raw).items():
                merged.setdefault(uid, {"id": uid, "name": name, "guest": guest})
        if stale:
            await self.cache.zrem(keys.room_members(room), *stale)
        return list(merged.values())

    async def is_empty(self, room: str) -> bool:
        return not await self.members(room, None)

    async def write_members(self, state: chat.ChatRoomState) -> None:
        room = state.room
        if state.is_empty:
            await self.cache.delete(keys.room_node_members(room, self.node))
            await self.cache.zrem(keys.room_members(room), self.node)
            return
        await self.refresh([state])

    async def refresh(self, states: Iterable[chat.ChatRoomState]) -> None:
        """Rewrite this node's entries (members and moderation) for ``states``: heartbeat."""
        values: dict[str, bytes] = {}
        rooms = []
        for state in states:
            members = {
                u: (m.user.name, m.user.guest, m.connections) for u, m in state.members.items()
            }
            values[keys.room_node_members(state.room, self.node)] = _encode(members)
            rooms.append(state.room)
        if not values:
            return
        await self.cache.write_batch({}, values, self.ttl)
        expires = self.clock() + self.ttl
        for room in rooms:
            await self.cache.zadd(keys.room_members(room), {self.node: expires})
            await self.cache.expire(keys.room_members(room), self.ttl)
            await self.cache.expire(keys.room_moderation(room), self.ttl)

    async def moderation(self, room: str) -> Moderation | None:
        raw = await self.cache.get(keys.room_moderation(room))
        if raw is None:
            return None
        try:
            return _moderation(raw)
        except msgspec.DecodeError:
            return None

    async def write_moderation(self, state: chat.ChatRoomState) -> None:
        await self.cache.set(keys.room_moderation(state.room), _encode(_of(state)), ttl=self.ttl)


def _of(state: chat.ChatRoomState) -> Moderation:
    return Moderation(sorted(state.moderators), sorted(state.muted), state.slow_mode_s)
