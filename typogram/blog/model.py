"""Blog posts as data, and the pure rules of publishing them.

Rules:

1. A post is public when it is published and its ``published_at`` has come
   (``is_public``). A draft is never public; a scheduled post (published,
   ``published_at`` in the future) appears at its time with nobody acting.
2. A new post is a draft unless ``publish_at`` is given: then it is
   published at that time, past (back-dated) or future (scheduled).
3. ``publish`` without a time keeps an earlier publication time that has
   passed (re-publishing after a fix keeps the post's place in the feed)
   and otherwise publishes now (``publication_time``). ``unpublish`` makes
   it a draft again and keeps ``published_at`` for a later publish.
4. A slug (``typogram.slugs``) is unique among posts and the old slugs that
   redirect: an old link never leads to another post. Changing a slug
   leaves a redirect from the old one; changing it back removes that.
   Without a slug, one is made from the title (``-2``, ``-3``… on a clash).
5. The excerpt is the one given, or the start of the body's text
   (``EXCERPT_CHARS``, cut at a word).
6. Titles are 1-200 characters with something visible; the body at most
   ``MAX_MARKDOWN_CHARS``; the cover an ``https://`` URL or nothing; the
   language one the platform knows; at most ``MAX_TAGS`` tags.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

import msgspec

from typogram.blog.markdown import MAX_MARKDOWN_CHARS
from typogram.slugs import MAX_TAGS, slug_problem, tags_problem
from typogram.texts import LANGUAGES

EXCERPT_CHARS: Final = 240
MAX_EXCERPT_CHARS: Final = 500
MAX_TITLE_CHARS: Final = 200
# Epoch milliseconds up to the year 9999: a time any database column and client can hold.
MAX_TIME_MS: Final = 253_402_300_799_999

Title = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TITLE_CHARS)]
Body = Annotated[str, msgspec.Meta(max_length=MAX_MARKDOWN_CHARS)]
Excerpt = Annotated[str, msgspec.Meta(max_length=MAX_EXCERPT_CHARS)]
Tags = Annotated[list[str], msgspec.Meta(max_length=MAX_TAGS)]
Url = Annotated[str, msgspec.Meta(max_length=500)]
Slug = Annotated[str, msgspec.Meta(max_length=64)]
Language = Annotated[str, msgspec.Meta(max_length=8)]
Time = Annotated[int, msgspec.Meta(ge=0, le=MAX_TIME_MS)]
Unset = msgspec.UnsetType
UNSET = msgspec.UNSET


class PostFields(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/v1/admin/posts``: a draft unless ``publish_at`` (epoch ms) is given."""

    title: Title
    body_markdown: Body
    slug: Slug | None = None
    excerpt: Excerpt | None = None
    tags: Tags = msgspec.field(default_factory=list)
    language: Language = "en"
    cover_url: Url | None = None
    publish_at: Time | None = None


class PostPatch(msgspec.Struct, forbid_unknown_fields=True):
    """``PATCH /api/v1/admin/posts/{id}``: the fields to change; ``publish_at`` publishes
    (or reschedules) at that time; ``excerpt: null`` goes back to the body's start."""

    title: Title | Unset = UNSET
    body_markdown: Body | Unset = UNSET
    slug: Slug | Unset = UNSET
    excerpt: Excerpt | Unset | None = UNSET
    tags: Tags | Unset = UNSET
    language: Language | Unset = UNSET
    cover_url: Url | Unset | None = UNSET
    publish_at: Time | Unset = UNSET


class PublishBody(msgspec.Struct, forbid_unknown_fields=True):
    """``POST …/publish``: ``at`` (epoch ms) schedules; without it, rule 3."""

    at: Time | None = None


def set_fields(patch: msgspec.Struct) -> dict[str, Any]:
    """The fields a patch or body sets (``UNSET`` left out)."""
    return {k: v for k, v in msgspec.structs.asdict(patch).items() if v is not UNSET}


def is_public(is_published: bool, published_at: int | None, now_ms: int) -> bool:
    """Rule 1."""
    return is_published and published_at is not None and published_at <= now_ms


def publication_time(at: int | None, previous: int | None, now_ms: int) -> int:
    """Rule 3: when a post being published is published."""
    if at is not None:
        return at
    if previous is not None and previous <= now_ms:
        return previous
    return now_ms


def post_problems(fields: dict[str, Any]) -> dict[str, str]:
    """Rule 6 (and the slug and tag rules): field -> what is wrong; empty when all is fine."""
    problems: dict[str, str] = {}
    if "title" in fields and not fields["title"].strip():
        problems["title"] = "must hold something visible"
    if fields.get("slug") is not None and (problem := slug_problem(fields["slug"])):
        problems["slug"] = problem
    if "tags" in fields and (problem := tags_problem(fields["tags"])):
        problems["tags"] = problem
    if "language" in fields and fields["language"] not in LANGUAGES:
        problems["language"] = "must be one of " + ", ".join(LANGUAGES)
    url = fields.get("cover_url")
    if url and (not url.startswith("https://") or any(ch.isspace() for ch in url)):
        problems["cover_url"] = "an https:// URL without spaces, or null"
    return problems
