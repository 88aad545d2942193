"""Dead letters: what a consumer group writes to ``<topic>.dlq``, and reading and replaying them.

Rules:

1. A dead letter is the original message, byte for byte, as the record
   value, with headers saying why it is there: ``dlq.kind`` =
   ``dead_letter``, ``dlq.topic`` (where it was read), ``dlq.group``,
   ``dlq.error`` (the exception class), ``dlq.reason`` (its message, at
   most ``REASON_MAX`` characters), ``dlq.attempts`` (handler calls made,
   0 for a message that could not be decoded), ``dlq.at`` (epoch ms) and
   ``dlq.event`` (the event id, empty when undecodable).
2. Every record about one event is keyed by the event's key, else its id
   (``partition_key``): they share a partition, so their offsets are their
   order in time.
3. A replay publishes the original bytes with the event's own key to the
   original topic and only then appends a replay marker to the DLQ (empty
   value; ``dlq.kind`` = ``replayed``, ``dlq.topic``, ``dlq.event``,
   ``dlq.at``). A crash between the two leaves the entry pending, so a
   second replay repeats the event (consumers are idempotent by event id)
   rather than losing it.
4. An event's entry gathers its records in order: pending while its newest
   record is a dead letter, replayed after a marker. An event that fails
   again after a replay is dead-lettered again and is pending again, with
   its dead letters, handler attempts and replays counted over all its
   records.
5. ``plan`` takes pending entries only. It refuses an event replayed
   ``limit`` times already (a poison that keeps failing stops there instead
   of looping) and a message that is not a decodable event (the same bytes
   fail the same way).
6. A record without ``dlq.*`` headers (written before they existed) is a
   dead letter whose group and reason are unknown.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from typogram.ports import Event, EventLog, Header, LogRecord
from typogram.topics import DLQ_SUFFIX, PARTITIONS, dead_letter

REASON_MAX: Final = 500

KIND: Final = "dlq.kind"
TOPIC: Final = "dlq.topic"
GROUP: Final = "dlq.group"
ERROR: Final = "dlq.error"
REASON: Final = "dlq.reason"
ATTEMPTS: Final = "dlq.attempts"
AT: Final = "dlq.at"
EVENT: Final = "dlq.event"

DEAD_LETTER: Final = b"dead_letter"
REPLAYED: Final = b"replayed"
UNKNOWN: Final = "?"


class UnknownTopic(ValueError):
    """A topic name that is neither a known topic nor its dead-letter twin."""


class UnknownIds(ValueError):
    """Event ids asked for that are not on the dead-letter topic."""

    def __init__(self, ids: Sequence[str]) -> None:
        super().__init__(f"not on the dead-letter topic: {', '.join(ids)}")
        self.ids = tuple(ids)


# -- writing ----------------------------------------------------------------------


def describe(exc: BaseException) -> tuple[str, str]:
    """The exception class and its message cut to ``REASON_MAX`` characters."""
    message = str(exc) or repr(exc)
    if len(message) > REASON_MAX:
        message = message[: REASON_MAX - 1] + "…"
    return type(exc).__name__, message


def partition_key(event: Event) -> str:
    """Rule 2: the key every DLQ record about ``event`` is published with."""
    return event.key if event.key is not None else event.id


def letter_headers(
    *,
    topic: str,
    group: str,
    error: str,
    reason: str,
    attempts: int,
    at_ms: int,
    event_id: str | None,
) -> tuple[Header, ...]:
    """Rule 1's headers."""
    return (
        (KIND, DEAD_LETTER),
        (TOPIC, topic.encode()),
        (GROUP, group.encode()),
        (ERROR, error.encode()),
        (REASON, reason.encode()),
        (ATTEMPTS, str(attempts).encode()),
        (AT, str(at_ms).encode()),
        (EVENT, (event_id or "").encode()),
    )


async def send(
    log: EventLog,
    topic: str,
    raw: bytes,
    *,
    event: Event | None,
    group: str,
    exc: BaseException,
    attempts: int,
    at_ms: int,
) -> str:
    """Write ``raw`` (read from ``topic``) to its DLQ with rule 1's headers; the error class."""
    error, reason = describe(exc)
    headers = letter_headers(
        topic=topic,
        group=group,
        error=error,
        reason=reason,
        attempts=attempts,
        at_ms=at_ms,
        event_id=None if event is None else event.id,
    )
    key = None if event is None else partition_key(event)
    await log.publish_raw(dead_letter(topic), raw, key=key, headers=headers)
    return error


# -- reading ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One dead-letter record (rule 1), where it sits on the DLQ."""

    topic: str
    group: str
    error: str
    reason: str
    attempts: int
    at_ms: int
    value: bytes
    partition: int
    offset: int


@dataclass(slots=True)
class Entry:
    """One event's history on a DLQ (rule 4); ``id`` is a position for an undecodable one."""

    id: str
    event: Event | None
    last: DeadLetter
    dead_letters: int = 1
    attempts: int = 0
    replays: int = 0
    pending: bool = True
    letters: list[DeadLetter] = field(default_factory=list)

    @property
    def type(self) -> str:
        return UNKNOWN if self.event is None else self.event.type


def source_topic(name: str) -> str:
    """``test-results`` for ``test-results`` or ``test-results.dlq``; raises ``UnknownTopic``."""
    base = name.removesuffix(DLQ_SUFFIX)
    if base not in PARTITIONS:
        known = ", ".join(sorted(PARTITIONS))
        raise UnknownTopic(f"unknown topic {name!r}; known: {known} (with or without .dlq)")
    return base


def _int(raw: bytes | None, default: int) -> int:
    try:
        return int(raw) if raw is not None else default
    except ValueError:
        return default


def _text(raw: bytes | None) -> str:
    return UNKNOWN if raw is None else raw.decode(errors="replace")


def entries(topic: str, records: Iterable[LogRecord]) -> list[Entry]:
    """Rule 4 over the records of ``topic``'s DLQ; the newest dead letter last."""
    found: dict[str, Entry] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        headers = dict(record.headers)
        if headers.get(KIND) == REPLAYED:
            replayed = found.get(_text(headers.get(EVENT)))
            if replayed is not None:
                replayed.replays += 1
                replayed.pending = False
            continue
        letter = DeadLetter(
            topic=_text(headers.get(TOPIC)) if TOPIC in headers else topic,
            group=_text(headers.get(GROUP)),
            error=_text(headers.get(ERROR)),
            reason=_text(headers.get(REASON)),
            attempts=_int(headers.get(ATTEMPTS), 0),
            at_ms=_int(headers.get(AT), record.timestamp),
            value=record.value,
            partition=record.partition,
            offset=record.offset,
        )
        try:
            event: Event | None = Event.decode(record.value)
        except ValueError:
            event = None
        entry_id = f"@{record.partition}:{record.offset}" if event is None else event.id
        entry = found.get(entry_id)
        if entry is None:
            entry = found[entry_id] = Entry(id=entry_id, event=event, last=letter, dead_letters=0)
        entry.last = letter
        entry.dead_letters += 1
        entry.attempts += letter.attempts
        entry.pending = True
        entry.letters.append(letter)
    return sorted(found.values(), key=lambda e: (e.last.at_ms, e.id))


async def read(log: EventLog, topic: str, max_records: int) -> list[Entry]:
    """The entries of ``topic``'s DLQ, from its newest ``max_records`` records."""
    return entries(topic, await log.read_back(dead_letter(topic), max_records))


# -- replaying --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Plan:
    replay: tuple[Entry, ...]
    refused: tuple[tuple[Entry, str], ...]


def plan(found: Sequence[Entry], ids: Sequence[str] | None, limit: int) -> Plan:
    """Rule 5. ``ids=None``: every pending entry. Raises ``UnknownIds`` for ids not found."""
    if ids is None:
        chosen = [entry for entry in found if entry.pending]
        explicit = False
    else:
        by_id = {entry.id: entry for entry in found}
        missing = [i for i in dict.fromkeys(ids) if i not in by_id]
        if missing:
            raise UnknownIds(missing)
        chosen = [by_id[i] for i in dict.fromkeys(ids)]
        explicit = True
    replay: list[Entry] = []
    refused: list[tuple[Entry, str]] = []
    for entry in chosen:
        if entry.event is None:
            refused.append((entry, "not a decodable event: replaying the same bytes fails again"))
        elif explicit and not entry.pending:
            refused.append((entry, "replayed and not back on the DLQ since"))
        elif entry.replays >= limit:
            refused.append((entry, f"replayed {entry.replays} times already (limit {limit})"))
        else:
            replay.append(entry)
    return Plan(tuple(replay), tuple(refused))


def marker_headers(topic: str, event_id: str, at_ms: int) -> tuple[Header, ...]:
    """Rule 3's replay marker."""
    return (
        (KIND, REPLAYED),
        (TOPIC, topic.encode()),
        (EVENT, event_id.encode()),
        (AT, str(at_ms).encode()),
    )


async def replay(log: EventLog, topic: str, chosen: Iterable[Entry], *, at_ms: int) -> int:
    """Rule 3 for each entry (all decodable, from ``topic``'s DLQ); how many were replayed."""
    done = 0
    for entry in chosen:
        event = entry.event
        if event is None:
            raise ValueError(f"entry {entry.id} is not a decodable event")
        await log.publish_raw(topic, entry.last.value, key=event.key)
        await log.publish_raw(
            dead_letter(topic),
            b"",
            key=partition_key(event),
            headers=marker_headers(topic, event.id, at_ms),
        )
        done += 1
    return done


# -- text for the command ---------------------------------------------------------


def when(at_ms: int) -> str:
    return dt.datetime.fromtimestamp(at_ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def counts_table(per_topic: Sequence[tuple[str, Sequence[Entry]]]) -> list[str]:
    lines = [f"{'DEAD-LETTER TOPIC':<26} {'PENDING':>7} {'EVENTS':>7} {'RECORDS':>8}"]
    for topic, found in per_topic:
        records = sum(e.dead_letters + e.replays for e in found)
        pending = sum(e.pending for e in found)
        lines.append(f"{dead_letter(topic):<26} {pending:>7} {len(found):>7} {records:>8}")
    return lines


def entries_table(topic: str, found: Sequence[Entry]) -> list[str]:
    lines = [
        f"{dead_letter(topic)}:",
        f"  {'EVENT ID':<32}  {'TYPE':<22} {'GROUP':<14} {'STATE':<8} {'DEAD':>4} "
        f"{'ATTEMPTS':>8} {'REPLAYS':>7}  {'LAST DEAD LETTER (UTC)':<22} REASON",
    ]
    for e in found:
        state = "pending" if e.pending else "replayed"
        reason = f"{e.last.error}: {e.last.reason}".replace("\n", " ")
        lines.append(
            f"  {e.id:<32}  {e.type:<22} {e.last.group:<14} {state:<8} {e.dead_letters:>4} "
            f"{e.attempts:>8} {e.replays:>7}  {when(e.last.at_ms):<22} {reason}"
        )
    return lines


# -- the command (``typogram dlq``) -------------------------------------------------


async def list_command(
    log: EventLog, topic: str | None, *, max_records: int, out: Callable[[str], None]
) -> int:
    """``typogram dlq list [TOPIC]``: counts per DLQ, then the entries of the named one (or
    of every DLQ holding any). Returns the exit code."""
    names = [topic] if topic is not None else sorted(PARTITIONS)
    per_topic = [(name, await read(log, name, max_records)) for name in names]
    for line in counts_table(per_topic):
        out(line)
    for name, found in per_topic:
        if found or topic is not None:
            out("")
            for line in entries_table(name, found):
                out(line)
    return 0


async def replay_command(
    log: EventLog,
    topic: str,
    ids: Sequence[str] | None,
    *,
    dry_run: bool,
    limit: int,
    max_records: int,
    at_ms: int,
    out: Callable[[str], None],
) -> int:
    """``typogram dlq replay TOPIC --id ID… | --all [--dry-run]``. Returns the exit code:
    0, or 1 when an entry was refused (rule 5). Raises ``UnknownIds`` before replaying
    anything when an id is not on the DLQ."""
    chosen = plan(await read(log, topic, max_records), ids, limit)
    if not chosen.replay and not chosen.refused:
        out(f"nothing pending on {dead_letter(topic)}")
        return 0
    if not dry_run:
        await replay(log, topic, chosen.replay, at_ms=at_ms)
    verb = "would replay" if dry_run else "replayed"
    for entry in chosen.replay:
        out(
            f"{verb} {entry.id} ({entry.type}; dead-lettered {entry.dead_letters}x, "
            f"{entry.attempts} attempts, {entry.replays} replays before) to {topic}"
        )
    for entry, why in chosen.refused:
        out(f"refused {entry.id}: {why}")
    done = "to replay (dry run)" if dry_run else "replayed"
    out(f"{len(chosen.replay)} {done}, {len(chosen.refused)} refused")
    return 1 if chosen.refused else 0
