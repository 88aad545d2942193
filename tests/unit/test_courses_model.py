"""Lesson goals, unlocking and course fields (typogram/courses/model.py)."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from typogram.courses.model import (
    Attempt,
    CourseFields,
    FixedSource,
    GeneratedSource,
    Goal,
    LessonFields,
    course_completed,
    course_problems,
    decode_source,
    encode_source,
    lesson_problems,
    lesson_states,
    meets_goal,
    next_lesson,
)
from typogram.slugs import decode_tags, encode_tags


def attempt(**changes: object) -> Attempt:
    base: dict[str, object] = {
        "wpm": 30.0, "accuracy": 95.0, "duration_ms": 20_000, "missed": 0, "mode": "words",
        "flagged": False,
    }  # fmt: skip
    return Attempt(**(base | changes))  # type: ignore[arg-type]


def test_a_goal_needs_speed_accuracy_the_whole_text_and_time() -> None:
    goal = Goal(wpm=25, accuracy=90, seconds=30)
    assert meets_goal(goal, attempt())
    assert meets_goal(goal, attempt(wpm=25.0, accuracy=90.0, duration_ms=30_000))
    assert not meets_goal(goal, attempt(wpm=24.99))
    assert not meets_goal(goal, attempt(accuracy=89.9))
    assert not meets_goal(goal, attempt(duration_ms=30_001))
    assert not meets_goal(goal, attempt(missed=1))  # gave up before the end
    assert meets_goal(Goal(25, 90), attempt(mode="time", missed=40, duration_ms=60_000))
    assert not meets_goal(goal, attempt(flagged=True))


def test_goal_from_an_event() -> None:
    data = {
        "wpm": 41.5, "accuracy": 97.0, "duration_ms": 12_000, "mode": "words",
        "chars": {"correct": 50, "incorrect": 0, "extra": 0, "missed": 2}, "flagged": False,
    }  # fmt: skip
    assert Attempt.of_event(data) == attempt(wpm=41.5, accuracy=97.0, duration_ms=12_000, missed=2)


def test_lessons_open_one_after_another() -> None:
    ids = ["a", "b", "c", "d"]
    assert lesson_states(ids, set()) == ["available", "locked", "locked", "locked"]
    assert lesson_states(ids, {"a", "b"}) == ["completed", "completed", "available", "locked"]
    # A lesson added before completed ones: they stay completed, the new one is next.
    assert lesson_states(ids, {"a", "c"}) == ["completed", "available", "completed", "locked"]
    assert next_lesson(ids, {"a", "c"}) == 2 and next_lesson(ids, set(ids)) is None
    assert course_completed(ids, set(ids)) and not course_completed(ids, {"a", "b", "c"})
    assert not course_completed([], set())


@given(st.lists(st.booleans(), max_size=12))
def test_exactly_one_lesson_is_next_until_all_are_done(done: list[bool]) -> None:
    ids = [f"l{i}" for i in range(len(done))]
    completed = {i for i, d in zip(ids, done, strict=True) if d}
    states = lesson_states(ids, completed)
    assert states.count("available") == (0 if len(completed) == len(ids) else 1)
    if "available" in states:
        first = states.index("available")
        assert next_lesson(ids, completed) == first + 1
        assert all(s != "locked" for s in states[:first])


def test_sources_round_trip_and_are_checked() -> None:
    for source in (FixedSource("fff jjj"), GeneratedSource(keys="asdf", only_keys=True)):
        assert decode_source(encode_source(source)) == source
    with pytest.raises(msgspec.ValidationError):
        decode_source(b'{"kind": "magic"}')
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"title": "t", "source": {"kind": "fixed"}}', type=LessonFields)
    assert lesson_problems({"source": FixedSource("   ")}) == {
        "source": "text must hold something to type"
    }
    assert lesson_problems({"source": FixedSource("tab\x07here")}) != {}
    assert lesson_problems({"source": GeneratedSource(only_keys=True)}) != {}


def test_course_fields_are_checked() -> None:
    good = CourseFields(slug="home-row", title="Home row", tags=["a-b", "x1"])
    assert course_problems({n: getattr(good, n) for n in good.__struct_fields__}) == {}
    assert set(
        course_problems(
            {"slug": "-Bad-", "language": "xx", "tags": ["no spaces"], "cover_color": "red",
             "cover_url": "javascript:alert(1)"}
        )
    ) == {"slug", "language", "tags", "cover_color", "cover_url"}  # fmt: skip
    assert encode_tags(["a", "b", "a"]) == ",a,b," and decode_tags(",a,b,") == ["a", "b"]
    assert encode_tags([]) == "" and decode_tags("") == []
