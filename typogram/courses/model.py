"""Courses and lessons as data, and the pure rules of learning them.

Rules:

1. A course is a slug, a title, a description, a language, a level
   (``LEVELS``), tags, a cover (colour and optional image URL), whether it
   is premium and whether it is published, and its lessons in order. The
   public sees published courses only; drafts exist for staff.
2. A lesson is numbered from 1 by its position in the course. Its text
   comes from a ``Source``: ``fixed`` text, ``generated`` words (language,
   difficulty, punctuation, numbers, keys to focus on) or ``adaptive`` words
   built from the learner's weak keys and bigrams.
3. A lesson's goal is a minimum WPM and accuracy and, optionally, a time
   to finish in. A result meets it (``meets_goal``) when it is not flagged,
   reaches both minimums, finishes the text (words mode: nothing missed)
   and, with a time, took no longer. The goal in force is the one the test
   was issued under.
4. Lesson 1 is always open; lesson n opens when every lesson before it is
   completed (``lesson_states``). A completed lesson stays completed, also
   when lessons are added before it later.
5. A course is completed when every one of its lessons is; the next
   lesson is the first one not completed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

import msgspec

from typogram.slugs import MAX_TAGS, SLUG, SLUG_RULE, tags_problem
from typogram.texts import LANGUAGES

Level = Literal["beginner", "intermediate", "advanced"]
LEVELS: Final[tuple[str, ...]] = ("beginner", "intermediate", "advanced")
LessonState = Literal["completed", "available", "locked"]

COLOR = re.compile(r"\A#[0-9a-fA-F]{6}\Z")
MAX_FIXED_CHARS: Final = 2000
MAX_FOCUS_KEYS: Final = 64
MAX_LESSON_WORDS: Final = 250
MAX_LESSON_SECONDS: Final = 180

Words = Annotated[int, msgspec.Meta(ge=5, le=MAX_LESSON_WORDS)]
Seconds = Annotated[int, msgspec.Meta(ge=5, le=MAX_LESSON_SECONDS)]


class FixedSource(msgspec.Struct, tag="fixed", tag_field="kind", forbid_unknown_fields=True):
    """The same text every time (drills such as ``fjfj jfjf``)."""

    text: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_FIXED_CHARS)]


class GeneratedSource(
    msgspec.Struct, tag="generated", tag_field="kind", forbid_unknown_fields=True
):
    """Real words of the course's language. ``keys``: letters to focus on; with
    ``only_keys`` every word is made of them alone (home row: ``asdfghjkl``)."""

    mode: Literal["words", "time"] = "words"
    count: Words = 25
    seconds: Seconds = 30
    difficulty: Literal["easy", "medium", "hard"] = "medium"
    punctuation: bool = False
    numbers: bool = False
    keys: Annotated[str, msgspec.Meta(max_length=MAX_FOCUS_KEYS)] = ""
    only_keys: bool = False


class AdaptiveSource(msgspec.Struct, tag="adaptive", tag_field="kind", forbid_unknown_fields=True):
    """Words that exercise the learner's own weak keys and bigrams (``practice/next``)."""

    count: Words = 25


Source = FixedSource | GeneratedSource | AdaptiveSource


class Goal(msgspec.Struct, forbid_unknown_fields=True):
    """Rule 3: what completes a lesson."""

    wpm: Annotated[float, msgspec.Meta(ge=0, le=300)] = 0.0
    accuracy: Annotated[float, msgspec.Meta(ge=0, le=100)] = 0.0
    seconds: Annotated[int, msgspec.Meta(ge=1, le=3600)] | None = None


def clean_text(raw: str) -> str:
    """A fixed text as it is typed: whitespace runs become one space, ends trimmed."""
    return " ".join(raw.split())


def source_problem(source: Source) -> str | None:
    """What is wrong with a source that its types alone do not catch, or ``None``."""
    if isinstance(source, FixedSource):
        text = clean_text(source.text)
        if not text:
            return "text must hold something to type"
        if any(not ch.isprintable() for ch in text):
            return "text must be printable characters"
    if isinstance(source, GeneratedSource) and source.only_keys and not source.keys.strip():
        return "only_keys needs keys"
    return None


def language_problem(language: str) -> str | None:
    return None if language in LANGUAGES else "must be one of " + ", ".join(LANGUAGES)


def encode_source(source: Source) -> str:
    return msgspec.json.encode(source).decode()


def decode_source(stored: str | bytes) -> Source:
    return msgspec.json.decode(stored, type=Source)


@dataclass(frozen=True, slots=True)
class Attempt:
    """The part of an accepted result a goal looks at (``result.accepted`` fields)."""

    wpm: float
    accuracy: float
    duration_ms: int
    missed: int
    mode: str
    flagged: bool

    @classmethod
    def of_event(cls, data: Mapping[str, Any]) -> Attempt:
        chars = data.get("chars") or {}
        return cls(
            wpm=float(data["wpm"]),
            accuracy=float(data["accuracy"]),
            duration_ms=int(data["duration_ms"]),
            missed=int(chars.get("missed", 0)),
            mode=str(data.get("mode", "words")),
            flagged=bool(data.get("flagged")),
        )


def meets_goal(goal: Goal, attempt: Attempt) -> bool:
    """Rule 3."""
    if attempt.flagged or attempt.wpm < goal.wpm or attempt.accuracy < goal.accuracy:
        return False
    if attempt.mode == "words" and attempt.missed > 0:
        return False
    return goal.seconds is None or attempt.duration_ms <= goal.seconds * 1000


def lesson_states(lesson_ids: Sequence[str], completed: set[str]) -> list[LessonState]:
    """Rule 4: each lesson's state, in order."""
    states: list[LessonState] = []
    open_so_far = True
    for lesson_id in lesson_ids:
        if lesson_id in completed:
            states.append("completed")
        elif open_so_far:
            states.append("available")
            open_so_far = False
        else:
            states.append("locked")
    return states


def next_lesson(lesson_ids: Sequence[str], completed: set[str]) -> int | None:
    """Rule 5: the number (from 1) of the first lesson not completed, ``None`` when done."""
    for number, lesson_id in enumerate(lesson_ids, start=1):
        if lesson_id not in completed:
            return number
    return None


def course_completed(lesson_ids: Sequence[str], completed: set[str]) -> bool:
    """Rule 5 (a course without lessons is never completed)."""
    return bool(lesson_ids) and all(lesson_id in completed for lesson_id in lesson_ids)


# -- what staff send (REST bodies; ``*_problems`` checks what the types cannot) ----

Title = Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
Description = Annotated[str, msgspec.Meta(max_length=2000)]
Tags = Annotated[list[str], msgspec.Meta(max_length=MAX_TAGS)]
Url = Annotated[str, msgspec.Meta(max_length=500)]
Position = Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]
Unset = msgspec.UnsetType
UNSET = msgspec.UNSET


class CourseFields(msgspec.Struct, forbid_unknown_fields=True):
    slug: str
    title: Title
    description: Description = ""
    language: str = "en"
    level: Level = "beginner"
    tags: Tags = msgspec.field(default_factory=list)
    cover_color: str = "#3b82f6"
    cover_url: Url = ""
    premium: bool = False
    published: bool = False
    position: Position = 100


class CoursePatch(msgspec.Struct, forbid_unknown_fields=True):
    slug: str | Unset = UNSET
    title: Title | Unset = UNSET
    description: Description | Unset = UNSET
    language: str | Unset = UNSET
    level: Level | Unset = UNSET
    tags: Tags | Unset = UNSET
    cover_color: str | Unset = UNSET
    cover_url: Url | Unset = UNSET
    premium: bool | Unset = UNSET
    published: bool | Unset = UNSET
    position: Position | Unset = UNSET


class LessonFields(msgspec.Struct, forbid_unknown_fields=True):
    title: Title
    source: Source
    instructions: Description = ""
    goal: Goal = msgspec.field(default_factory=Goal)
    number: Annotated[int, msgspec.Meta(ge=1)] | None = None  # insert here (default: last)


class LessonPatch(msgspec.Struct, forbid_unknown_fields=True):
    title: Title | Unset = UNSET
    source: Source | Unset = UNSET
    instructions: Description | Unset = UNSET
    goal: Goal | Unset = UNSET


def set_fields(patch: msgspec.Struct) -> dict[str, Any]:
    """The fields a patch sets (``UNSET`` left out)."""
    return {k: v for k, v in msgspec.structs.asdict(patch).items() if v is not UNSET}


def course_problems(fields: dict[str, Any]) -> dict[str, str]:
    """Field -> what is wrong, for the course fields given (empty: all fine)."""
    problems: dict[str, str] = {}
    if "slug" in fields and not SLUG.match(fields["slug"]):
        problems["slug"] = SLUG_RULE
    if "language" in fields and (problem := language_problem(fields["language"])):
        problems["language"] = problem
    if "tags" in fields and (problem := tags_problem(fields["tags"])):
        problems["tags"] = problem
    if "cover_color" in fields and not COLOR.match(fields["cover_color"]):
        problems["cover_color"] = "a colour as #rrggbb"
    url = fields.get("cover_url")
    if url and not url.startswith("https://"):
        problems["cover_url"] = "an https:// URL or empty"
    return problems


def lesson_problems(fields: dict[str, Any]) -> dict[str, str]:
    source = fields.get("source")
    problem = None if source is None else source_problem(source)
    return {"source": problem} if problem else {}
