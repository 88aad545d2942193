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

from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal

import msgspec
import orjson

from typogram.codes import ErrorCode
from typogram.text_rules import visible_text_problem, whole

MAX_ID: Final = 2**53 - 1  # ids must survive a round trip through a JS number
ROOM_PATTERN: Final = whole(r"[A-Za-z0-9_.:\-]{1,64}")
MAX_TEXT_CHARS: Final = 4000  # the wire ceiling; rooms enforce their own, lower limit
MAX_QUERY_USERS: Final = 100

RoomName = Annotated[str, msgspec.Meta(pattern=ROOM_PATTERN)]
UserId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT_CHARS)]
Token = Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]
SessionId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Seq = Annotated[int, msgspec.Meta(ge=0, le=MAX_ID)]
MessageId = Annotated[str, msgspec.Meta(pattern=whole(r"[A-Za-z0-9_\-]{1,64}"))]
Status = Literal["online", "away", "racing"]


class ProtocolError(Exception):
    """A frame the server cannot accept; the reply is ``bad_request`` with ``re=id``."""

    def __init__(self, message: str, id: int | None = None) -> None:
        super().__init__(message)
        self.code = ErrorCode.BAD_REQUEST
        self.message = message
        self.id = id


# -- inbound messages ---------------------------------------------------------


class Auth(msgspec.Struct, frozen=True):
    """A fresh token for the live socket (the same user's), before the old one expires."""

    token: Token


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

    def __post_init__(self) -> None:
        # Chat keeps newlines; nothing invisible or reordering (``typogram.text_rules``).
        if problem := visible_text_problem(self.text, allow_newlines=True):
            raise ValueError(f"text {problem}")


class ChatMute(msgspec.Struct, frozen=True):
    room: RoomName
    user: UserId


class ChatUnmute(msgspec.Struct, frozen=True):
    room: RoomName
    user: UserId


class ChatSlowMode(msgspec.Struct, frozen=True):
    room: RoomName
    seconds: Annotated[float, msgspec.Meta(ge=0, le=3600)]


class ChatAppoint(msgspec.Struct, frozen=True):
    room: RoomName
    user: UserId


class ChatUnappoint(msgspec.Struct, frozen=True):
    room: RoomName
    user: UserId


class ChatDelete(msgspec.Struct, frozen=True):
    room: RoomName
    id: MessageId


class ChatReport(msgspec.Struct, frozen=True):
    room: RoomName
    id: MessageId
    reason: Annotated[str, msgspec.Meta(max_length=200)] = ""

    def __post_init__(self) -> None:
        # Staff read it: nothing invisible or reordering (``typogram.text_rules``).
        if problem := visible_text_problem(self.reason):
            raise ValueError(f"reason {problem}")


class PresenceSet(msgspec.Struct, frozen=True):
    status: Status


class PresenceQuery(msgspec.Struct, frozen=True):
    users: Annotated[list[UserId], msgspec.Meta(max_length=MAX_QUERY_USERS)]


class Ping(msgspec.Struct, frozen=True):
    pass


# -- races, matchmaking, tournaments (docs/protocol.md) ------------------------

MAX_RACE_TEXT: Final = 1000
MAX_KEYSTROKES: Final = 5000
RaceId = Annotated[str, msgspec.Meta(pattern=whole(r"[A-Za-z0-9_\-]{1,64}"))]
Difficulty = Literal["easy", "medium", "hard"]
Lang = Annotated[str, msgspec.Meta(pattern=whole(r"[a-z]{2}"))]
Keystroke = tuple[Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31)], str]


class MatchJoin(msgspec.Struct, frozen=True):
    mode: Literal["race"] = "race"
    difficulty: Difficulty = "medium"
    lang: Lang = "en"


class MatchCancel(msgspec.Struct, frozen=True):
    ticket: RaceId


class RaceCreate(msgspec.Struct, frozen=True):
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_RACE_TEXT)] | None = None
    difficulty: Difficulty = "medium"
    lang: Lang = "en"
    tournament: RaceId | None = None  # a race that counts toward a running tournament


class RaceJoin(msgspec.Struct, frozen=True):
    code: Annotated[str, msgspec.Meta(pattern=whole(r"[A-Za-z0-9]{1,16}"))] | None = None
    race: RaceId | None = None  # re-join a race one is seated in (after a resume)


class RaceStart(msgspec.Struct, frozen=True):
    race: RaceId


class RaceLeave(msgspec.Struct, frozen=True):
    race: RaceId


class RaceProgress(msgspec.Struct, frozen=True):
    race: RaceId
    pos: Annotated[int, msgspec.Meta(ge=0, le=MAX_RACE_TEXT * 10)]
    errors: Annotated[int, msgspec.Meta(ge=0, le=2**31)] = 0


class RaceFinish(msgspec.Struct, frozen=True):
    race: RaceId
    keystrokes: Annotated[list[Keystroke], msgspec.Meta(max_length=MAX_KEYSTROKES)]


class TournamentWatch(msgspec.Struct, frozen=True):
    tournament: RaceId


class TournamentUnwatch(msgspec.Struct, frozen=True):
    tournament: RaceId


RaceMessage = (
    MatchJoin
    | MatchCancel
    | RaceCreate
    | RaceJoin
    | RaceStart
    | RaceLeave
    | RaceProgress
    | RaceFinish
    | TournamentWatch
    | TournamentUnwatch
)


Message = (
    Hello
    | Auth
    | RoomJoin
    | RoomLeave
    | ChatSend
    | ChatMute
    | ChatUnmute
    | ChatSlowMode
    | ChatAppoint
    | ChatUnappoint
    | ChatDelete
    | ChatReport
    | PresenceSet
    | PresenceQuery
    | Ping
    | RaceMessage
)

INBOUND: Final[dict[str, type[Message]]] = {
    "hello": Hello,
    "auth": Auth,
    "room.join": RoomJoin,
    "room.leave": RoomLeave,
    "chat.send": ChatSend,
    "chat.mute": ChatMute,
    "chat.unmute": ChatUnmute,
    "chat.slowmode": ChatSlowMode,
    "chat.appoint": ChatAppoint,
    "chat.unappoint": ChatUnappoint,
    "chat.delete": ChatDelete,
    "chat.report": ChatReport,
    "presence.set": PresenceSet,
    "presence.query": PresenceQuery,
    "ping": Ping,
    "match.join": MatchJoin,
    "match.cancel": MatchCancel,
    "race.create": RaceCreate,
    "race.join": RaceJoin,
    "race.start": RaceStart,
    "race.leave": RaceLeave,
    "race.progress": RaceProgress,
    "race.finish": RaceFinish,
    "tournament.watch": TournamentWatch,
    "tournament.unwatch": TournamentUnwatch,
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


def error(
    code: ErrorCode,
    message: str,
    *,
    re: int | None = None,
    details: Mapping[str, str] | None = None,
) -> bytes:
    """An ``error`` frame; ``details`` (``AppError.details``) only when there are any."""
    d: dict[str, Any] = {"code": code.value, "message": message}
    if details:
        d["details"] = dict(details)
    return encode("error", d, re=re)


def push_payload(t: str, d: Any) -> bytes:
    """Encode a push once, for pub/sub: ``{"t": t, "d": d}`` with no ``s``."""
    return orjson.dumps({"t": t, "d": d})


def numbered_payload(number: int, payload: bytes, sent_at: float = 0.0) -> bytes:
    """A room push as published: ``{"n", "p", "t", "d"}``; ``parse_push`` strips n and p.

    ``number`` is the push's place in its room (``PushLog.append_numbered``): nodes use
    it to tell whether a resumed session missed anything. ``sent_at`` (epoch s) lets
    receiving nodes measure fan-out latency. Clients never see either.
    """
    return b'{"n":%d,"p":%.6f,%b' % (number, sent_at, payload[1:])


class Push:
    """A push encoded once; ``frame(seq)`` adds one recipient's ``s`` by concatenation.

    ``number`` is its place in the room's stream (0 when it has none), ``sent_at``
    when it was published (epoch s, 0 when unknown).
    """

    __slots__ = ("_head", "number", "sent_at", "size", "type")

    def __init__(self, type: str, payload: bytes, number: int = 0) -> None:
        self.type = type
        self.number = number
        self.sent_at = 0.0
        self._head = payload[:-1]  # drop the closing brace; ``frame`` puts it back
        self.size = len(payload) + 24

    def frame(self, seq: int) -> bytes:
        return b'%b,"s":%d}' % (self._head, seq)

    def bare(self) -> bytes:
        """The push without ``s`` (a snapshot that the next one supersedes)."""
        return self._head + b"}"


class _PushEnvelope(msgspec.Struct):
    t: str
    d: msgspec.Raw


_push_envelope = msgspec.json.Decoder(_PushEnvelope)


def parse_push(payload: bytes) -> Push:
    """Check a pub/sub payload from ``push_payload`` (or ``numbered_payload``) and wrap it.

    Raises ``ProtocolError`` on anything malformed.
    """
    number, sent_at = 0, 0.0
    if payload.startswith(b'{"n":'):
        comma = payload.find(b",")
        second = payload.find(b",", comma + 1)
        try:
            number = int(payload[5:comma])
            sent_at = float(payload[comma + 5 : second])
        except ValueError:
            raise ProtocolError("push has a bad number") from None
        payload = b"{" + payload[second + 1 :]
    try:
        envelope = _push_envelope.decode(payload)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise ProtocolError(f"push is not a frame: {exc}") from None
    if not payload.endswith(b"}"):
        raise ProtocolError("push has trailing bytes")
    push = Push(envelope.t, payload, number)
    push.sent_at = sent_at
    return push


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
