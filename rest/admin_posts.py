"""Staff editing of blog posts (roles ``editor`` and ``admin``), audited.

Drafts and scheduled posts are seen here only. Posts are addressed by id
(stable while the slug changes). Every change is in the audit log
(``post.create``, ``post.update``, ``post.publish``, ``post.unpublish``,
``post.delete``) with the editor as actor, the address and what changed.
"""

from __future__ import annotations

import re
from typing import Annotated

import msgspec
from starlette.requests import Request

from rest.blog import PostBase
from rest.context import paging, platform_of, staff_audit
from rest.routing import Answer, Api
from typogram.blog import model
from typogram.blog.editing import STATUSES
from typogram.blog.markdown import MAX_MARKDOWN_CHARS, render
from typogram.blog.posts import MAX_PAGE
from typogram.blog.services import editor_of
from typogram.codes import ErrorCode
from typogram.errors import AppError
from typogram.roles import EDITORS
from typogram.tokens import Claims

api = Api()
_POST_ID = re.compile(r"\A[0-9a-f]{32}\Z")


class StaffPostSummary(PostBase, kw_only=True):
    status: str
    published_at: int | None


class StaffPost(StaffPostSummary, kw_only=True):
    is_published: bool
    body_markdown: str
    html: str
    excerpt_given: bool
    old_slugs: list[str]
    created_at: int


class StaffPosts(msgspec.Struct):
    posts: list[StaffPostSummary]
    next_cursor: str | None


class PreviewBody(msgspec.Struct, forbid_unknown_fields=True):
    body_markdown: Annotated[str, msgspec.Meta(max_length=MAX_MARKDOWN_CHARS)]


class Preview(msgspec.Struct):
    html: str
    text: str


class Deleted(msgspec.Struct):
    deleted: bool


def _check(fields: dict[str, object]) -> None:
    problems = model.post_problems(fields)
    if problems:
        raise AppError(ErrorCode.BAD_REQUEST, "invalid fields", fields=problems)


def _post_id(request: Request) -> str:
    post_id = request.path_params["post_id"]
    if not _POST_ID.match(post_id):
        raise AppError(ErrorCode.NOT_FOUND, "no such post")
    return str(post_id)


@api.route(
    "GET",
    "/api/v1/admin/posts",
    summary="Every post, drafts and scheduled ones included, last changed first (editors)",
    tag="admin",
    response=StaffPosts,
    auth="user",
    roles=EDITORS,
    errors=(400, 401, 403),
    query={
        "status": "draft, scheduled or published",
        "q": "words to find (one page of the best matches)",
        "limit": f"1-{MAX_PAGE}",
        "cursor": "next_cursor",
    },
)
async def staff_posts(request: Request, claims: Claims) -> Answer:
    status = request.query_params.get("status") or None
    if status is not None and status not in STATUSES:
        raise AppError(
            ErrorCode.BAD_REQUEST, "invalid status", fields={"status": ", ".join(STATUSES)}
        )
    limit, cursor = paging(request, max_page=MAX_PAGE)
    query = request.query_params.get("q") or None
    posts = await editor_of(platform_of(request)).list_all(
        status=status, query=query, cursor=cursor, limit=limit
    )
    return Answer(posts)


@api.route(
    "POST",
    "/api/v1/admin/posts",
    summary="Write a post: a draft unless publish_at is given (editors)",
    tag="admin",
    body=model.PostFields,
    response=StaffPost,
    status=201,
    auth="user",
    roles=EDITORS,
    errors=(400, 401, 403, 409, 413),
)
async def create_post(request: Request, body: model.PostFields, claims: Claims) -> Answer:
    _check(model.set_fields(body))
    editor = editor_of(platform_of(request))
    post_id = await editor.create(body, claims.subject)
    post = await editor.view(post_id)
    await staff_audit(
        request,
        claims,
        "post.create",
        {"post": post_id, "slug": post["slug"], "publish_at": body.publish_at},
    )
    return Answer(post, 201)


@api.route(
    "GET",
    "/api/v1/admin/posts/{post_id}",
    summary="A post as staff edit it, draft or not (editors)",
    tag="admin",
    response=StaffPost,
    auth="user",
    roles=EDITORS,
    errors=(401, 403, 404),
)
async def staff_post(request: Request, claims: Claims) -> Answer:
    return Answer(await editor_of(platform_of(request)).view(_post_id(request)))


@api.route(
    "PATCH",
    "/api/v1/admin/posts/{post_id}",
    summary="Change a post; a new slug leaves a redirect from the old one (editors)",
    tag="admin",
    body=model.PostPatch,
    response=StaffPost,
    auth="user",
    roles=EDITORS,
    errors=(400, 401, 403, 404, 409, 413),
)
async def update_post(request: Request, body: model.PostPatch, claims: Claims) -> Answer:
    post_id = _post_id(request)
    fields = model.set_fields(body)
    _check(fields)
    editor = editor_of(platform_of(request))
    if fields:
        await editor.update(post_id, fields)
    post = await editor.view(post_id)
    await staff_audit(request, claims, "post.update", {"post": post_id, "fields": sorted(fields)})
    return Answer(post)


@api.route(
    "DELETE",
    "/api/v1/admin/posts/{post_id}",
    summary="Delete a post (its old slugs become free) (editors)",
    tag="admin",
    response=Deleted,
    auth="user",
    roles=EDITORS,
    errors=(401, 403, 404),
)
async def delete_post(request: Request, claims: Claims) -> Answer:
    post_id = _post_id(request)
    slug = await editor_of(platform_of(request)).delete(post_id)
    await staff_audit(request, claims, "post.delete", {"post": post_id, "slug": slug})
    return Answer({"deleted": True})


@api.route(
    "POST",
    "/api/v1/admin/posts/{post_id}/publish",
    summary="Publish now, keep an earlier publication time, or schedule with at (editors)",
    tag="admin",
    body=model.PublishBody,
    response=StaffPost,
    auth="user",
    roles=EDITORS,
    errors=(400, 401, 403, 404),
)
async def publish_post(request: Request, body: model.PublishBody, claims: Claims) -> Answer:
    post_id = _post_id(request)
    editor = editor_of(platform_of(request))
    await editor.publish(post_id, body.at)
    post = await editor.view(post_id)
    detail = {"post": post_id, "published_at": post["published_at"], "status": post["status"]}
    await staff_audit(request, claims, "post.publish", detail)
    return Answer(post)


@api.route(
    "POST",
    "/api/v1/admin/posts/{post_id}/unpublish",
    summary="Take a post down (a draft again; its publication time is kept) (editors)",
    tag="admin",
    response=StaffPost,
    auth="user",
    roles=EDITORS,
    errors=(401, 403, 404),
)
async def unpublish_post(request: Request, claims: Claims) -> Answer:
    post_id = _post_id(request)
    editor = editor_of(platform_of(request))
    await editor.unpublish(post_id)
    await staff_audit(request, claims, "post.unpublish", {"post": post_id})
    return Answer(await editor.view(post_id))


@api.route(
    "GET",
    "/api/v1/admin/posts/{post_id}/preview",
    summary="A post's body as its page will show it (editors)",
    tag="admin",
    response=Preview,
    auth="user",
    roles=EDITORS,
    errors=(401, 403, 404),
)
async def preview_post(request: Request, claims: Claims) -> Answer:
    post = await editor_of(platform_of(request)).view(_post_id(request))
    rendered = render(post["body_markdown"])
    return Answer({"html": rendered.html, "text": rendered.text})


@api.route(
    "POST",
    "/api/v1/admin/posts/preview",
    summary="Render Markdown as a post's page would, without saving (editors)",
    tag="admin",
    body=PreviewBody,
    response=Preview,
    auth="user",
    roles=EDITORS,
    errors=(400, 401, 403, 413),
)
async def preview_markdown(request: Request, body: PreviewBody, claims: Claims) -> Answer:
    rendered = render(body.body_markdown)
    return Answer({"html": rendered.html, "text": rendered.text})
