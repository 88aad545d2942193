"""The messages of the race inbox, typed: one tagged union, decoded once by its ``t`` tag.

They travel between gateway nodes on ``keys.channel_race_node(node)`` (and
``owner`` on ``keys.channel_race_nodes()``); ``gateway.races.inbox`` says what
each is for. Field order is the order on the wire.
"""

from __future__ import annotations

from typing import Any

import msgspec

# A race command as forwarded (``gateway.races.commands``): ``{"k": kind, ...}``.
CommandData = dict[str, Any]


class Apply(msgspec.Struct, frozen=True, tag_field="t", tag="apply", omit_defaults=True):
    """A command for a race the receiver owns; answered with an ``Answer``."""

    req: str
    sender: str = msgspec.field(name="from")
    race: str
    cmd: CommandData
    quiet: bool = False


class Batch(msgspec.Struct, frozen=True, tag_field="t", tag="batch"):
    """Quiet commands, ``(request, race, command)`` each; answered only when one fails."""

    sender: str = msgspec.field(name="from")
    cmds: list[tuple[str, str, CommandData]]


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


class Matched(msgspec.Struct, frozen=True, tag_field="t", tag="matched"):
    """A matchmaker started ``race`` for ``user``, queued on the receiving node;
    ``payload`` is the ``match.found`` push, encoded."""

    user: str
    race: str
    payload: str


class Pushes(msgspec.Struct, frozen=True, tag_field="t", tag="pushes"):
    """Snapshots of one tick slice, ``(race, push type, push)`` each, in order."""

    p: list[tuple[str, str, msgspec.Raw]]


InboxMessage = Apply | Batch | Answer | Settled | Owner | Matched | Pushes

_decoder = msgspec.json.Decoder(InboxMessage)
_encoder = msgspec.json.Encoder()


def decode(payload: bytes) -> InboxMessage:
    """One inbox message; raises ``ValueError`` for anything malformed or unknown."""
    try:
        return _decoder.decode(payload)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise ValueError(str(exc)) from None


def encode(message: InboxMessage) -> bytes:
    return _encoder.encode(message)


def failed(request: str, code: str, message: str) -> Answer:
    """An ``error`` answer made on this node (the owner could not be asked)."""
    return Answer(request, error=(code, message))
