"""Messages between nodes that a node reads itself, typed and decoded once, by their ``t``.

A user's channel (``keys.channel_user``) carries that user's pushes and two
control messages between nodes, never sent on to a client (``Control``):

* ``{"t": "takeover", "d": {"session": ID}}`` -- another node resumes session
  ``ID``; the node holding it hands it over (``gateway.sessions.resume``).
* ``{"t": "revoke", "d": {...}}`` -- a ``typogram.revocation.RevokeNotice``
  (written by ``typogram.revocation.encode_notice``): close the sockets whose
  token it covers.

A room's channel (``keys.channel_room``) carries pushes for its members; one
of them every node also applies to its own copy of the room:

* ``{"t": "room.moderation", "d": {...}}`` -- ``RoomModeration``, the room's
  owner, moderators, mutes and slow mode (``rooms.chat.moderation_view``; the
  fields a node does not apply, such as ``room`` and ``kind``, are ignored,
  and so are the ``n`` and ``p`` a numbered push carries).
"""

from __future__ import annotations

from typing import Final

import msgspec

from typogram.revocation import RevokeNotice


class TakeoverRequest(msgspec.Struct, frozen=True):
    session: str


class Takeover(msgspec.Struct, frozen=True, tag_field="t", tag="takeover"):
    d: TakeoverRequest


class Revoke(msgspec.Struct, frozen=True, tag_field="t", tag="revoke"):
    d: RevokeNotice


Control = Takeover | Revoke
CONTROL_TYPES: Final = frozenset({"takeover", "revoke"})  # the tags of ``Control``

_decoder = msgspec.json.Decoder(Control)


class ModerationNotice(msgspec.Struct, frozen=True):
    """Who owns and moderates a room, who is muted, its slow mode: no guest addresses."""

    owner: str | None
    moderators: frozenset[str]
    muted: frozenset[str]
    slow_mode_s: float


class RoomModeration(msgspec.Struct, frozen=True, tag_field="t", tag="room.moderation"):
    d: ModerationNotice


_moderation_decoder = msgspec.json.Decoder(RoomModeration)


def takeover(session_id: str) -> bytes:
    """The ``takeover`` message asking for ``session_id``."""
    return msgspec.json.encode(Takeover(TakeoverRequest(session_id)))


def decode_control(payload: bytes) -> Control:
    """A control message; raises ``ValueError`` for anything else or anything malformed."""
    try:
        return _decoder.decode(payload)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise ValueError(f"not a control message: {exc}") from None


def decode_moderation(payload: bytes) -> ModerationNotice:
    """A ``room.moderation`` push as published (numbered or not); raises ``ValueError``
    for any other push or anything malformed."""
    try:
        return _moderation_decoder.decode(payload).d
    except (msgspec.DecodeError, RecursionError) as exc:
        raise ValueError(f"not a room.moderation push: {exc}") from None
