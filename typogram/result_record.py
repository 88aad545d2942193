"""A typing-test result, and the shapes it takes: the ``test_results`` row, the
``result.accepted`` event and the API's view. Pure (no I/O).

Rules
-----
1. ``ResultRecord`` is the one description of a result. Its attribute names
   are the API's; where the event's name differs it is the field's encoded
   name (``id`` travels as ``result_id``, the board as ``category``, the
   personal-best ``category`` as ``personal_best_category``), so the event's
   ``data`` is the record encoded (``event_data``) and decoded
   (``of_event``), field for field, in the record's order (docs/events.md).
2. The row (``row``) is every field that has a ``test_results`` column of
   the same name (``count`` is ``word_count``; ``chars`` is flattened to
   ``chars_*``; booleans are stored as 0/1). The rest (who typed it by name,
   the board, the flag's reason codes and evidence, the analytics) travels
   only in the event.
3. The API's view (``view``, its schema ``PublicResult``) is every field
   but the ``EVENT_ONLY`` ones, in the record's order and with its types
   (``id`` may be null: a guest's result is never stored). Adding a field
   to ``ResultRecord`` adds it to the event, the row (given its column)
   and the view (unless it is event-only).
4. A flag's reason is kept only for a flagged result, at most 255
   characters (the column's size), whichever way the record was made.
5. An event older than a field decodes with the field's default (``seed``
   0, ``ranked`` true, ``difficulty`` medium, …); a field of a wrong type,
   or a missing one without a default, raises ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import msgspec

from typogram.anticheat import Verdict
from typogram.db.schema import test_results
from typogram.texts import TextSpec
from typogram.typing import Result, analytics

MAX_FLAG_REASON: Final = 255
_COLUMN: Final = {"count": "word_count"}  # attribute -> column, where the names differ
_COLUMNS: Final = frozenset(test_results.c.keys())


class CharCounts(msgspec.Struct, frozen=True):
    correct: int
    incorrect: int
    extra: int
    missed: int


class ResultRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One result (rules 1-5); built by ``record_of``, ``of_event`` or ``of_row``."""

    id: str = msgspec.field(name="result_id")
    user_id: str
    username: str = ""
    test_id: str
    mode: str
    lang: str
    count: int | None = None  # words mode: the number of words
    seconds: int | None = None  # time mode: the test's clock
    punctuation: bool = False
    numbers: bool = False
    difficulty: str = "medium"
    # The leaderboard the result counts for (plain tests only), else None.
    board: str | None = msgspec.field(default=None, name="category")
    # The personal-best category, always set (``TextSpec.category``).
    category: str = msgspec.field(name="personal_best_category")
    wpm: float
    raw_wpm: float
    accuracy: float
    consistency: float
    duration_ms: int
    chars: CharCounts
    keystrokes: int
    flagged: bool = False
    flag_reasons: list[str] = msgspec.field(default_factory=list)
    flag_reason: str = ""
    flag_evidence: dict[str, Any] = msgspec.field(default_factory=dict)
    ranked: bool = True
    seed: int = 0
    created_at: int
    keys: dict[str, Any] = msgspec.field(default_factory=dict)
    bigrams: dict[str, Any] = msgspec.field(default_factory=dict)
    confusions: dict[str, Any] = msgspec.field(default_factory=dict)

    @classmethod
    def of_event(cls, data: Mapping[str, Any]) -> ResultRecord:
        """The record a ``result.accepted`` event carries (rules 1, 4, 5)."""
        try:
            record = msgspec.convert(data, cls, strict=False)
        except msgspec.ValidationError as exc:
            raise ValueError(f"result.accepted does not fit: {exc}") from exc
        return _kept_reason(record)

    @classmethod
    def of_row(cls, row: Mapping[str, Any]) -> ResultRecord:
        """The record of a stored ``test_results`` row (its event-only fields empty)."""
        values = {name: row[column] for name, column in _ROW_FIELDS}
        for name in _FLAGS:
            values[name] = bool(values[name])
        chars = CharCounts(*(row[column] for _, column in _CHARS_COLUMNS))
        return cls(**values, chars=chars)

    def event_data(self) -> dict[str, Any]:
        """The ``data`` of its ``result.accepted`` event (rule 1)."""
        # Shallow: the values are JSON-ready already (``to_builtins`` would copy the analytics).
        data = {wire: getattr(self, name) for name, wire in _EVENT_FIELDS}
        data["chars"] = msgspec.structs.asdict(self.chars)
        return data

    def row(self) -> dict[str, Any]:
        """Its ``test_results`` row (rule 2)."""
        row = {column: getattr(self, name) for name, column in _ROW_FIELDS}
        for name in _FLAGS:
            row[name] = int(row[name])
        chars = self.chars
        for part, column in _CHARS_COLUMNS:
            row[column] = getattr(chars, part)
        return row

    def view(self) -> dict[str, Any]:
        """The API's view (rule 3), JSON-ready; also what the recent-results cache holds."""
        view = {name: getattr(self, name) for name in _VIEW_FIELDS}
        view["chars"] = msgspec.structs.asdict(self.chars)
        return view


# Rule 1: (field, name in the event) of every field, in order.
_EVENT_FIELDS: Final = tuple((f.name, f.encode_name) for f in msgspec.structs.fields(ResultRecord))
# Rule 2: (field, column) of every field with a column of its own; ``chars`` is flattened.
_ROW_FIELDS: Final = tuple(
    (name, _COLUMN.get(name, name))
    for name in ResultRecord.__struct_fields__
    if _COLUMN.get(name, name) in _COLUMNS
)
_CHARS_COLUMNS: Final = tuple((part, f"chars_{part}") for part in CharCounts.__struct_fields__)
# Fields stored as 0/1 (their columns have their names).
_FLAGS: Final = tuple(f.name for f in msgspec.structs.fields(ResultRecord) if f.type is bool)


# Rule 3: the fields that travel only in the event; every other field is public.
EVENT_ONLY: Final = frozenset(
    {"user_id", "username", "board", "flag_reasons", "flag_evidence", "seed"}
    | {"keys", "bigrams", "confusions"}
)
_VIEW_FIELDS: Final = tuple(f for f in ResultRecord.__struct_fields__ if f not in EVENT_ONLY)
_VIEW_TYPES: Final = {"id": str | None}  # a guest's result is scored, never stored: no id

if TYPE_CHECKING:

    class PublicResult(msgspec.Struct):
        """The API's view of a result (rule 3); built from ``ResultRecord`` below."""

else:
    # Derived, so a public field is declared once (in ``ResultRecord``): the API
    # schema (``rest.results.ResultView``) is this struct, field for field.
    PublicResult = msgspec.defstruct(
        "PublicResult",
        [
            (f.name, _VIEW_TYPES.get(f.name, f.type))
            for f in msgspec.structs.fields(ResultRecord)
            if f.name in _VIEW_FIELDS
        ],
        module=__name__,
    )


@dataclass(frozen=True, slots=True)
class Submission:
    """What the REST layer hands over: who, which test, its score and verdict."""

    result_id: str
    user_id: str
    username: str
    test_id: str
    spec: TextSpec
    seed: int
    result: Result
    verdict: Verdict
    created_at: int
    # Enough typing to reach a board (``boards.enough_typing``); stored either way.
    ranked: bool = True
    # What the checks saw, for the review of a flagged result (JSON-ready).
    evidence: Mapping[str, Any] = field(default_factory=dict)
    # The user's rhythm profile with this result folded in, to keep once it is accepted.
    rhythm: bytes | None = None


def record_of(sub: Submission) -> ResultRecord:
    """The record of a scored and judged submission."""
    r, spec = sub.result, sub.spec
    flagged = sub.verdict.action == "flag"
    return ResultRecord(
        id=sub.result_id,
        user_id=sub.user_id,
        username=sub.username,
        test_id=sub.test_id,
        mode=spec.mode,
        lang=spec.lang,
        count=spec.count if spec.mode == "words" else None,
        seconds=spec.seconds if spec.mode == "time" else None,
        punctuation=spec.punctuation,
        numbers=spec.numbers,
        difficulty=spec.difficulty,
        board=spec.board,
        category=spec.category,
        wpm=r.wpm,
        raw_wpm=r.raw_wpm,
        accuracy=r.accuracy,
        consistency=r.consistency,
        duration_ms=r.duration_ms,
        chars=CharCounts(r.chars.correct, r.chars.incorrect, r.chars.extra, r.chars.missed),
        keystrokes=r.keystrokes,
        flagged=flagged,
        flag_reasons=[reason.code for reason in sub.verdict.reasons],
        flag_reason=sub.verdict.message[:MAX_FLAG_REASON] if flagged else "",
        flag_evidence=dict(sub.evidence) if flagged else {},
        ranked=sub.ranked,
        seed=sub.seed,
        created_at=sub.created_at,
        **analytics(r),
    )


def _kept_reason(record: ResultRecord) -> ResultRecord:
    """Rule 4."""
    reason = record.flag_reason[:MAX_FLAG_REASON] if record.flagged else ""
    if reason == record.flag_reason:
        return record
    return msgspec.structs.replace(record, flag_reason=reason)
