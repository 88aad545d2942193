"""What gateway nodes send each other about races, typed: two tagged unions.

* ``RaceCommand`` -- a race command (tagged by ``k``): what a node hands its
  engine for a race it owns, and the very same value forwarded to the owner
  inside an ``Apply`` or ``Batch``; ``gateway.races.commands`` turns it into a
  ``rooms.race`` event.
* ``InboxMessage`` -- the messages of the race inbox (tagged by ``t``). They
  travel between gateway nodes on ``keys.channel_race_node(node)`` (and
  ``owner`` on ``keys.channel_race_nodes()``); ``gateway.races.inbox`` says
  what each is for.

An inbox message is decoded once, commands and all, by its tags. One whose
commands do not decode but whose envelope does (an ``apply`` or ``batch``)
becomes a ``Refused``: those commands are answered ``bad_request``, the
batch's others served. Field order is the order on the wire.
"""

from __future__ import annotations

from typing import Any

import msgspec

from typogram.protocol import Keystroke

# -- race commands ------------------------------------------------------------------------


class Join(msgspec.Struct, frozen=True, tag_field="k", tag="join"):
    """``user`` takes a seat (``race.join`` with a code)."""

    user: str
    name: str
    guest: bool = False


class Leave(msgspec.Struct, frozen=True, tag_field="k", tag="leave"):
    """``user`` leaves (``race.leave``, or their session ended)."""

    user: str


class Disconnect(msgspec.Struct, frozen=True, tag_field="k", tag="disconnect"):
    """``user``'s socket dropped (the racer keeps the seat for the resume window)."""

    user: str


class Reconnect(msgspec.Struct, frozen=True, tag_field="k", tag="reconnect"):
    """``user`` is back (``race.join`` with the race, or their socket came back)."""

    user: str


class Start(msgspec.Struct, frozen=True, tag_field="k", tag="start", omit_defaults=True):
    """Start the countdown; ``user`` ``None`` (or empty): a system actor."""

    user: str | None = None


class Progress(msgspec.Struct, frozen=True, tag_field="k", tag="progress"):
    """A progress report: ``pos`` characters typed, ``errors`` so far."""

    user: str
    pos: int
    errors: int


class Finish(msgspec.Struct, frozen=True, tag_field="k", tag="finish", omit_defaults=True):
    """A finish: the raw keystroke log, ``at`` when the node that took it from the
    socket received it (epoch ms; the finish's time runs from the start to then),
    and the racer's history as that node read it (``best``, ``record``:
    ``typogram.results.History``) for the anti-cheat history rules."""

    user: str
    keys: list[Keystroke]
    at: int | None = None
    best: float | None = None
    record: float | None = None


RaceCommand = Join | Leave | Disconnect | Reconnect | Start | Progress | Finish

# -- inbox messages -----------------------------------------------------------------------


class Apply(msgspec.Struct, frozen=True, tag_field="t", tag="apply", omit_defaults=True):
    """A command for a race the receiver owns; answered with an ``Answer``."""

    req: str
    sender: str = msgspec.field(name="from")
    race: str
    cmd: RaceCommand
    quiet: bool = False


class Batch(msgspec.Struct, frozen=True, tag_field="t", tag="batch"):
    """Quiet commands, ``(request, race, command)`` each; answered only when one fails."""

    sender: str = msgspec.field(name="from")
    cmds: list[tuple[str, str, RaceCommand]]


class Answer(msgspec.Struct, frozen=True, tag_field="t", tag="answer", omit_defaults=True):
    """The answer to an ``Apply`` (or a failed command of a ``Batch``): one of
    ``error`` (code, message), ``moved`` (not owned there) or ``replies``."""

    req: str
    error: tuple[str, str] | None = None
    moved: bool = False
    replies: list[tuple[str, dict[str, Any]]] | None = None


class Settled(msgspec.Struct, frozen=True, tag_field="t", tag="settled"):
    """The requests of a ``Batch`` the owner has served."""

    reqs: list[str]


class Owner(msgspec.Struct, frozen=True, tag_field="t", tag="owner"):
    """On the shared channel: ``node`` owns ``race`` now."""

    race: str
    node: str


class Matched(msgspec.Struct, frozen=True, tag_field="t", tag="matched", omit_defaults=True):
    """A matchmaker started ``race`` for ``user``, queued on the receiving node;
    ``payload`` is the ``match.found`` push, encoded. ``again``: sent once more because
    the seat is still awaited (``Matchmaker.redeliver``); omitted on the wire when false."""

    user: str
    race: str
    payload: str
    again: bool = False


class Pushes(msgspec.Struct, frozen=True, tag_field="t", tag="pushes"):
    """Snapshots of one tick slice, ``(race, push type, push)`` each, in order."""

    p: list[tuple[str, str, msgspec.Raw]]


InboxMessage = Apply | Batch | Answer | Settled | Owner | Matched | Pushes


class Refused(msgspec.Struct, frozen=True):
    """An ``apply`` or ``batch`` some of whose commands did not decode (never on the
    wire): ``errors`` (request, reason) are answered ``bad_request`` to ``sender``,
    ``rest`` (the batch's good commands) is served."""

    sender: str
    errors: list[tuple[str, str]]
    rest: Batch | None = None


class _LooseApply(msgspec.Struct, frozen=True, tag_field="t", tag="apply"):
    req: str
    sender: str = msgspec.field(name="from")
    race: str
    cmd: msgspec.Raw
    quiet: bool = False


class _LooseBatch(msgspec.Struct, frozen=True, tag_field="t", tag="batch"):
    sender: str = msgspec.field(name="from")
    cmds: list[tuple[str, str, msgspec.Raw]]


_decoder = msgspec.json.Decoder(InboxMessage)
_loose = msgspec.json.Decoder(_LooseApply | _LooseBatch)
_command = msgspec.json.Decoder(RaceCommand)
_encoder = msgspec.json.Encoder()


def decode(payload: bytes) -> InboxMessage | Refused:
    """One inbox message, or what is left of one with bad commands (``Refused``);
    raises ``ValueError`` for anything else malformed or unknown."""
    try:
        return _decoder.decode(payload)
    except (msgspec.DecodeError, RecursionError) as exc:
        refused = _refused(payload)
        if refused is None:
            raise ValueError(str(exc)) from None
        return refused


def decode_command(payload: bytes) -> RaceCommand:
    """One race command; raises ``ValueError`` for anything malformed or unknown."""
    try:
        return _command.decode(payload)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise ValueError(f"bad race command: {exc}") from None


def _refused(payload: bytes) -> Refused | None:
    """The ``Refused`` of an ``apply`` or ``batch`` whose envelope decodes; else ``None``."""
    try:
        loose = _loose.decode(payload)
    except (msgspec.DecodeError, RecursionError):
        return None
    if isinstance(loose, _LooseApply):
        try:
            decode_command(loose.cmd)
        except ValueError as exc:
            return Refused(loose.sender, [(loose.req, str(exc))])
        return None  # the command was fine: something else is wrong
    good: list[tuple[str, str, RaceCommand]] = []
    errors: list[tuple[str, str]] = []
    for request, race_id, raw in loose.cmds:
        try:
            good.append((request, race_id, decode_command(raw)))
        except ValueError as exc:
            errors.append((request, str(exc)))
    if not errors:
        return None
    return Refused(loose.sender, errors, Batch(loose.sender, good) if good else None)


def encode(message: InboxMessage) -> bytes:
    return _encoder.encode(message)


def failed(request: str, code: str, message: str) -> Answer:
    """An ``error`` answer made on this node (the owner could not be asked)."""
    return Answer(request, error=(code, message))
