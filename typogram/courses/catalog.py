"""The public catalog: published courses by filter or full-text search, and one course
with its lessons, cached.

Rules:

1. The public sees published courses only; a draft is "not found".
2. Listing without ``q``: by ``position`` then slug, keyset-paged on that
   pair. With ``q``: the search port ranks the courses (at most
   ``max_hits``), the filters apply to them, and pages follow relevance
   then slug. The cursor is opaque and names its order, so a cursor of one
   order is refused (400) by the other.
3. Pages and courses are cache-aside under ``course:catalog:*`` for
   ``ttl_s`` and stamped with the catalog's version token; every change
   (``typogram.courses.editing``) writes a fresh token, so nothing built
   before it is served again (``typogram.cache_aside``). The page key
   hashes the filters, the query's terms (not its spelling), the cursor and
   the size.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import orjson
from sqlalchemy import and_, or_, select

from typogram import cache_aside, keys
from typogram.courses.model import (
    AdaptiveSource,
    FixedSource,
    Source,
    clean_text,
    decode_source,
)
from typogram.cursors import decode_cursor, encode_cursor
from typogram.db.database import Database
from typogram.db.schema import course_lessons, courses
from typogram.ports import Cache, Search
from typogram.search import COURSES, terms
from typogram.slugs import decode_tags

MAX_PAGE = 50


@dataclass(frozen=True, slots=True)
class CatalogQuery:
    language: str | None = None
    level: str | None = None
    tag: str | None = None
    premium: bool | None = None
    q: str | None = None
    cursor: str | None = None
    limit: int = 20

    def digest(self) -> str:
        searched = None if self.q is None else terms(self.q)
        doc = [self.language, self.level, self.tag, self.premium, searched, self.cursor, self.limit]
        return hashlib.sha256(orjson.dumps(doc)).hexdigest()[:32]


def summary(row: Any) -> dict[str, Any]:
    """A course as the catalog lists it."""
    return {
        "id": row.id,
        "slug": row.slug,
        "title": row.title,
        "description": row.description,
        "language": row.language,
        "level": row.level,
        "tags": decode_tags(row.tags),
        "cover_color": row.cover_color,
        "cover_url": row.cover_url or None,
        "premium": bool(row.premium),
        "lesson_count": int(row.lesson_count),
    }


def source_summary(source: Source) -> dict[str, Any]:
    """What a learner may know of a lesson's text before starting it (no fixed text)."""
    if isinstance(source, FixedSource):
        return {"kind": "fixed", "mode": "words", "count": len(clean_text(source.text).split())}
    if isinstance(source, AdaptiveSource):
        return {"kind": "adaptive", "mode": "words", "count": source.count}
    return {
        "kind": "generated",
        "mode": source.mode,
        "count": source.count if source.mode == "words" else None,
        "seconds": source.seconds if source.mode == "time" else None,
        "difficulty": source.difficulty,
        "punctuation": source.punctuation,
        "numbers": source.numbers,
        "keys": source.keys,
    }


def lesson_view(row: Any, *, full: bool = False) -> dict[str, Any]:
    """A lesson as the course page shows it; ``full`` adds the source itself (staff)."""
    source = decode_source(row.source)
    doc: dict[str, Any] = {
        "number": int(row.position),
        "id": row.id,
        "title": row.title,
        "instructions": row.instructions,
        "text": source_summary(source),
        "goal": {
            "wpm": float(row.goal_wpm),
            "accuracy": float(row.goal_accuracy),
            "seconds": row.goal_seconds,
        },
    }
    if full:
        doc["source"] = msgspec.to_builtins(source)
    return doc


_STAFF_ONLY = ("published", "position", "created_at", "updated_at")


def public_course(doc: dict[str, Any]) -> dict[str, Any]:
    """A course without what only staff see (lesson sources, publishing fields)."""
    lessons = [{k: v for k, v in lesson.items() if k != "source"} for lesson in doc["lessons"]]
    return {k: v for k, v in doc.items() if k not in _STAFF_ONLY} | {"lessons": lessons}


class Catalog:
    def __init__(
        self, db: Database, cache: Cache, search: Search, *, ttl_s: float, max_hits: int = 500
    ) -> None:
        self.db = db
        self.cache = cache
        self.search = search
        self.ttl_s = ttl_s
        self.max_hits = max_hits

    # -- listing --------------------------------------------------------------

    async def page(self, query: CatalogQuery) -> dict[str, Any]:
        """Rules 2-3: ``{"courses": [...], "next_cursor": …}``."""
        key = keys.course_catalog_page(query.digest())
        cached, version = await cache_aside.read(self.cache, key, keys.course_catalog_version())
        if cached is not None:
            page: dict[str, Any] = cached
            return page
        page = await (self._searched(query) if query.q is not None else self._listed(query))
        await cache_aside.store(self.cache, key, version, page, self.ttl_s)
        return page

    def _filters(self, query: CatalogQuery) -> list[Any]:
        c = courses.c
        where: list[Any] = [c.published == 1]
        if query.language is not None:
            where.append(c.language == query.language)
        if query.level is not None:
            where.append(c.level == query.level)
        if query.tag is not None:
            where.append(c.tags.like(f"%,{query.tag},%"))  # a tag holds no % or _
        if query.premium is not None:
            where.append(c.premium == int(query.premium))
        return where

    async def _listed(self, query: CatalogQuery) -> dict[str, Any]:
        c = courses.c
        where = self._filters(query)
        if query.cursor is not None:
            position, slug = decode_cursor(query.cursor, "p")
            where.append(or_(c.position > position, and_(c.position == position, c.slug > slug)))
        statement = (
            select(courses).where(*where).order_by(c.position, c.slug).limit(query.limit + 1)
        )
        async with self.db.read() as conn:
            rows = (await conn.execute(statement)).all()
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        following = encode_cursor("p", rows[-1].position, rows[-1].slug) if more else None
        return {"courses": [summary(row) for row in rows], "next_cursor": following}

    async def _searched(self, query: CatalogQuery) -> dict[str, Any]:
        assert query.q is not None, "a search needs a query"
        hits = await self.search.search(COURSES, query.q, limit=self.max_hits)
        scores = {hit.key: hit.score for hit in hits}
        rows: Sequence[Any] = []
        if scores:
            statement = select(courses).where(*self._filters(query), courses.c.id.in_(scores))
            async with self.db.read() as conn:
                rows = (await conn.execute(statement)).all()
        ranked = sorted(rows, key=lambda row: (-scores[row.id], row.slug))
        if query.cursor is not None:
            score, slug = decode_cursor(query.cursor, "s")
            ranked = [row for row in ranked if (-scores[row.id], row.slug) > (-score, slug)]
        page = ranked[: query.limit]
        following = None
        if len(ranked) > query.limit:
            following = encode_cursor("s", scores[page[-1].id], page[-1].slug)
        return {
            "courses": [{**summary(row), "score": round(scores[row.id], 6)} for row in page],
            "next_cursor": following,
        }

    # -- one course -----------------------------------------------------------

    async def course(self, slug: str) -> dict[str, Any] | None:
        """A published course with its lessons and their sources (rule 1), cached (rule 3).
        ``public_course`` is what a learner may see of it."""
        if len(slug) > 64:
            return None
        key = keys.course_catalog_course(slug)
        cached, version = await cache_aside.read(self.cache, key, keys.course_catalog_version())
        if cached is not None:
            found: dict[str, Any] | None = cached.get("course")
            return found
        doc = await self.load(slug, published_only=True, full=True)
        await cache_aside.store(self.cache, key, version, {"course": doc}, self.ttl_s)
        return doc

    async def load(
        self, slug: str, *, published_only: bool, full: bool = False, primary: bool = False
    ) -> dict[str, Any] | None:
        """A course and its lessons from SQL (``full``: with every lesson's source)."""
        where = [courses.c.slug == slug]
        if published_only:
            where.append(courses.c.published == 1)
        async with self.db.read(primary=primary) as conn:
            row = (await conn.execute(select(courses).where(*where))).first()
            if row is None:
                return None
            lessons = (
                await conn.execute(
                    select(course_lessons)
                    .where(course_lessons.c.course_id == row.id)
                    .order_by(course_lessons.c.position)
                )
            ).all()
        doc = summary(row)
        doc["lessons"] = [lesson_view(lesson, full=full) for lesson in lessons]
        if full:
            doc |= {
                "published": bool(row.published),
                "position": int(row.position),
                "created_at": int(row.created_at),
                "updated_at": int(row.updated_at),
            }
        return doc
