"""The public blog API: lists by tag, one post, search (``typogram.blog.posts``).

Only public posts are seen here (published, and their time has come). A
post's old slug answers ``301`` with ``Location`` naming the current one
(``{"moved_to": slug}`` in the body for clients that do not follow).
"""

from __future__ import annotations

import msgspec
from starlette.requests import Request

from rest.context import paging
from rest.routing import Answer, Api
from typogram.blog.posts import MAX_PAGE, BlogReader
from typogram.codes import ErrorCode
from typogram.errors import AppError
from typogram.search import MAX_QUERY_CHARS
from typogram.slugs import TAG

api = Api()


class PostAuthor(msgspec.Struct):
    id: str
    username: str | None
    name: str | None


class PostBase(msgspec.Struct, kw_only=True):
    """What every view of a post shows, public or staff."""

    id: str
    slug: str
    title: str
    excerpt: str
    cover_url: str | None
    tags: list[str]
    language: str
    author: PostAuthor
    updated_at: int


class PostSummary(PostBase, kw_only=True):
    published_at: int


class PostList(msgspec.Struct):
    posts: list[PostSummary]
    next_cursor: str | None


class Post(PostSummary, kw_only=True):
    html: str


class FoundPost(PostSummary, kw_only=True):
    score: float


class FoundPosts(msgspec.Struct):
    posts: list[FoundPost]
    next_cursor: str | None


def reader(request: Request) -> BlogReader:
    """This process's reader (one per app: it shares builds between requests)."""
    blog: BlogReader = request.app.state.blog_reader
    return blog


def _tag(request: Request) -> str | None:
    tag = request.query_params.get("tag") or None
    if tag is not None and not TAG.match(tag):
        raise AppError(ErrorCode.BAD_REQUEST, "invalid tag", fields={"tag": "1-32 of a-z 0-9 -"})
    return tag


@api.route(
    "GET",
    "/api/v1/blog/posts",
    summary="Published posts, newest first, keyset-paged, optionally one tag's",
    tag="blog",
    response=PostList,
    errors=(400,),
    query={
        "tag": "only posts with this tag",
        "limit": f"1-{MAX_PAGE}, default 10",
        "cursor": "next_cursor of the previous page",
    },
)
async def list_posts(request: Request) -> Answer:
    tag = _tag(request)
    limit, cursor = paging(request, max_page=MAX_PAGE, default=10)
    page = await reader(request).page(tag=tag, cursor=cursor, limit=limit)
    return Answer(page)


@api.route(
    "GET",
    "/api/v1/blog/posts/{slug}",
    summary="One published post with its HTML; an old slug answers 301 to the current one",
    tag="blog",
    response=Post,
    errors=(404,),
)
async def get_post(request: Request) -> Answer:
    slug = request.path_params["slug"]
    found = await reader(request).post(slug)
    if "redirect" in found:
        moved = found["redirect"]
        return Answer({"moved_to": moved}, 301, {"Location": f"/api/v1/blog/posts/{moved}"})
    if found["post"] is None:
        raise AppError(ErrorCode.NOT_FOUND, "no such post")
    return Answer(found["post"])


@api.route(
    "GET",
    "/api/v1/blog/search",
    summary="Published posts matching q, best first (any q is accepted, never an error)",
    tag="blog",
    response=FoundPosts,
    errors=(400,),
    query={
        "q": f"words to find in titles and bodies (first {MAX_QUERY_CHARS} characters)",
        "limit": f"1-{MAX_PAGE}, default 10",
        "cursor": "next_cursor of the previous page",
    },
)
async def search_posts(request: Request) -> Answer:
    q = request.query_params.get("q")
    if q is None:
        raise AppError(ErrorCode.BAD_REQUEST, "q is required", fields={"q": "required"})
    limit, cursor = paging(request, max_page=MAX_PAGE, default=10)
    found = await reader(request).search(q, cursor=cursor, limit=limit)
    return Answer(found)
