"""Staff editing of courses and lessons (roles ``editor`` and ``admin``), audited.

Drafts (``published: false``) are seen here only; the public catalog and
course pages never show them. Lessons are addressed by their number in the
course (``typogram.courses.editing`` keeps numbers 1..n without gaps), so a
lesson id from another course cannot be reached through this one. Every
change is written to the audit log with who made it, from where, and what.
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request

from rest.context import platform_of, staff_audit
from rest.courses import CourseSummary, lesson_number, slug_of
from rest.routing import Answer, Api
from typogram.codes import ErrorCode
from typogram.courses import model
from typogram.courses.services import catalog_of, editor_of
from typogram.errors import AppError
from typogram.roles import EDITORS
from typogram.tokens import Claims

api = Api()


class StaffCourse(msgspec.Struct):
    slug: str
    title: str
    published: bool
    premium: bool
    language: str
    level: str
    lesson_count: int
    position: int
    updated_at: int


class StaffCourses(msgspec.Struct):
    courses: list[StaffCourse]


class StaffCourseDetail(CourseSummary, kw_only=True):
    published: bool
    position: int
    lessons: list[dict[str, Any]]
    created_at: int
    updated_at: int


class Deleted(msgspec.Struct):
    deleted: bool


def _check(problems: dict[str, str]) -> None:
    if problems:
        raise AppError(ErrorCode.BAD_REQUEST, "invalid fields", fields=problems)


async def _staff_view(request: Request, slug: str) -> dict[str, Any]:
    doc = await catalog_of(platform_of(request)).load(
        slug, published_only=False, full=True, primary=True
    )
    if doc is None:
        raise AppError(ErrorCode.NOT_FOUND, "no such course")
    return doc


@api.route(
    "GET",
    "/api/v1/admin/courses",
    summary="Every course, drafts included (editors)",
    tag="admin",
    response=StaffCourses,
    auth="user",
    roles=EDITORS,
    errors=(401, 403),
)
async def staff_list(request: Request, claims: Claims) -> Answer:
    return Answer({"courses": await editor_of(platform_of(request)).list_all()})


@api.route(
    "GET",
    "/api/v1/admin/courses/{slug}",
    summary="A course with its lessons' sources, draft or not (editors)",
    tag="admin",
    response=StaffCourseDetail,
    auth="user",
    roles=EDITORS,
    errors=(401, 403, 404),
)
async def staff_course(request: Request, claims: Claims) -> Answer:
    return Answer(await _staff_view(request, slug_of(request)))


@api.route(
    "POST",
    "/api/v1/admin/courses",
    summary="Create a course (a draft unless published is true) (editors)",
    tag="admin",
    body=model.CourseFields,
    response=StaffCourseDetail,
    status=201,
    auth="user",
    roles=EDITORS,
    errors=(400, 401, 403, 409),
)
async def create_course(request: Request, body: model.CourseFields, claims: Claims) -> Answer:
    fields = {name: getattr(body, name) for name in body.__struct_fields__}
    _check(model.course_problems(fields))
    course_id = await editor_of(platform_of(request)).create(body, actor=claims.subject)
    await staff_audit(request, claims, "course.create", {"course": course_id, "slug": body.slug})
    return Answer(await _staff_view(request, body.slug), 201)


@api.route(
    "PATCH",
    "/api/v1/admin/courses/{slug}",
    summary="Change a course's fields, publish or unpublish it (editors)",
    tag="admin",
    body=model.CoursePatch,
    response=StaffCourseDetail,
    auth="user",
    roles=EDITORS,
    errors=(400, 401, 403, 404, 409),
)
async def update_course(request: Request, body: model.CoursePatch, claims: Claims) -> Answer:
    fields = model.set_fields(body)
    _check(model.course_problems(fields))
    slug = slug_of(request)
    new_slug = await editor_of(platform_of(request)).update(slug, fields) if fields else slug
    await staff_audit(request, claims, "course.update", {"slug": slug, "fields": sorted(fields)})
    return Answer(await _staff_view(request, new_slug))


@api.route(
    "DELETE",
    "/api/v1/admin/courses/{slug}",
    summary="Delete a course without learners (editors)",
    tag="admin",
    response=Deleted,
    auth="user",
    roles=EDITORS,
    errors=(401, 403, 404, 409),
)
async def delete_course(request: Request, claims: Claims) -> Answer:
    slug = slug_of(request)
    await editor_of(platform_of(request)).delete(slug)
    await staff_audit(request, claims, "course.delete", {"slug": slug})
    return Answer({"deleted": True})


@api.route(
    "POST",
    "/api/v1/admin/courses/{slug}/lessons",
    summary="Add a lesson (at number, default last) (editors)",
    tag="admin",
    body=model.LessonFields,
    response=StaffCourseDetail,
    status=201,
    auth="user",
    roles=EDITORS,
    errors=(400, 401, 403, 404, 409),
)
async def add_lesson(request: Request, body: model.LessonFields, claims: Claims) -> Answer:
    _check(model.lesson_problems({"source": body.source}))
    slug = slug_of(request)
    number = await editor_of(platform_of(request)).add_lesson(slug, body)
    await staff_audit(request, claims, "lesson.create", {"slug": slug, "number": number})
    return Answer(await _staff_view(request, slug), 201)


async def _numbered(request: Request) -> tuple[str, int]:
    slug = slug_of(request)
    doc = await _staff_view(request, slug)
    return slug, lesson_number(request.path_params["number"], doc["lessons"])


@api.route(
    "PATCH",
    "/api/v1/admin/courses/{slug}/lessons/{number}",
    summary="Change a lesson (editors)",
    tag="admin",
    body=model.LessonPatch,
    response=StaffCourseDetail,
    auth="user",
    roles=EDITORS,
    errors=(400, 401, 403, 404),
)
async def update_lesson(request: Request, body: model.LessonPatch, claims: Claims) -> Answer:
    fields = model.set_fields(body)
    _check(model.lesson_problems(fields))
    slug, number = await _numbered(request)
    if fields:
        await editor_of(platform_of(request)).update_lesson(slug, number, fields)
    await staff_audit(
        request, claims, "lesson.update", {"slug": slug, "number": number, "fields": sorted(fields)}
    )
    return Answer(await _staff_view(request, slug))


@api.route(
    "DELETE",
    "/api/v1/admin/courses/{slug}/lessons/{number}",
    summary="Delete a lesson; later ones move up a number (editors)",
    tag="admin",
    response=StaffCourseDetail,
    auth="user",
    roles=EDITORS,
    errors=(401, 403, 404),
)
async def delete_lesson(request: Request, claims: Claims) -> Answer:
    slug, number = await _numbered(request)
    await editor_of(platform_of(request)).delete_lesson(slug, number)
    await staff_audit(request, claims, "lesson.delete", {"slug": slug, "number": number})
    return Answer(await _staff_view(request, slug))
