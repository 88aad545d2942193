"""One contract for the search port: SQLite FTS5 (embedded) and MariaDB FULLTEXT."""

from __future__ import annotations

import random
import time

import pytest
from sqlalchemy import delete, update

from typogram.db.schema import blog_posts, courses
from typogram.platform import Platform
from typogram.search import COURSES, MAX_QUERY_CHARS, POSTS
from typogram.slugs import encode_tags

pytestmark = pytest.mark.integration

DOCS = {
    "home": ("Home-row basics", "Rest your fingers on the home row and learn its keys."),
    "top": ("Reaching the top row", "Stretch up from the home row to the top row keys."),
    "speed": ("Speed building", "Timed runs with rising goals for fast typists."),
    "spanish": ("Español: primeros pasos", "Mecanografía en español: la fila guía y las tildes."),
    "russian": ("Русский для начинающих", "Домашний ряд и частые слова русского языка."),
}


async def _index(platform: Platform, docs: dict[str, tuple[str, str]]) -> None:
    now = int(time.time() * 1000)
    async with platform.db.write() as conn:
        await conn.execute(delete(courses))
        await conn.execute(
            courses.insert(),
            [
                {"id": key, "slug": key, "title": title, "description": text, "language": "en",
                 "level": "beginner", "tags": encode_tags([]), "created_at": now,
                 "updated_at": now}
                for key, (title, text) in docs.items()
            ],
        )  # fmt: skip


async def _keys(platform: Platform, query: str, limit: int = 10) -> list[str]:
    return [hit.key for hit in await platform.search.search(COURSES, query, limit=limit)]


async def test_finds_words_and_word_starts_in_title_and_description(platform: Platform) -> None:
    await _index(platform, DOCS)
    assert set(await _keys(platform, "row")) == {"home", "top"}
    assert await _keys(platform, "timed") == ["speed"]  # description only
    assert set(await _keys(platform, "typ")) == {"speed"}  # a word's start
    assert await _keys(platform, "ESPANOL") == ["spanish"]  # case and accents folded
    assert await _keys(platform, "домашний") == ["russian"]  # another script
    assert await _keys(platform, "nothing-like-it") == []


async def test_more_terms_matched_rank_higher(platform: Platform) -> None:
    await _index(
        platform,
        {
            "both": ("Alpha drills", "Bravo practice for everyone."),
            "alpha": ("Alpha course", "Something else entirely."),
            "bravo": ("Charlie", "Bravo things and more."),
            "none": ("Delta", "Nothing here."),
        },
    )
    ranked = await platform.search.search(COURSES, "alpha bravo", limit=10)
    assert ranked[0].key == "both"
    assert {hit.key for hit in ranked} == {"both", "alpha", "bravo"}
    assert ranked[0].score > ranked[-1].score
    assert await _keys(platform, "alpha bravo", limit=1) == ["both"]


async def test_changes_reach_the_index(platform: Platform) -> None:
    await _index(platform, DOCS)
    async with platform.db.write() as conn:
        await conn.execute(
            update(courses).where(courses.c.id == "speed").values(title="Velocity drills")
        )
        await conn.execute(delete(courses).where(courses.c.id == "top"))
    assert await _keys(platform, "velocity") == ["speed"]
    assert await _keys(platform, "speed") == []
    assert await _keys(platform, "reaching") == []


NASTY = [
    "",
    " ",
    '"',
    "'",
    '""',
    "*",
    "+",
    "-",
    "~",
    "@",
    "(",
    ")",
    "()",
    "<>",
    "%",
    "_",
    "%%%",
    "a%b_c",
    "+home -row",
    '"home row"',
    "home*",
    "*row",
    "row)",
    "(row",
    "@2 row",
    "NEAR(a b)",
    "home AND row",
    "home OR",
    "OR",
    "NOT row",
    "^home",
    "row:home",
    "title:row",
    "{row}",
    "\\",
    "\x00",
    "\t\n",
    "😀 emoji",
    "日本語のテキスト",
    "العربية",
    "עברית",
    "ไทย",
    "한국어",
    "e\u0301te\u0301",
    "ǅ",
    "x" * 10_000,
    "row " * 5_000,
    "'; DROP TABLE courses; --",
    "1=1",
    "%' OR '1'='1",
    "½⅓",
    "²³",
    "___row___",
    "row_row",
    "ﬁnal",
]


def _random_queries(count: int) -> list[str]:
    rng = random.Random(16)
    alphabet = [chr(c) for c in range(0x20, 0x7F)] + list("ßæøåñçéèüöäÿœ€£¥©®™…«»„“”")
    out = []
    for _ in range(count):
        chars = [
            rng.choice(alphabet) if rng.random() < 0.7 else chr(rng.randint(0x80, 0x2FFFF))
            for _ in range(rng.randint(0, 60))
        ]
        out.append("".join(ch for ch in chars if not 0xD800 <= ord(ch) <= 0xDFFF))
    return out


async def test_no_query_is_an_error(platform: Platform) -> None:
    await _index(platform, DOCS)
    for query in NASTY + _random_queries(300):
        hits = await platform.search.search(COURSES, query, limit=5)
        assert len(hits) <= 5
    assert max(len(query) for query in NASTY) > MAX_QUERY_CHARS
    assert await _keys(platform, "+home -row") == await _keys(platform, "home row")
    stats = platform.search.statistics()
    assert stats["queries"] >= 1 and stats["no_terms"] >= 1


# -- posts: the same port over another index, with visibility (rule 5) --

POST_DOCS = {
    # key: (title, body text, is_published, published_at)
    "live": ("Typing faster", "Practice the home row daily.", 1, 1_000),
    "later": ("Typing tomorrow", "A scheduled post about the home row.", 1, 5_000),
    "draft": ("Typing drafts", "Not ready: home row notes.", 0, None),
    "old": ("Unpublished", "Home row history, taken down.", 0, 500),
}


async def _index_posts(
    platform: Platform, docs: dict[str, tuple[str, str, int, int | None]]
) -> None:
    async with platform.db.write() as conn:
        await conn.execute(delete(blog_posts))
        await conn.execute(
            blog_posts.insert(),
            [
                {"id": key, "slug": f"post-{key}", "title": title, "body_markdown": body,
                 "body_html": body, "body_text": body, "language": "en", "author_id": "a" * 32,
                 "is_published": flag, "published_at": at, "created_at": 1, "updated_at": 1}
                for key, (title, body, flag, at) in docs.items()
            ],
        )  # fmt: skip


async def _post_keys(platform: Platform, query: str, **kwargs: int) -> set[str]:
    hits = await platform.search.search(POSTS, query, limit=10, **kwargs)
    return {hit.key for hit in hits}


async def test_posts_public_at_keeps_drafts_and_scheduled_posts_out(platform: Platform) -> None:
    await _index_posts(platform, POST_DOCS)
    assert await _post_keys(platform, "home row") == set(POST_DOCS)  # staff: every post
    assert await _post_keys(platform, "home row", public_at=1_000) == {"live"}
    assert await _post_keys(platform, "typing", public_at=5_000) == {"live", "later"}
    assert await _post_keys(platform, "typing", public_at=999) == set()
    # The limit counts public posts only: drafts never crowd them out.
    drafts = {f"d{i}": ("Home row", "home row home row", 0, None) for i in range(20)}
    await _index_posts(platform, POST_DOCS | drafts)
    hits = await platform.search.search(POSTS, "home row", limit=2, public_at=5_000)
    assert {hit.key for hit in hits} == {"live", "later"}
    for query in NASTY[:40]:
        assert len(await platform.search.search(POSTS, query, limit=3, public_at=5_000)) <= 3


async def test_posts_index_follows_changes_and_refuses_visibility_it_lacks(
    platform: Platform,
) -> None:
    await _index_posts(platform, POST_DOCS)
    async with platform.db.write() as conn:
        await conn.execute(
            update(blog_posts).where(blog_posts.c.id == "live").values(body_text="Velocity drills")
        )
        await conn.execute(
            update(blog_posts).where(blog_posts.c.id == "draft").values(is_published=1,
                                                                         published_at=10)
        )  # fmt: skip
    assert await _post_keys(platform, "velocity", public_at=2_000) == {"live"}
    assert await _post_keys(platform, "notes", public_at=2_000) == {"draft"}
    with pytest.raises(ValueError):
        await platform.search.search(COURSES, "row", limit=1, public_at=1)
