"""A chat room's state shared by every node, in the cache.

* Members: each node writes its own members of the room (user → connection
  count) under ``keys.room_node_members(room, node)`` and lists itself in
  the sorted set ``keys.room_members(room)`` scored by when that entry
  expires. Entries live ``ttl`` (three heartbeats) and the gateway rewrites
  them every heartbeat, so a crashed node's members disappear on their own.
* Moderation: ``keys.room_moderation(room)`` holds the owner, the appointed
  moderators, mutes (with the address of each muted guest) and the slow-mode
  interval. It lives ``moderation_ttl`` (``gateway_chat_room_ttl_s``) from the
  last change or heartbeat, so an owner keeps a room, and a mute holds,
  while the room is empty for a while.
* A guest's member entry also carries its address (``source``), so a node
  can mute a guest that another node holds.

* Slow mode: ``keys.room_sent(room, sender)`` holds when a sender (a user,
  or a guest's address) last sent under slow mode, for one interval, so a
  sender changing node (or guest token) still waits it out.

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
    owner: str | None = None
    appointed: list[str] = msgspec.field(default_factory=list)
    muted: list[str] = msgspec.field(default_factory=list)
    muted_sources: dict[str, str] = msgspec.field(default_factory=dict)
    slow_mode_s: float | None = None


_encode = msgspec.json.Encoder().encode
_moderation = msgspec.json.Decoder(Moderation).decode
# user -> [name, guest, connections, source?]: entries written without a source still read.
_members = msgspec.json.Decoder(dict[str, list[str | bool | int]]).decode


@dataclass
class SharedRooms:
    cache: Cache
    node: str
    ttl: float
    clock: Callable[[], float]
    moderation_ttl: float = 7 * 24 * 3600.0

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
            for uid, entry in (await self._node_members(room, node)).items():
                merged.setdefault(uid, {"id": uid, "name": entry[0], "guest": entry[1]})
        if stale:
            await self.cache.zrem(keys.room_members(room), *stale)
        return list(merged.values())

    async def source_of(self, room: str, user_id: str) -> str:
        """The address of a guest in the room on any live node ("" if none is known)."""
        now = self.clock()
        for node, expires in await self.cache.zrevrange(keys.room_members(room), 0, -1):
            if expires < now:
                continue
            entry = (await self._node_members(room, node)).get(user_id)
            if entry is not None and len(entry) > 3 and entry[1] is True:
                return str(entry[3])
        return ""

    async def _node_members(self, room: str, node: str) -> dict[str, list[str | bool | int]]:
        raw = await self.cache.get(keys.room_node_members(room, node))
        if raw is None:
            return {}
        try:
            return _members(raw)
        except msgspec.DecodeError:
            return {}

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
                u: (m.user.name, m.user.guest, m.connections, m.source)
                for u, m in state.members.items()
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
            await self.cache.expire(keys.room_moderation(room), self.moderation_ttl)

    async def moderation(self, room: str) -> Moderation | None:
        raw = await self.cache.get(keys.room_moderation(room))
        if raw is None:
            return None
        try:
            return _moderation(raw)
        except msgspec.DecodeError:
            return None

    async def last_sent(self, room: str, sender: str) -> float | None:
        """When ``sender`` (``Member.sender``) last sent in the room under slow mode."""
        raw = await self.cache.get(keys.room_sent(room, sender))
        try:
            return float(raw) if raw else None
        except ValueError:
            return None

    async def write_sent(self, room: str, sender: str, at: float, slow_mode_s: float) -> None:
        """Remember a message under slow mode for as long as its interval runs."""
        await self.cache.set(keys.room_sent(room, sender), repr(at).encode(), ttl=slow_mode_s)

    async def write_moderation(self, state: chat.ChatRoomState) -> None:
        await self.cache.set(
            keys.room_moderation(state.room), _encode(_of(state)), ttl=self.moderation_ttl
        )


def _of(state: chat.ChatRoomState) -> Moderation:
    return Moderation(
        owner=state.owner,
        appointed=sorted(state.appointed),
        muted=sorted(state.muted),
        muted_sources=dict(state.muted_sources),
        slow_mode_s=state.slow_mode_s,
    )
