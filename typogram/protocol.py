"""The WebSocket wire vocabulary: typed inbound messages, outbound frames.

Client → server frames are ``{"t": TYPE, "id": INT?, "d": {...}}``. ``decode``
parses and validates one frame exactly once and returns an ``Inbound`` whose
``body`` is a typed struct for that ``t``; anything else raises
``ProtocolError`` (always ``bad_request``), carrying the ``id`` when it was
readable so the error reply can say ``re``. No other exception escapes
``decode`` — a fuzz test holds it to that.

Server → client frames are ``{"t", "re"?, "s"?, "d"}``. Replies are encoded
by ``encode``/``error``. Pushes (frames many sessions receive, each with its
own sequence number ``s``) are JSON-encoded once into a ``Push``; giving one
recipient its ``s`` is a bytes concatenation, never a second encode.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

import msgspec
import orjson

from typogram.codes import ErrorCode

MAX_ID: Final = 2**53 - 1  # ids must survive a round trip through a JS number
ROOM_PATTERN: Final = r"^[A-Za-z0-9_.:\-]{1,64}$"
MAX_TEXT_CHARS: Final = 4000  # the wire ceiling; rooms enforce their own, lower limit
MAX_QUERY_USERS: Final = 100

RoomName = Annotated[str, msgspec.Meta(pattern=ROOM_PATTERN)]
UserId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT_CHARS)]
Token = Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]
SessionId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Seq = Annotated[int, msgspec.Meta(ge=0, le=MAX_ID)]
Status = Literal["online", "away", "racing"]


class ProtocolError(Exception):
    """A frame the server cannot accept; the reply is ``bad_request`` with ``re=id``."""

    def __init__(self, message: str, id: int | None = None) -> None:
        super().__init__(message)
        self.code = ErrorCode.BAD_REQUEST
        self.message = message
        self.id = id


# -- inbound messages ---------------------------------------------------------


class Resume(msgspec.Struct, frozen=True):
    session: SessionId
    seq: Seq


class Hello(msgspec.Struct, frozen=True):
    token: Token
    resume: Resume | None = None


class RoomJoin(msgspec.Struct, frozen=True):
    room: RoomName


class RoomLeave(msgspec.Struct, frozen=True):
    room: RoomName


class ChatSend(msgspec.Struct, frozen=True):
    room: RoomName
    text: Text


class ChatMute(msgspec.Struct, frozen=True):
    room: RoomName
    user: UserId


class ChatUnmute(msgspec.Struct, frozen=True):
    room: RoomName
    user: UserId


class PresenceSet(msgspec.Struct, frozen=True):
    status: Status


class PresenceQuery(msgspec.Struct, frozen=True):
    users: Annotated[list[UserId], msgspec.Meta(max_length=MAX_QUERY_USERS)]


class Ping(msgspec.Struct, frozen=True):
    pass


Message = (
    Hello
    | RoomJoin
    | RoomLeave
    | ChatSend
    | ChatMute
    | ChatUnmute
    | PresenceSet
    | PresenceQuery
    | Ping
)

INBOUND: Final[dict[str, type[Message]]] = {
    "hello": Hello,
    "room.join": RoomJoin,
    "room.leave": RoomLeave,
    "chat.send": ChatSend,
    "chat.mute": ChatMute,
    "chat.unmute": ChatUnmute,
    "presence.set": PresenceSet,
    "presence.query": PresenceQuery,
    "ping": Ping,
}


class Inbound(msgspec.Struct, frozen=True):
    """One decoded client frame: its type, its optional id and its typed body."""

    type: str
    id: int | None
    body: Message


class _Envelope(msgspec.Struct):
    # Loose on purpose: the id must be readable even when ``t`` is wrong.
    t: Any = None
    id: Any = None
    d: msgspec.Raw = msgspec.Raw(b"{}")


_envelope = msgspec.json.Decoder(_Envelope)
_bodies: Final = {name: msgspec.json.Decoder(kind) for name, kind in INBOUND.items()}


def decode(frame: str | bytes) -> Inbound:
    """Parse and validate one client frame; raises ``ProtocolError`` and nothing else."""
    try:
        envelope = _envelope.decode(frame)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise ProtocolError(f"frame is not a JSON object: {exc}") from None
    raw_id = envelope.id
    if raw_id is not None and (type(raw_id) is not int or not 0 <= raw_id <= MAX_ID):
        raise ProtocolError("id must be an integer between 0 and 2^53-1")
    frame_id: int | None = raw_id
    kind = envelope.t
    if not isinstance(kind, str) or kind not in _bodies:
        raise ProtocolError(f"unknown message type {kind!r}"[:200], frame_id)
    try:
        body = _bodies[kind].decode(envelope.d)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise ProtocolError(f"{kind}: {exc}", frame_id) from None
    return Inbound(kind, frame_id, body)


# -- outbound frames ------------------------------------------------------------


def encode(t: str, d: Any, *, re: int | None = None) -> bytes:
    """A complete server frame (a reply or a one-off); ``d`` must be JSON-able."""
    if re is None:
        return orjson.dumps({"t": t, "d": d})
    return orjson.dumps({"t": t, "re": re, "d": d})


def error(code: ErrorCode, message: str, *, re: int | None = None) -> bytes:
    return encode("error", {"code": code.value, "message": message}, re=re)


def push_payload(t: str, d: Any) -> bytes:
    """Encode a push once, for pub/sub: ``{"t": t, "d": d}`` with no ``s``."""
    return orjson.dumps({"t": t, "d": d})


class Push:
    """A push encoded once; ``frame(seq)`` adds one recipient's ``s`` by concatenation."""

    __slots__ = ("_head", "size", "type")

    def __init__(self, type: str, payload: bytes) -> None:
        self.type = type
        self._head = payload[:-1]  # drop the closing brace; ``frame`` puts it back
        self.size = len(payload) + 24

    def frame(self, seq: int) -> bytes:
        return b'%b,"s":%d}' % (self._head, seq)


class _PushEnvelope(msgspec.Struct):
    t: str
    d: msgspec.Raw


_push_envelope = msgspec.json.Decoder(_PushEnvelope)


def parse_push(payload: bytes) -> Push:
    """Check a pub/sub payload from ``push_payload`` and wrap it; raises ``ProtocolError``."""
    try:
        envelope = _push_envelope.decode(payload)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise ProtocolError(f"push is not a frame: {exc}") from None
    if not payload.endswith(b"}"):
        raise ProtocolError("push has trailing bytes")
    return Push(envelope.t, payload)


# -- what clients decode ----------------------------------------------------------


class ServerFrame(msgspec.Struct, frozen=True):
    """A server → client frame as the client SDK sees it."""

    t: str
    d: Any = None
    re: int | None = None
    s: int | None = None


_server_frame = msgspec.json.Decoder(ServerFrame)


def decode_server(frame: str | bytes) -> ServerFrame:
    """Parse a server frame; raises ``ProtocolError`` on anything malformed."""
    try:
        return _server_frame.decode(frame)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise ProtocolError(f"server frame is malformed: {exc}") from None
