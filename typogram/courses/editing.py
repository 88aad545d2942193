"""Staff changes to courses and lessons, and loading the starter catalog.

Rules:

1. Slugs are unique (409 on a clash). Lessons are numbered 1..n by
   ``position`` with no gaps: adding at number k moves k.. up by one,
   deleting closes the gap. A course holds at most ``max_lessons``.
2. Lesson edits lock the course row first (a locking read), so two
   concurrent edits of one course's lessons take turns and numbers never
   clash; ``lesson_count`` changes in the same transaction.
3. A course with enrolments is not deleted (409: unpublish it instead), so
   no learner loses their progress to a delete.
4. Every change makes the cached catalog stale at once
   (``typogram.cache_aside``: a fresh version token) and drops the course's
   cached page under its old and new slug.
5. ``seed`` adds the starter courses and plans that are missing (by slug
   and plan id) and leaves existing ones alone, so it can run on every
   start; ``replace=True`` rewrites the starter courses' fields and lessons.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from typogram import cache_aside, keys
from typogram.codes import ErrorCode
from typogram.courses.model import (
    CourseFields,
    LessonFields,
    Source,
    clean_text,
    encode_source,
)
from typogram.courses.model import FixedSource as _Fixed
from typogram.courses.starter import StarterCourse, lesson_id
from typogram.db.database import Database
from typogram.db.schema import course_lessons, courses, plans, user_typing_courses
from typogram.errors import AppError
from typogram.ports import Cache
from typogram.slugs import encode_tags
from typogram.subscriptions.rules import Plan


def now_ms() -> int:
    return int(time.time() * 1000)


def not_found(what: str) -> AppError:
    return AppError(ErrorCode.NOT_FOUND, f"no such {what}")


def course_row(fields: dict[str, Any]) -> dict[str, Any]:
    """Column values for the course fields given (booleans and tags as stored)."""
    row = dict(fields)
    if "tags" in row:
        row["tags"] = encode_tags(row["tags"])
    for flag in ("premium", "published"):
        if flag in row:
            row[flag] = int(row[flag])
    return row


def lesson_row(fields: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name in ("title", "instructions"):
        if name in fields:
            row[name] = fields[name]
    if "source" in fields:
        source: Source = fields["source"]
        if isinstance(source, _Fixed):
            source = _Fixed(clean_text(source.text))
        row["source"] = encode_source(source)
    if "goal" in fields:
        goal = fields["goal"]
        row |= {"goal_wpm": goal.wpm, "goal_accuracy": goal.accuracy, "goal_seconds": goal.seconds}
    return row


class CourseEditor:
    def __init__(
        self, db: Database, cache: Cache, *, catalog_ttl_s: float, max_lessons: int = 100
    ) -> None:
        self.db = db
        self.cache = cache
        self.catalog_ttl_s = catalog_ttl_s
        self.max_lessons = max_lessons

    async def changed(self, *slugs: str) -> None:
        """Rule 4."""
        await cache_aside.invalidate(
            self.cache,
            keys.course_catalog_version(),
            *(keys.course_catalog_course(slug) for slug in dict.fromkeys(slugs)),
            ttl=self.catalog_ttl_s,
        )

    async def list_all(self, limit: int = 500) -> list[dict[str, Any]]:
        """Every course, drafts included, by position (staff)."""
        statement = select(courses).order_by(courses.c.position, courses.c.slug).limit(limit)
        async with self.db.read(primary=True) as conn:
            rows = (await conn.execute(statement)).all()
        return [
            {"slug": r.slug, "title": r.title, "published": bool(r.published),
             "premium": bool(r.premium), "language": r.language, "level": r.level,
             "lesson_count": int(r.lesson_count), "position": int(r.position),
             "updated_at": int(r.updated_at)}
            for r in rows
        ]  # fmt: skip

    async def create(self, fields: CourseFields, *, actor: str) -> str:
        """Rule 1; returns the new course's id."""
        now, course = now_ms(), uuid.uuid4().hex
        values = course_row({name: getattr(fields, name) for name in fields.__struct_fields__})
        try:
            async with self.db.write() as conn:
                await conn.execute(
                    courses.insert().values(
                        id=course, created_by=actor[:32], created_at=now, updated_at=now, **values
                    )
                )
        except IntegrityError as exc:
            raise _slug_taken() from exc
        await self.changed(fields.slug)
        return course

    async def update(self, slug: str, fields: dict[str, Any]) -> str:
        """Apply ``fields`` (already checked); returns the course's slug after it."""
        values = course_row(fields)
        try:
            async with self.db.write() as conn:
                done = await conn.execute(
                    update(courses)
                    .where(courses.c.slug == slug)
                    .values(updated_at=now_ms(), **values)
                )
        except IntegrityError as exc:
            raise _slug_taken() from exc
        if done.rowcount == 0:
            raise not_found("course")
        new_slug = str(values.get("slug", slug))
        await self.changed(slug, new_slug)
        return new_slug

    async def delete(self, slug: str) -> None:
        """Rule 3."""
        async with self.db.write() as conn:
            course = await _locked_course(conn, slug)
            learners = await conn.scalar(
                select(func.count())
                .select_from(user_typing_courses)
                .where(user_typing_courses.c.course_id == course.id)
            )
            if learners:
                raise AppError(
                    ErrorCode.CONFLICT,
                    f"{learners} learner(s) are enrolled: unpublish the course instead",
                )
            await conn.execute(
                course_lessons.delete().where(course_lessons.c.course_id == course.id)
            )
            await conn.execute(courses.delete().where(courses.c.id == course.id))
        await self.changed(slug)

    async def add_lesson(self, slug: str, fields: LessonFields) -> int:
        """Rules 1-2; returns the new lesson's number."""
        now = now_ms()
        async with self.db.write() as conn:
            course = await _locked_course(conn, slug)
            count = int(course.lesson_count)
            if count >= self.max_lessons:
                raise AppError(
                    ErrorCode.CONFLICT, f"a course holds at most {self.max_lessons} lessons"
                )
            number = count + 1 if fields.number is None else min(fields.number, count + 1)
            await _shift(conn, course.id, number, +1)
            values = lesson_row(
                {"title": fields.title, "instructions": fields.instructions,
                 "source": fields.source, "goal": fields.goal}
            )  # fmt: skip
            await conn.execute(
                course_lessons.insert().values(
                    id=uuid.uuid4().hex, course_id=course.id, position=number,
                    created_at=now, updated_at=now, **values,
                )
            )  # fmt: skip
            await _set_count(conn, course.id, count + 1, now)
        await self.changed(slug)
        return number

    async def update_lesson(self, slug: str, number: int, fields: dict[str, Any]) -> None:
        async with self.db.write() as conn:
            course = await _locked_course(conn, slug)
            done = await conn.execute(
                update(course_lessons)
                .where(course_lessons.c.course_id == course.id, course_lessons.c.position == number)
                .values(updated_at=now_ms(), **lesson_row(fields))
            )
            if done.rowcount == 0:
                raise not_found("lesson")
            await conn.execute(
                update(courses).where(courses.c.id == course.id).values(updated_at=now_ms())
            )
        await self.changed(slug)

    async def delete_lesson(self, slug: str, number: int) -> None:
        """Rules 1-2. Learners keep what they completed (progress is by lesson id)."""
        now = now_ms()
        async with self.db.write() as conn:
            course = await _locked_course(conn, slug)
            done = await conn.execute(
                course_lessons.delete().where(
                    course_lessons.c.course_id == course.id, course_lessons.c.position == number
                )
            )
            if done.rowcount == 0:
                raise not_found("lesson")
            await _shift(conn, course.id, number + 1, -1)
            await _set_count(conn, course.id, int(course.lesson_count) - 1, now)
        await self.changed(slug)

    # -- the starter catalog (rule 5) -------------------------------------------

    async def seed(
        self, starter: Sequence[StarterCourse], starter_plans: Iterable[Plan], *, replace: bool
    ) -> dict[str, int]:
        now = now_ms()
        added = replaced = 0
        async with self.db.write() as conn:
            existing = {
                row.slug for row in await conn.execute(select(courses.c.slug, courses.c.id))
            }
            for course in starter:
                if course.slug in existing and not replace:
                    continue
                if course.slug in existing:
                    await conn.execute(courses.delete().where(courses.c.slug == course.slug))
                    replaced += 1
                else:
                    added += 1
                # Lessons left by a course row deleted by hand go too (their ids come back).
                await conn.execute(
                    course_lessons.delete().where(course_lessons.c.course_id == course.id)
                )
                await conn.execute(courses.insert(), [starter_course_row(course, now)])
                await conn.execute(course_lessons.insert(), starter_lesson_rows(course, now))
            known_plans = {row.id for row in await conn.execute(select(plans.c.id))}
            fresh = [
                plan_row(p, i, now) for i, p in enumerate(starter_plans) if p.id not in known_plans
            ]
            if fresh:
                await conn.execute(plans.insert(), fresh)
        await self.changed(*(course.slug for course in starter))
        return {"added": added, "replaced": replaced, "plans": len(fresh)}


def starter_course_row(course: StarterCourse, now: int) -> dict[str, Any]:
    return {
        "id": course.id, "slug": course.slug, "title": course.title,
        "description": course.description, "language": course.language, "level": course.level,
        "tags": encode_tags(course.tags), "cover_color": course.cover_color, "cover_url": "",
        "premium": int(course.premium), "published": 1, "position": course.position,
        "lesson_count": len(course.lessons), "created_by": "", "created_at": now,
        "updated_at": now,
    }  # fmt: skip


def starter_lesson_rows(course: StarterCourse, now: int) -> list[dict[str, Any]]:
    return [
        {"id": lesson_id(course.slug, number), "course_id": course.id, "position": number,
         "created_at": now, "updated_at": now,
         **lesson_row({"title": lesson.title, "instructions": lesson.instructions,
                       "source": lesson.source, "goal": lesson.goal})}
        for number, lesson in enumerate(course.lessons, start=1)
    ]  # fmt: skip


def plan_row(plan: Plan, position: int, now: int) -> dict[str, Any]:
    return {
        "id": plan.id, "name": plan.name, "description": plan.description,
        "price_cents": plan.price_cents, "currency": plan.currency, "interval": plan.interval,
        "interval_count": plan.interval_count, "active": int(plan.active),
        "position": position, "created_at": now,
    }  # fmt: skip


def _slug_taken() -> AppError:
    return AppError(ErrorCode.CONFLICT, "slug is taken", fields={"slug": "taken"})


async def _locked_course(conn: AsyncConnection, slug: str) -> Any:
    row = (
        await conn.execute(select(courses).where(courses.c.slug == slug).with_for_update())
    ).first()
    if row is None:
        raise not_found("course")
    return row


async def _shift(conn: AsyncConnection, course_id: str, start: int, by: int) -> None:
    """Move the lessons numbered ``start`` and above by ``by``."""
    c = course_lessons.c
    await conn.execute(
        update(course_lessons)
        .where(c.course_id == course_id, c.position >= start)
        .values(position=c.position + by)
    )


async def _set_count(conn: AsyncConnection, course_id: str, count: int, now: int) -> None:
    await conn.execute(
        update(courses).where(courses.c.id == course_id).values(lesson_count=count, updated_at=now)
    )
