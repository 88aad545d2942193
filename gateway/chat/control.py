"""Control messages on a user's channel, typed: decoded once, by their ``t`` tag.

A user's channel (``keys.channel_user``) carries that user's pushes and two
control messages between nodes, never sent on to a client:

* ``{"t": "takeover", "d": {"session": ID}}`` -- another node resumes session
  ``ID``; the node holding it hands it over (``gateway.sessions.resume``).
* ``{"t": "revoke", "d": {...}}`` -- a ``typogram.revocation.RevokeNotice``
  (written by ``typogram.revocation.encode_notice``): close the sockets whose
  token it covers.
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


def takeover(session_id: str) -> bytes:
    """The ``takeover`` message asking for ``session_id``."""
    return msgspec.json.encode(Takeover(TakeoverRequest(session_id)))


def decode_control(payload: bytes) -> Control:
    """A control message; raises ``ValueError`` for anything else or anything malformed."""
    try:
        return _decoder.decode(payload)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise ValueError(f"not a control message: {exc}") from None
