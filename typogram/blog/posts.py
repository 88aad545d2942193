"""The public blog: post lists by tag, one post (or where its old slug leads), search,
the feed and the sitemap, cached.

Rules:

1. The public sees public posts only (``typogram.blog.model.is_public``): a
   draft or a post scheduled for later is "not found".
2. Lists are newest first by ``published_at`` (then id), keyset-paged on
   that pair; a tag narrows them. Search ranks public posts through the
   search port (at most ``max_hits``), by relevance, then id; a cursor
   names its order, so one of a list is refused by a search (400).
3. A slug that a post had before answers with that post's current slug
   (the caller redirects); a slug nobody has had is "not found".
4. Every answer is cache-aside under ``blog:*`` for ``ttl_s`` and stamped
   with the blog's version token: any change (``typogram.blog.editing``)
   writes a fresh token, so nothing built before it is served again
   (``typogram.cache_aside``). An entry also never outlives the next
   scheduled publication, so a scheduled post appears at its time.
5. Requests that miss the same entry at once wait for one build in this
   process (the others share its answer), so a popular page that expires
   costs one query, not one per waiting request. Keep one reader per
   process for that.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson
from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from typogram import cache_aside, keys
from typogram.cursors import decode_cursor, encode_cursor
from typogram.db.database import Database
from typogram.db.schema import blog_post_tags, blog_posts, blog_slug_redirects, users
from typogram.ports import Cache, Search
from typogram.search import POSTS, terms
from typogram.slugs import SLUG, decode_tags

MAX_PAGE = 50
p = blog_posts.c
SUMMARY_COLUMNS = (
    p.id,
    p.slug,
    p.title,
    p.excerpt,
    p.cover_url,
    p.tags,
    p.language,
    p.published_at,
    p.updated_at,
    p.author_id,
    users.c.username.label("author_username"),
    users.c.display_name.label("author_name"),
)


def now_ms() -> int:
    return int(time.time() * 1000)


def summary(row: Any) -> dict[str, Any]:
    """A public post as lists show it (no body)."""
    return {
        "id": row.id,
        "slug": row.slug,
        "title": row.title,
        "excerpt": row.excerpt,
        "cover_url": row.cover_url or None,
        "tags": decode_tags(row.tags),
        "language": row.language,
        "author": {
            "id": row.author_id,
            "username": row.author_username,
            "name": row.author_name or row.author_username,
        },
        "published_at": row.published_at,
        "updated_at": row.updated_at,
    }


def _public(at: int) -> list[Any]:
    return [p.is_published == 1, p.published_at <= at]


def _with_author(*columns: Any) -> Select[Any]:
    return select(*SUMMARY_COLUMNS, *columns).select_from(
        blog_posts.outerjoin(users, users.c.id == p.author_id)
    )


def _digest(*parts: Any) -> str:
    return hashlib.sha256(orjson.dumps(parts)).hexdigest()[:32]


class BlogReader:
    def __init__(
        self,
        db: Database,
        cache: Cache,
        search: Search,
        *,
        ttl_s: float,
        max_hits: int = 200,
        feed_entries: int = 20,
        sitemap_max: int = 50_000,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.db = db
        self.cache = cache
        self.search_port = search
        self.ttl_s = ttl_s
        self.max_hits = max_hits
        self.feed_entries = feed_entries
        self.sitemap_max = sitemap_max
        self.clock = clock
        # Rule 5: the builds under way, by cache key (an entry lives only while it runs).
        self._building: dict[str, asyncio.Future[Any]] = {}

    def statistics(self) -> dict[str, float]:
        return {"building": len(self._building)}

    async def _cached(self, key: str, build: Callable[[int], Awaitable[Any]]) -> Any:
        """Rule 4: the entry under ``key``, else ``build(now)`` stored until the sooner of
        ``ttl_s`` and the next scheduled publication."""
        cached, version = await cache_aside.read(self.cache, key, keys.blog_version())
        if cached is not None:
            return cached["value"]
        building = self._building.get(key)
        if building is not None:
            await asyncio.wait({building})  # never cancels the build it waits for
            if not building.cancelled():
                return building.result()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._building[key] = future
        try:
            value = await self._build(key, version, build)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # the waiters, if any, raise it; nobody else must
            raise
        else:
            future.set_result(value)
            return value
        finally:
            del self._building[key]

    async def _build(self, key: str, version: str, build: Callable[[int], Awaitable[Any]]) -> Any:
        now = self.clock()
        value = await build(now)
        async with self.db.read() as conn:
            upcoming = await self._next_publication(conn, now)
        ttl = self.ttl_s if upcoming is None else min(self.ttl_s, (upcoming - now) / 1000)
        if ttl > 0:
            await cache_aside.store(self.cache, key, version, {"value": value}, ttl)
        return value

    @staticmethod
    async def _next_publication(conn: AsyncConnection, now: int) -> int | None:
        statement = select(func.min(p.published_at)).where(
            p.is_published == 1, p.published_at > now
        )
        found = (await conn.execute(statement)).scalar_one_or_none()
        return None if found is None else int(found)

    # -- lists ---------------------------------------------------------------

    async def page(self, *, tag: str | None, cursor: str | None, limit: int) -> dict[str, Any]:
        """Rule 2: ``{"posts": [...], "next_cursor": …}``."""
        after = None if cursor is None else decode_cursor(cursor, "b")  # 400 before any work

        async def build(now: int) -> dict[str, Any]:
            statement = _with_author().where(*_public(now))
            if tag is not None:
                statement = statement.where(
                    p.id.in_(select(blog_post_tags.c.post_id).where(blog_post_tags.c.tag == tag))
                )
            if after is not None:
                at, post_id = int(after[0]), after[1]
                statement = statement.where(
                    or_(p.published_at < at, and_(p.published_at == at, p.id < post_id))
                )
            statement = statement.order_by(p.published_at.desc(), p.id.desc()).limit(limit + 1)
            async with self.db.read() as conn:
                rows = (await conn.execute(statement)).all()
            more = len(rows) > limit
            rows = rows[:limit]
            following = encode_cursor("b", rows[-1].published_at, rows[-1].id) if more else None
            return {"posts": [summary(row) for row in rows], "next_cursor": following}

        key = keys.blog_page(_digest("page", tag, cursor, limit))
        page: dict[str, Any] = await self._cached(key, build)
        return page

    async def search(self, query: str, *, cursor: str | None, limit: int) -> dict[str, Any]:
        """Rule 2: ``{"posts": [... with score], "next_cursor": …}``; a query without terms
        (``typogram.search``) finds nothing."""
        after = None if cursor is None else decode_cursor(cursor, "s")

        async def build(now: int) -> dict[str, Any]:
            hits = await self.search_port.search(POSTS, query, limit=self.max_hits, public_at=now)
            # The engine kept public posts only, best first: read just this page's rows.
            ranked = sorted(hits, key=lambda hit: (-hit.score, hit.key))
            if after is not None:
                score, post_id = after
                ranked = [h for h in ranked if (-h.score, h.key) > (-score, post_id)]
            chosen = ranked[:limit]
            scores = {hit.key: hit.score for hit in chosen}
            rows: Sequence[Any] = []
            if chosen:
                statement = _with_author().where(*_public(now), p.id.in_(scores))
                async with self.db.read() as conn:
                    rows = (await conn.execute(statement)).all()
            rows = sorted(rows, key=lambda row: (-scores[row.id], row.id))
            following = None
            if len(ranked) > limit:
                following = encode_cursor("s", chosen[-1].score, chosen[-1].key)
            return {
                "posts": [{**summary(r), "score": round(scores[r.id], 6)} for r in rows],
                "next_cursor": following,
            }

        key = keys.blog_search(_digest("search", terms(query), cursor, limit))
        found: dict[str, Any] = await self._cached(key, build)
        return found

    # -- one post ------------------------------------------------------------

    async def post(self, slug: str) -> dict[str, Any]:
        """Rules 1 and 3: ``{"post": {... with html}}``, ``{"redirect": slug}`` or
        ``{"post": None}``."""
        if not SLUG.match(slug):
            return {"post": None}

        async def build(now: int) -> dict[str, Any]:
            statement = _with_author(p.body_html).where(*_public(now), p.slug == slug)
            async with self.db.read() as conn:
                row = (await conn.execute(statement)).first()
                if row is not None:
                    return {"post": {**summary(row), "html": row.body_html}}
                moved = (
                    select(p.slug)
                    .select_from(
                        blog_slug_redirects.join(blog_posts, p.id == blog_slug_redirects.c.post_id)
                    )
                    .where(blog_slug_redirects.c.slug == slug, *_public(now))
                )
                target = (await conn.execute(moved)).scalar_one_or_none()
            return {"redirect": target} if target else {"post": None}

        found: dict[str, Any] = await self._cached(keys.blog_post(slug), build)
        return found

    # -- feed and sitemap ----------------------------------------------------

    async def feed(self) -> list[dict[str, Any]]:
        """The newest ``feed_entries`` public posts, each with its ``html``."""

        async def build(now: int) -> list[dict[str, Any]]:
            statement = (
                _with_author(p.body_html)
                .where(*_public(now))
                .order_by(p.published_at.desc(), p.id.desc())
                .limit(self.feed_entries)
            )
            async with self.db.read() as conn:
                rows = (await conn.execute(statement)).all()
            return [{**summary(row), "html": row.body_html} for row in rows]

        entries: list[dict[str, Any]] = await self._cached(keys.blog_feed(), build)
        return entries

    async def sitemap(self) -> list[dict[str, Any]]:
        """Every public post's ``slug`` and ``updated_at`` (newest first, at most
        ``sitemap_max``)."""

        async def build(now: int) -> list[dict[str, Any]]:
            statement = (
                select(p.slug, p.updated_at)
                .where(*_public(now))
                .order_by(p.published_at.desc(), p.id.desc())
                .limit(self.sitemap_max)
            )
            async with self.db.read() as conn:
                rows = (await conn.execute(statement)).all()
            return [{"slug": row.slug, "updated_at": row.updated_at} for row in rows]

        entries: list[dict[str, Any]] = await self._cached(keys.blog_sitemap(), build)
        return entries
