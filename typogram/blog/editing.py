"""Staff changes to posts: create, edit, publish, unpublish, delete; the staff's views.

Rules (the model's rules are in ``typogram.blog.model``):

1. Markdown is rendered and sanitised once, when it is written
   (``typogram.blog.markdown``); the stored HTML is what pages show and the
   stored plain text is what search indexes.
2. Slugs are unique among posts and old slugs (409 naming ``slug`` on a
   clash); a post's edits lock its row first (a locking read), so two
   concurrent slug changes of one post take turns and every old slug keeps
   its redirect.
3. Every change makes the cached blog stale at once (a fresh version token,
   ``typogram.cache_aside``) and drops the entries it knows by name.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from typogram import cache_aside, keys
from typogram.blog.markdown import excerpt_of, render
from typogram.blog.model import EXCERPT_CHARS, PostFields, is_public, publication_time
from typogram.blog.posts import SUMMARY_COLUMNS, summary
from typogram.codes import ErrorCode
from typogram.cursors import decode_cursor, encode_cursor
from typogram.db.database import Database
from typogram.db.schema import blog_post_tags, blog_posts, blog_slug_redirects, users
from typogram.errors import AppError
from typogram.ports import Cache, Search
from typogram.search import POSTS
from typogram.slugs import encode_tags, slugify

p = blog_posts.c
DERIVED_SLUG_TRIES = 50
STATUSES = ("draft", "scheduled", "published")


def now_ms() -> int:
    return int(time.time() * 1000)


def not_found() -> AppError:
    return AppError(ErrorCode.NOT_FOUND, "no such post")


def slug_taken() -> AppError:
    return AppError(
        ErrorCode.CONFLICT, "slug already used by a post or an old link", fields={"slug": "taken"}
    )


def status_of(is_published: bool, published_at: int | None, now: int) -> str:
    if not is_published:
        return "draft"
    return "published" if is_public(is_published, published_at, now) else "scheduled"


def _body_columns(markdown: str) -> dict[str, str]:
    rendered = render(markdown)
    return {"body_markdown": markdown, "body_html": rendered.html, "body_text": rendered.text}


class BlogEditor:
    def __init__(
        self,
        db: Database,
        cache: Cache,
        search: Search,
        *,
        ttl_s: float,
        max_hits: int = 200,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.db = db
        self.cache = cache
        self.search = search
        self.ttl_s = ttl_s
        self.max_hits = max_hits
        self.clock = clock

    # -- writes --------------------------------------------------------------

    async def create(self, fields: PostFields, author_id: str) -> str:
        """A new post (a draft unless ``publish_at``); its id. 409 on a taken slug."""
        now = self.clock()
        post_id = uuid.uuid4().hex
        body = _body_columns(fields.body_markdown)
        row: dict[str, Any] = {
            "id": post_id,
            "title": fields.title.strip(),
            "excerpt": fields.excerpt or excerpt_of(body["body_text"], EXCERPT_CHARS),
            "excerpt_given": int(fields.excerpt is not None),
            **body,
            "cover_url": fields.cover_url or "",
            "tags": encode_tags(fields.tags),
            "language": fields.language,
            "author_id": author_id,
            "is_published": int(fields.publish_at is not None),
            "published_at": fields.publish_at,
            "created_at": now,
            "updated_at": now,
        }
        try:
            async with self.db.write() as conn:
                row["slug"] = await self._free_slug(conn, fields.slug, fields.title, post_id)
                await conn.execute(blog_posts.insert().values(**row))
                await self._set_tags(conn, post_id, fields.tags)
        except IntegrityError as exc:  # lost a race for the slug
            raise slug_taken() from exc
        await self._changed(row["slug"])
        return post_id

    async def update(self, post_id: str, fields: dict[str, Any]) -> None:
        """Change the fields given (``PostPatch``); 404, or 409 on a taken slug."""
        now = self.clock()
        try:
            async with self.db.write() as conn:
                current = await self._locked(conn, post_id)
                values: dict[str, Any] = {"updated_at": now}
                if "title" in fields:
                    values["title"] = fields["title"].strip()
                if "body_markdown" in fields:
                    values.update(_body_columns(fields["body_markdown"]))
                if "excerpt" in fields:
                    values["excerpt_given"] = int(fields["excerpt"] is not None)
                    if fields["excerpt"] is not None:
                        values["excerpt"] = fields["excerpt"]
                given = values.get("excerpt_given", current.excerpt_given)
                if not given and ("body_text" in values or "excerpt" in fields):
                    text = values.get("body_text", current.body_text)
                    values["excerpt"] = excerpt_of(text, EXCERPT_CHARS)
                for name in ("language", "cover_url"):
                    if name in fields:
                        values[name] = fields[name] or ""
                if "tags" in fields:
                    values["tags"] = encode_tags(fields["tags"])
                    await self._set_tags(conn, post_id, fields["tags"])
                if "publish_at" in fields:
                    values.update(is_published=1, published_at=fields["publish_at"])
                new_slug = fields.get("slug")
                if new_slug is not None and new_slug != current.slug:
                    await self._move_slug(conn, post_id, current.slug, new_slug, now)
                    values["slug"] = new_slug
                await conn.execute(update(blog_posts).where(p.id == post_id).values(**values))
        except IntegrityError as exc:
            raise slug_taken() from exc
        await self._changed(current.slug, fields.get("slug"))

    async def publish(self, post_id: str, at: int | None) -> None:
        """Model rule 3; 404 for an unknown post."""
        now = self.clock()
        async with self.db.write() as conn:
            current = await self._locked(conn, post_id)
            when = publication_time(at, current.published_at, now)
            await conn.execute(
                update(blog_posts)
                .where(p.id == post_id)
                .values(is_published=1, published_at=when, updated_at=now)
            )
        await self._changed(current.slug)

    async def unpublish(self, post_id: str) -> None:
        async with self.db.write() as conn:
            current = await self._locked(conn, post_id)
            await conn.execute(
                update(blog_posts)
                .where(p.id == post_id)
                .values(is_published=0, updated_at=self.clock())
            )
        await self._changed(current.slug)

    async def delete(self, post_id: str) -> str:
        """Delete a post with its tags and old slugs (they become free); its slug."""
        async with self.db.write() as conn:
            current = await self._locked(conn, post_id)
            await conn.execute(delete(blog_post_tags).where(blog_post_tags.c.post_id == post_id))
            await conn.execute(
                delete(blog_slug_redirects).where(blog_slug_redirects.c.post_id == post_id)
            )
            await conn.execute(delete(blog_posts).where(p.id == post_id))
        await self._changed(current.slug)
        return str(current.slug)

    # -- helpers of the writes -----------------------------------------------

    @staticmethod
    async def _locked(conn: AsyncConnection, post_id: str) -> Any:
        statement = select(blog_posts).where(p.id == post_id).with_for_update()
        row = (await conn.execute(statement)).first()
        if row is None:
            raise not_found()
        return row

    @staticmethod
    async def _taken(conn: AsyncConnection, slug: str, post_id: str) -> bool:
        post = select(p.id).where(p.slug == slug, p.id != post_id)
        old = select(blog_slug_redirects.c.post_id).where(
            blog_slug_redirects.c.slug == slug, blog_slug_redirects.c.post_id != post_id
        )
        return (await conn.execute(post.union_all(old).limit(1))).first() is not None

    async def _free_slug(
        self, conn: AsyncConnection, wanted: str | None, title: str, post_id: str
    ) -> str:
        if wanted is not None:
            if await self._taken(conn, wanted, post_id):
                raise slug_taken()
            return wanted
        base = slugify(title, max_chars=56) or f"post-{post_id[:8]}"
        for n in range(1, DERIVED_SLUG_TRIES + 1):
            candidate = base if n == 1 else f"{base}-{n}"
            if not await self._taken(conn, candidate, post_id):
                return candidate
        return f"{base[:47]}-{post_id[:8]}"

    async def _move_slug(
        self, conn: AsyncConnection, post_id: str, old: str, new: str, now: int
    ) -> None:
        if await self._taken(conn, new, post_id):
            raise slug_taken()
        redirects = blog_slug_redirects.c
        # Back to an old slug of its own: that slug stops being a redirect.
        await conn.execute(
            delete(blog_slug_redirects).where(redirects.slug == new, redirects.post_id == post_id)
        )
        await conn.execute(blog_slug_redirects.insert().values(slug=old, post_id=post_id,
                                                               created_at=now))  # fmt: skip

    @staticmethod
    async def _set_tags(conn: AsyncConnection, post_id: str, tags: list[str]) -> None:
        await conn.execute(delete(blog_post_tags).where(blog_post_tags.c.post_id == post_id))
        unique = list(dict.fromkeys(tags))
        if unique:
            await conn.execute(
                blog_post_tags.insert(), [{"tag": tag, "post_id": post_id} for tag in unique]
            )

    async def _changed(self, *slugs: str | None) -> None:
        """Rule 3."""
        named = [keys.blog_post(slug) for slug in slugs if slug]
        await cache_aside.invalidate(
            self.cache,
            keys.blog_version(),
            *named,
            keys.blog_feed(),
            keys.blog_sitemap(),
            ttl=self.ttl_s,
        )

    # -- what staff see ------------------------------------------------------

    async def view(self, post_id: str) -> dict[str, Any]:
        """The post as staff edit it, draft or not, from the primary; 404 when unknown."""
        statement = (
            select(*SUMMARY_COLUMNS, p.body_markdown, p.body_html, p.is_published, p.created_at,
                   p.excerpt_given)
            .select_from(blog_posts.outerjoin(users, users.c.id == p.author_id))
            .where(p.id == post_id)
        )  # fmt: skip
        async with self.db.read(primary=True) as conn:
            row = (await conn.execute(statement)).first()
            if row is None:
                raise not_found()
            old = await conn.execute(
                select(blog_slug_redirects.c.slug)
                .where(blog_slug_redirects.c.post_id == post_id)
                .order_by(blog_slug_redirects.c.created_at)
            )
            old_slugs = [slug for (slug,) in old]
        return {
            **summary(row),
            "status": status_of(bool(row.is_published), row.published_at, self.clock()),
            "is_published": bool(row.is_published),
            "body_markdown": row.body_markdown,
            "html": row.body_html,
            "excerpt_given": bool(row.excerpt_given),
            "old_slugs": old_slugs,
            "created_at": row.created_at,
        }

    async def list_all(
        self, *, status: str | None, query: str | None, cursor: str | None, limit: int
    ) -> dict[str, Any]:
        """Every post, drafts included, last changed first (keyset-paged); with ``query``,
        the best matches of the search port instead (one page)."""
        now = self.clock()
        statement = select(*SUMMARY_COLUMNS, p.is_published).select_from(
            blog_posts.outerjoin(users, users.c.id == p.author_id)
        )
        if status == "draft":
            statement = statement.where(p.is_published == 0)
        elif status == "scheduled":
            statement = statement.where(p.is_published == 1, p.published_at > now)
        elif status == "published":
            statement = statement.where(p.is_published == 1, p.published_at <= now)
        scores: dict[str, float] = {}
        if query is not None:
            hits = await self.search.search(POSTS, query, limit=min(self.max_hits, limit))
            scores = {hit.key: hit.score for hit in hits}
            statement = statement.where(p.id.in_(scores))
        elif cursor is not None:
            at, post_id = decode_cursor(cursor, "u")
            statement = statement.where(
                or_(p.updated_at < at, and_(p.updated_at == int(at), p.id < post_id))
            )
        statement = statement.order_by(p.updated_at.desc(), p.id.desc()).limit(limit + 1)
        async with self.db.read(primary=True) as conn:
            rows = list((await conn.execute(statement)).all())
        if query is not None:
            rows.sort(key=lambda row: (-scores[row.id], row.id))
        more = len(rows) > limit and query is None
        rows = rows[:limit]
        following = encode_cursor("u", rows[-1].updated_at, rows[-1].id) if more else None
        posts = [
            {**summary(row), "status": status_of(bool(row.is_published), row.published_at, now)}
            for row in rows
        ]
        return {"posts": posts, "next_cursor": following}
