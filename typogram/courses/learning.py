"""Enrolments, lesson tests and their completion: what a learner did, in SQL.

Rules:

1. Enrolling is idempotent: one ``user_typing_courses`` row per user and
   course (its primary key), created once; enrolling again answers the
   same row.
2. Issuing a lesson test records who it was issued to, for which course
   and lesson, and the goal in force (``lesson_tests``).
3. ``apply_results`` takes ``result.accepted`` events of lesson tests (from
   the ``courses`` worker) and, in one transaction:

   * skips a result whose test was not issued as a lesson test to that
     same user (a forged or foreign test completes nothing) or whose result
     was applied already (``lesson_tests.result_id`` is set by a
     conditional update: exactly once, also under replays);
   * locks the enrolment row (users and courses in sorted order), so every
     result of one learner's course is applied one after the other, even by
     two workers at once; progress rows are read with locking reads, which
     see what the other committed;
   * counts the attempt and the bests, and completes the lesson when the
     result meets the goal it was issued under and the lesson is not
     completed yet (a conditional update: completed once);
   * completes the course when its every lesson is completed (again a
     conditional update on the enrolment), which the worker announces.
4. Completion times are the result's time, so a replay writes the same.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy import and_, bindparam, func, select, update
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from typogram.courses import model
from typogram.db.database import Database
from typogram.db.schema import course_lessons, lesson_tests, user_lesson_progress
from typogram.db.schema import user_typing_courses as enrolments
from typogram.logs import get_logger

log = get_logger("typogram.courses.learning")

LESSON_CATEGORY = "lesson-"


def is_lesson_result(data: Mapping[str, Any]) -> bool:
    """A ``result.accepted`` event of a lesson test (``TextSpec.lesson``)."""
    return str(data.get("personal_best_category", "")).startswith(LESSON_CATEGORY)


@dataclass(frozen=True, slots=True)
class Completion:
    """A lesson (and maybe its course) completed by a result, for the worker to announce."""

    user_id: str
    course_id: str
    lesson_id: str
    result_id: str
    at: int
    course_completed: bool


def enrolment_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "enrolled_at": int(row.enrolled_at),
        "last_activity_at": int(row.last_activity_at),
        "completed_at": row.completed_at,
        "expires_at": row.expires_at,
    }


def now_ms() -> int:
    return int(time.time() * 1000)


_ENROL_MYSQL = mysql.insert(enrolments).on_duplicate_key_update(user_id=enrolments.c.user_id)
_ENROL_SQLITE = sqlite.insert(enrolments).on_conflict_do_nothing()
_PROGRESS_MYSQL = mysql.insert(user_lesson_progress).on_duplicate_key_update(
    user_id=user_lesson_progress.c.user_id
)
_PROGRESS_SQLITE = sqlite.insert(user_lesson_progress).on_conflict_do_nothing()


class Learning:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- enrolments -------------------------------------------------------------

    async def enrol(
        self, user_id: str, course_id: str, *, expires_at: int | None
    ) -> tuple[dict[str, Any], bool]:
        """Rule 1: the enrolment and whether this call created it."""
        now, fresh = now_ms(), uuid.uuid4().hex
        statement = _ENROL_MYSQL if self.db.dialect == "mysql" else _ENROL_SQLITE
        async with self.db.write() as conn:
            await conn.execute(
                statement,
                {"user_id": user_id, "course_id": course_id, "id": fresh, "enrolled_at": now,
                 "last_activity_at": now, "completed_at": None, "expires_at": expires_at},
            )  # fmt: skip
            row = (await conn.execute(_enrolment(user_id, course_id))).one()
        return enrolment_view(row), row.id == fresh

    async def enrolment(self, user_id: str, course_id: str) -> dict[str, Any] | None:
        async with self.db.read(primary=True) as conn:
            row = (await conn.execute(_enrolment(user_id, course_id))).first()
        return None if row is None else enrolment_view(row)

    async def enrolments(self, user_id: str, limit: int) -> list[tuple[str, dict[str, Any]]]:
        """The user's enrolments as (course id, enrolment), latest activity first."""
        e = enrolments.c
        statement = (
            select(enrolments)
            .where(e.user_id == user_id)
            .order_by(e.last_activity_at.desc(), e.course_id)
            .limit(limit)
        )
        async with self.db.read(primary=True) as conn:
            rows = (await conn.execute(statement)).all()
        return [(row.course_id, enrolment_view(row)) for row in rows]

    async def progress(
        self, user_id: str, course_ids: Iterable[str]
    ) -> dict[str, dict[str, dict[str, Any]]]:
        """course id -> lesson id -> the user's progress on it."""
        wanted = list(course_ids)
        if not wanted:
            return {}
        p = user_lesson_progress.c
        statement = select(user_lesson_progress).where(
            p.user_id == user_id, p.course_id.in_(wanted)
        )
        async with self.db.read(primary=True) as conn:
            rows = (await conn.execute(statement)).all()
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for row in rows:
            out.setdefault(row.course_id, {})[row.lesson_id] = {
                "attempts": int(row.attempts),
                "best_wpm": float(row.best_wpm),
                "best_accuracy": float(row.best_accuracy),
                "completed_at": row.completed_at,
            }
        return out

    # -- lesson tests -------------------------------------------------------------

    async def issued(
        self, test_id: str, user_id: str, course_id: str, lesson_id: str, goal: model.Goal
    ) -> None:
        """Rule 2, and the learner's last activity."""
        now = now_ms()
        async with self.db.write() as conn:
            await conn.execute(
                lesson_tests.insert().values(
                    test_id=test_id, user_id=user_id, course_id=course_id, lesson_id=lesson_id,
                    goal=msgspec.json.encode(goal).decode(), issued_at=now,
                )
            )  # fmt: skip
            await conn.execute(
                update(enrolments)
                .where(enrolments.c.user_id == user_id, enrolments.c.course_id == course_id)
                .values(last_activity_at=now)
            )

    async def prune_tests(self, before_ms: int, limit: int = 5000) -> int:
        """Forget lesson tests issued before ``before_ms`` (they can no longer be
        submitted, and a late replay of their result then completes nothing)."""
        t = lesson_tests.c
        async with self.db.write() as conn:
            old = select(t.test_id).where(t.issued_at < before_ms).limit(limit)
            ids = [row.test_id for row in await conn.execute(old)]
            if ids:
                await conn.execute(lesson_tests.delete().where(t.test_id.in_(ids)))
        return len(ids)

    # -- completion (rule 3) --------------------------------------------------------

    async def apply_results(self, batch: Sequence[Mapping[str, Any]]) -> list[Completion]:
        by_test = {str(d["test_id"]): d for d in batch if is_lesson_result(d)}
        if not by_test:
            return []
        done: list[Completion] = []
        async with self.db.write() as conn:
            issued = {
                row.test_id: row for row in await conn.execute(_TESTS_AMONG, {"ids": list(by_test)})
            }
            mine = [
                (issued[test_id], data)
                for test_id, data in by_test.items()
                if test_id in issued and issued[test_id].user_id == str(data["user_id"])
            ]
            for test, data in sorted(mine, key=lambda pair: (pair[0].user_id, pair[0].course_id)):
                completion = await self._apply(conn, test, data)
                if completion is not None:
                    done.append(completion)
        return done

    async def _apply(
        self, conn: AsyncConnection, test: Any, data: Mapping[str, Any]
    ) -> Completion | None:
        result_id, at = str(data["result_id"]), int(data["created_at"])
        t = lesson_tests.c
        claimed = await conn.execute(
            update(lesson_tests)
            .where(t.test_id == test.test_id, t.result_id.is_(None))
            .values(result_id=result_id)
        )
        if claimed.rowcount != 1:
            return None  # applied before
        user_id, course_id, lesson_id = test.user_id, test.course_id, test.lesson_id
        enrolled = (await conn.execute(_enrolment(user_id, course_id).with_for_update())).first()
        if enrolled is None:
            log.warning("lesson result without an enrolment", extra={"result_id": result_id})
            return None
        p = user_lesson_progress.c
        insert = _PROGRESS_MYSQL if self.db.dialect == "mysql" else _PROGRESS_SQLITE
        await conn.execute(
            insert,
            {"user_id": user_id, "lesson_id": lesson_id, "course_id": course_id, "attempts": 0,
             "best_wpm": 0.0, "best_accuracy": 0.0, "completed_at": None, "completed_by": None,
             "updated_at": at},
        )  # fmt: skip
        mine = and_(p.user_id == user_id, p.lesson_id == lesson_id)
        await conn.execute(select(p.attempts).where(mine).with_for_update())
        attempt = model.Attempt.of_event(data)
        greater = func.greatest if self.db.dialect == "mysql" else func.max
        await conn.execute(
            update(user_lesson_progress)
            .where(mine)
            .values(
                attempts=p.attempts + 1,
                best_wpm=greater(p.best_wpm, attempt.wpm),
                best_accuracy=greater(p.best_accuracy, attempt.accuracy),
                updated_at=at,
            )
        )
        e = enrolments.c
        await conn.execute(
            update(enrolments)
            .where(e.user_id == user_id, e.course_id == course_id)
            .values(last_activity_at=greater(e.last_activity_at, at))
        )
        goal = msgspec.json.decode(test.goal, type=model.Goal)
        if not model.meets_goal(goal, attempt):
            return None
        completed = await conn.execute(
            update(user_lesson_progress)
            .where(mine, p.completed_at.is_(None))
            .values(completed_at=at, completed_by=result_id)
        )
        if completed.rowcount != 1:
            return None  # completed by an earlier result
        course_done = await self._complete_course(conn, user_id, course_id, at)
        return Completion(user_id, course_id, lesson_id, result_id, at, course_done)

    async def _complete_course(
        self, conn: AsyncConnection, user_id: str, course_id: str, at: int
    ) -> bool:
        lesson_ids = [
            row.id
            for row in await conn.execute(
                select(course_lessons.c.id)
                .where(course_lessons.c.course_id == course_id)
                .order_by(course_lessons.c.position)
            )
        ]
        p = user_lesson_progress.c
        # A locking read: it sees completions another worker committed while we waited.
        completed = {
            row.lesson_id
            for row in await conn.execute(
                select(p.lesson_id)
                .where(p.user_id == user_id, p.course_id == course_id, p.completed_at.isnot(None))
                .with_for_update()
            )
        }
        if not model.course_completed(lesson_ids, completed):
            return False
        e = enrolments.c
        finished = await conn.execute(
            update(enrolments)
            .where(e.user_id == user_id, e.course_id == course_id, e.completed_at.is_(None))
            .values(completed_at=at)
        )
        return bool(finished.rowcount == 1)


def _enrolment(user_id: str, course_id: str) -> Any:
    e = enrolments.c
    return select(enrolments).where(e.user_id == user_id, e.course_id == course_id)


_TESTS_AMONG = select(lesson_tests).where(
    lesson_tests.c.test_id.in_(bindparam("ids", expanding=True))
)
