"""Courses for learners: the catalog, a course with the caller's progress, enrolling,
lesson tests, and the caller's courses.

A lesson test has the shape of ``GET /api/v1/tests/new`` plus ``lesson``,
and its result goes through ``POST /api/v1/results`` like any other: the
``courses`` worker completes the lesson from the ``result.accepted`` event
(``workers.courses``). Order of the checks for a lesson test: the course is
published (404), the lesson number exists (404), a premium course needs a
running subscription (402 ``subscription_required``, checked against the
clock on every request), the caller is enrolled (403 ``not_enrolled``) and
every earlier lesson is completed (403 ``lesson_locked``).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping
from typing import Any

import msgspec
from sqlalchemy import select
from starlette.requests import Request

from rest.context import authenticate, bearer_token, platform_of
from rest.insights import insights_of
from rest.routing import Answer, Api
from rest.typing_tests import NewTest, issue
from typogram.codes import ErrorCode
from typogram.courses import lesson_text, model
from typogram.courses.catalog import MAX_PAGE, CatalogQuery, public_course, summary
from typogram.courses.services import catalog_of, learning_of, subscriptions_of
from typogram.db.schema import course_lessons, courses
from typogram.errors import AppError
from typogram.platform import Platform
from typogram.slugs import SLUG, TAG
from typogram.texts import LANGUAGES
from typogram.tokens import Claims

api = Api()
MAX_ENROLMENTS = 100
_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no"}


class CourseSummary(msgspec.Struct):
    id: str
    slug: str
    title: str
    description: str
    language: str
    level: str
    tags: list[str]
    cover_color: str
    cover_url: str | None
    premium: bool
    lesson_count: int
    score: float | None = None  # relevance, with q= only


class CoursePage(msgspec.Struct):
    courses: list[CourseSummary]
    next_cursor: str | None


class GoalView(msgspec.Struct):
    wpm: float
    accuracy: float
    seconds: int | None


class LessonProgress(msgspec.Struct):
    state: str  # completed | available | locked
    attempts: int
    best_wpm: float
    best_accuracy: float
    completed_at: int | None


class LessonView(msgspec.Struct):
    number: int
    id: str
    title: str
    instructions: str
    text: dict[str, Any]
    goal: GoalView
    progress: LessonProgress | None = None


class EnrollmentView(msgspec.Struct):
    id: str
    enrolled_at: int
    last_activity_at: int
    completed_at: int | None
    expires_at: int | None


class CourseDetail(CourseSummary, kw_only=True):
    lessons: list[LessonView]
    enrollment: EnrollmentView | None = None
    access: bool | None = None  # signed in: whether the caller may take its lessons


class Enrolled(msgspec.Struct):
    course: str
    enrollment: EnrollmentView
    created: bool


class NextLesson(msgspec.Struct):
    number: int
    title: str


class MyCourse(msgspec.Struct):
    course: CourseSummary
    enrollment: EnrollmentView
    completed_lessons: int
    lesson_count: int
    progress: float
    next_lesson: NextLesson | None
    access: bool


class MyCourses(msgspec.Struct):
    courses: list[MyCourse]


class LessonRef(msgspec.Struct):
    course: str
    number: int
    id: str
    title: str
    instructions: str
    goal: GoalView


class LessonTest(NewTest, kw_only=True):
    lesson: LessonRef


def parse_query(query: Mapping[str, str]) -> CatalogQuery:
    """The catalog's query string; every bad parameter is named in one 400."""
    faults: dict[str, str] = {}
    language = query.get("language") or None
    if language is not None and (problem := model.language_problem(language)):
        faults["language"] = problem
    level = query.get("level") or None
    if level is not None and level not in model.LEVELS:
        faults["level"] = "must be one of " + ", ".join(model.LEVELS)
    tag = query.get("tag") or None
    if tag is not None and not TAG.match(tag):
        faults["tag"] = "1-32 of a-z 0-9 -"
    premium: bool | None = None
    if raw := query.get("premium", "").lower():
        if raw not in _TRUE | _FALSE:
            faults["premium"] = "must be true or false"
        premium = raw in _TRUE
    try:
        limit = int(query.get("limit", "20"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_PAGE:
        faults["limit"] = f"must be an integer between 1 and {MAX_PAGE}"
    cursor = query.get("cursor") or None
    if cursor is not None and len(cursor) > 300:
        faults["cursor"] = "invalid"
    if faults:
        raise AppError(ErrorCode.BAD_REQUEST, "invalid catalog parameters", fields=faults)
    q = query.get("q")
    return CatalogQuery(
        language=language, level=level, tag=tag, premium=premium,
        q=q if q is not None and q.strip() else None, cursor=cursor, limit=limit,
    )  # fmt: skip


@api.route(
    "GET",
    "/api/v1/courses",
    summary="Published courses: filters, full-text search (q), keyset pages",
    tag="courses",
    response=CoursePage,
    errors=(400,),
    query={
        "q": "full-text search over title and description (any text; ranked by relevance)",
        "language": "course language: " + ", ".join(LANGUAGES),
        "level": "beginner, intermediate or advanced",
        "tag": "one tag",
        "premium": "true or false",
        "limit": f"page size, 1..{MAX_PAGE} (default 20)",
        "cursor": "next_cursor of the previous page (same filters and q)",
    },
)
async def list_courses(request: Request) -> Answer:
    return Answer(await catalog_of(platform_of(request)).page(parse_query(request.query_params)))


async def optional_user(request: Request) -> Claims | None:
    """The caller when a bearer token comes with the request (guests: ``None``); a bad
    token is still 401, so a client never mistakes it for being signed out."""
    if bearer_token(request) is None:
        return None
    claims = await authenticate(request, "any")
    return None if claims.is_guest else claims


def slug_of(request: Request) -> str:
    """The path's course slug; 404 for anything no course can be called (slugs are
    lower case, so ``HOME-ROW`` is not ``home-row`` on a case-blind MySQL collation)."""
    slug: str = request.path_params["slug"]
    if not SLUG.match(slug):
        raise AppError(ErrorCode.NOT_FOUND, "no such course")
    return slug


async def published(platform: Platform, slug: str) -> dict[str, Any]:
    doc = await catalog_of(platform).course(slug)
    if doc is None:
        raise AppError(ErrorCode.NOT_FOUND, "no such course")
    return doc


async def access(platform: Platform, course: Mapping[str, Any], user_id: str) -> bool:
    return not course["premium"] or await subscriptions_of(platform).has_access(user_id)


@api.route(
    "GET",
    "/api/v1/courses/{slug}",
    summary="A published course with its lessons (and the caller's progress when signed in)",
    tag="courses",
    response=CourseDetail,
    errors=(401, 404),
)
async def course_detail(request: Request) -> Answer:
    platform = platform_of(request)
    claims = await optional_user(request)
    doc = public_course(await published(platform, slug_of(request)))
    if claims is None:
        return Answer(doc)
    learning = learning_of(platform)
    enrolment, progress, allowed = await asyncio.gather(
        learning.enrolment(claims.subject, doc["id"]),
        learning.progress(claims.subject, [doc["id"]]),
        access(platform, doc, claims.subject),
    )
    mine = progress.get(doc["id"], {})
    ids = [lesson["id"] for lesson in doc["lessons"]]
    completed = {i for i, p in mine.items() if p["completed_at"] is not None}
    for lesson, state in zip(doc["lessons"], model.lesson_states(ids, completed), strict=True):
        row = mine.get(lesson["id"], {})
        lesson["progress"] = {
            "state": state,
            "attempts": row.get("attempts", 0),
            "best_wpm": row.get("best_wpm", 0.0),
            "best_accuracy": row.get("best_accuracy", 0.0),
            "completed_at": row.get("completed_at"),
        }
    return Answer(doc | {"enrollment": enrolment, "access": allowed})


@api.route(
    "POST",
    "/api/v1/courses/{slug}/enroll",
    summary="Enrol in a course (idempotent: the same enrolment every time)",
    tag="courses",
    response=Enrolled,
    status=201,
    auth="user",
    errors=(401, 402, 404),
)
async def enroll(request: Request, claims: Claims) -> Answer:
    platform = platform_of(request)
    course = await published(platform, slug_of(request))
    expires_at = None
    if course["premium"]:
        subs = subscriptions_of(platform)
        sub = await subs.cached(claims.subject)
        if not await subs.has_access(claims.subject):
            raise _subscription_required()
        assert sub is not None, "access needs a subscription"
        expires_at = subs.access_until(sub)
    enrolment, created = await learning_of(platform).enrol(
        claims.subject, course["id"], expires_at=expires_at
    )
    body = {"course": course["slug"], "enrollment": enrolment, "created": created}
    return Answer(body, 201 if created else 200)


def _subscription_required() -> AppError:
    return AppError(
        ErrorCode.SUBSCRIPTION_REQUIRED, "this is a premium course: it needs an active subscription"
    )


def lesson_number(raw: str, lessons: list[Any]) -> int:
    """The lesson's number, or 404 for anything that is not one of the course's."""
    if not raw.isdigit() or len(raw) > 6 or not 1 <= int(raw) <= len(lessons):
        raise AppError(ErrorCode.NOT_FOUND, "no such lesson")
    return int(raw)


@api.route(
    "GET",
    "/api/v1/courses/{slug}/lessons/{number}/test",
    summary="A typing test for one lesson (submit it to POST /api/v1/results)",
    tag="courses",
    response=LessonTest,
    auth="user",
    errors=(401, 402, 403, 404),
)
async def lesson_test(request: Request, claims: Claims) -> Answer:
    platform = platform_of(request)
    course = await published(platform, slug_of(request))
    lessons = course["lessons"]
    number = lesson_number(request.path_params["number"], lessons)
    if not await access(platform, course, claims.subject):
        raise _subscription_required()
    learning = learning_of(platform)
    enrolment, progress = await asyncio.gather(
        learning.enrolment(claims.subject, course["id"]),
        learning.progress(claims.subject, [course["id"]]),
    )
    if enrolment is None:
        raise AppError(ErrorCode.NOT_ENROLLED, "enrol in the course first")
    mine = progress.get(course["id"], {})
    completed = {i for i, p in mine.items() if p["completed_at"] is not None}
    states = model.lesson_states([lesson["id"] for lesson in lessons], completed)
    if states[number - 1] == "locked":
        raise AppError(ErrorCode.LESSON_LOCKED, "complete the lessons before this one first")
    lesson = lessons[number - 1]
    body = await _issue(platform, claims, course, lesson)
    goal = model.Goal(**lesson["goal"])
    await learning.issued(body["test_id"], claims.subject, course["id"], lesson["id"], goal)
    ref = {k: lesson[k] for k in ("number", "id", "title", "instructions", "goal")}
    return Answer(body | {"lesson": {"course": course["slug"], **ref}})


async def _issue(
    platform: Platform, claims: Claims, course: Mapping[str, Any], lesson: Mapping[str, Any]
) -> dict[str, Any]:
    source = msgspec.convert(lesson["source"], type=model.Source)
    spec = lesson_text.spec_of(source, course["language"], lesson["id"])
    weak_keys: list[str] = []
    weak_bigrams: list[str] = []
    if isinstance(source, model.AdaptiveSource):
        doc = await insights_of(platform, claims.subject)
        weak_keys = [w["key"] for w in doc["weak_keys"] if w["key"].strip()]
        weak_bigrams = [w["bigram"] for w in doc["weak_bigrams"] if w["bigram"].strip()]
    seed = secrets.randbits(62)
    args = (source, spec, seed)
    kwargs: dict[str, Any] = {
        "wpm_cap": platform.settings.typing_wpm_cap,
        "weak_keys": weak_keys,
        "weak_bigrams": weak_bigrams,
    }
    if lesson_text.needs_loading(source, spec.lang):
        text = await asyncio.to_thread(lesson_text.build_text, *args, **kwargs)
    else:
        text = lesson_text.build_text(*args, **kwargs)
    return await issue(
        platform, claims.subject, spec, seed, text, stored_extra={"lesson_id": lesson["id"]}
    )


@api.route(
    "GET",
    "/api/v1/enrollments/me",
    summary="The caller's courses with progress, last activity and the next lesson",
    tag="courses",
    response=MyCourses,
    auth="user",
    errors=(401,),
)
async def my_courses(request: Request, claims: Claims) -> Answer:
    platform = platform_of(request)
    learning = learning_of(platform)
    enrolled = await learning.enrolments(claims.subject, MAX_ENROLMENTS)
    ids = [course_id for course_id, _ in enrolled]
    if not ids:
        return Answer({"courses": []})
    async with platform.db.read() as conn:
        rows = {
            row.id: row
            for row in await conn.execute(
                select(courses).where(courses.c.id.in_(ids), courses.c.published == 1)
            )
        }
        lessons: dict[str, list[Any]] = {}
        for lesson in await conn.execute(
            select(course_lessons.c.course_id, course_lessons.c.id, course_lessons.c.title)
            .where(course_lessons.c.course_id.in_(ids))
            .order_by(course_lessons.c.course_id, course_lessons.c.position)
        ):
            lessons.setdefault(lesson.course_id, []).append(lesson)
    progress = await learning.progress(claims.subject, rows)
    subscribed = await subscriptions_of(platform).has_access(claims.subject)
    out = []
    for course_id, enrolment in enrolled:
        if (row := rows.get(course_id)) is None:
            continue  # unpublished since: drafts stay out of sight
        ordered = lessons.get(course_id, [])
        done = {i for i, p in progress.get(course_id, {}).items() if p["completed_at"]}
        ids_in_order = [lesson.id for lesson in ordered]
        finished = sum(1 for i in ids_in_order if i in done)
        following = model.next_lesson(ids_in_order, done)
        out.append(
            {
                "course": summary(row),
                "enrollment": enrolment,
                "completed_lessons": finished,
                "lesson_count": len(ordered),
                "progress": round(finished / len(ordered), 4) if ordered else 0.0,
                "next_lesson": None
                if following is None
                else {"number": following, "title": ordered[following - 1].title},
                "access": subscribed or not row.premium,
            }
        )
    return Answer({"courses": out})
