"""The course catalog (filters, search, paging, cache) and staff editing, on both backends."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from tests.integration.courses_support import client, slugs, staff, starter, user
from typogram import keys
from typogram.courses.starter import COURSES
from typogram.db.schema import audit_log
from typogram.platform import Platform

pytestmark = pytest.mark.integration
__all__ = ["client", "starter"]  # fixtures

PUBLISHED = sorted(COURSES, key=lambda c: (c.position, c.slug))


async def test_the_starter_catalog_is_real(client: httpx.AsyncClient, starter: None) -> None:
    page = (await client.get("/api/v1/courses?limit=50")).json()
    assert slugs(page) == [c.slug for c in PUBLISHED] and page["next_cursor"] is None
    assert len(page["courses"]) >= 6
    assert any(c["premium"] for c in page["courses"])
    assert {c["language"] for c in page["courses"]} >= {"en", "es"}
    home = page["courses"][0]
    assert home["slug"] == "home-row-basics" and home["lesson_count"] == 5
    assert home["level"] == "beginner" and "home-row" in home["tags"]


async def test_filters_and_keyset_pages(client: httpx.AsyncClient, starter: None) -> None:
    seen, cursor = [], None
    while True:
        query = "/api/v1/courses?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = (await client.get(query)).json()
        seen += slugs(page)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [c.slug for c in PUBLISHED]
    premium = (await client.get("/api/v1/courses?premium=true")).json()
    assert slugs(premium) == [c.slug for c in PUBLISHED if c.premium]
    spanish = (await client.get("/api/v1/courses?language=es")).json()
    assert slugs(spanish) == ["espanol-primeros-pasos"]
    level = (await client.get("/api/v1/courses?level=advanced&premium=true")).json()
    assert slugs(level) == ["speed-building"]
    tagged = (await client.get("/api/v1/courses?tag=home-row")).json()
    assert set(slugs(tagged)) == {"home-row-basics", "espanol-primeros-pasos"}
    bad = await client.get(
        "/api/v1/courses?language=xx&level=expert&premium=maybe&limit=0&tag=No%20Spaces"
    )
    assert bad.status_code == 400
    assert set(bad.json()["error"]["fields"]) == {"language", "level", "premium", "limit", "tag"}
    for cursor in ("garbage", "eyJ4IjoxfQ", "W10", "a" * 400):
        assert (await client.get(f"/api/v1/courses?cursor={cursor}")).status_code == 400


async def test_search_ranks_and_filters(client: httpx.AsyncClient, starter: None) -> None:
    found = (await client.get("/api/v1/courses?q=home%20row%20basics")).json()
    assert {"home-row-basics", "top-row"} <= set(slugs(found))
    scores = [c["score"] for c in found["courses"]]
    assert scores == sorted(scores, reverse=True)
    assert slugs((await client.get("/api/v1/courses?q=basics")).json()) == ["home-row-basics"]
    assert all(c["score"] is not None for c in found["courses"])
    spanish = (await client.get("/api/v1/courses?q=mecanograf%C3%ADa&language=es")).json()
    assert slugs(spanish) == ["espanol-primeros-pasos"]
    paged = (await client.get("/api/v1/courses?q=row%20keys%20typing&limit=1")).json()
    assert len(paged["courses"]) == 1 and paged["next_cursor"] is not None
    following = await client.get(
        f"/api/v1/courses?q=row%20keys%20typing&cursor={paged['next_cursor']}"
    )
    assert following.status_code == 200
    assert slugs(paged)[0] not in slugs(following.json())
    # A search cursor is refused by the plain listing, and the other way round.
    assert (await client.get(f"/api/v1/courses?cursor={paged['next_cursor']}")).status_code == 400


@pytest.mark.parametrize(
    "q",
    ['"', "+home -row", "%", "%%%25", "a%_b", "(", ")", "*", "~@<>", "' OR 1=1 --", "x" * 5000,
     "row " * 2000, "русский", "日本語", "العربية", "😀", "\\", "NEAR(a b)", "\u0000"],
)  # fmt: skip
async def test_hostile_queries_never_error(
    client: httpx.AsyncClient, starter: None, q: str
) -> None:
    response = await client.get("/api/v1/courses", params={"q": q})
    assert response.status_code == 200, response.text
    assert isinstance(response.json()["courses"], list)


async def test_course_page_and_drafts(
    client: httpx.AsyncClient, platform: Platform, starter: None
) -> None:
    page = (await client.get("/api/v1/courses/home-row-basics")).json()
    assert [lesson["number"] for lesson in page["lessons"]] == [1, 2, 3, 4, 5]
    first = page["lessons"][0]
    assert first["goal"] == {"wpm": 10.0, "accuracy": 90.0, "seconds": None}
    assert first["text"] == {"kind": "fixed", "mode": "words", "count": 12}
    assert "source" not in first and "published" not in page  # staff only
    assert page.get("enrollment") is None and first.get("progress") is None
    for slug in ("no-such-course", "x" * 500, "home-row-basics%00", "HOME-ROW-BASICS"):
        assert (await client.get(f"/api/v1/courses/{slug}")).status_code == 404
    editor = await staff(client, platform, "edna", "editor")
    draft = {"slug": "secret-draft", "title": "Secret draft course", "description": "unseen"}
    created = await client.post("/api/v1/admin/courses", json=draft, headers=editor)
    assert created.status_code == 201, created.text
    assert created.json()["published"] is False
    assert (await client.get("/api/v1/courses/secret-draft")).status_code == 404
    assert "secret-draft" not in slugs((await client.get("/api/v1/courses?limit=50")).json())
    assert slugs((await client.get("/api/v1/courses?q=secret%20draft")).json()) == []
    staff_view = await client.get("/api/v1/admin/courses/secret-draft", headers=editor)
    assert staff_view.status_code == 200


async def test_staff_edit_courses_and_lessons_audited(
    client: httpx.AsyncClient, platform: Platform, starter: None
) -> None:
    _, learner = await user(client, "lea")
    editor = await staff(client, platform, "edna", "editor")
    moderator = await staff(client, platform, "moe", "moderator")
    course = {"slug": "numpad", "title": "The numeric keypad", "language": "en",
              "level": "intermediate", "tags": ["numbers"], "published": True}  # fmt: skip
    for who, status in ((learner, 403), (moderator, 403), ({}, 401)):
        refused = await client.post("/api/v1/admin/courses", json=course, headers=who)
        assert refused.status_code == status
    assert (await client.get("/api/v1/admin/courses", headers=learner)).status_code == 403
    assert (
        await client.post("/api/v1/admin/courses", json=course, headers=editor)
    ).status_code == 201
    taken = await client.post("/api/v1/admin/courses", json=course, headers=editor)
    assert taken.status_code == 409 and taken.json()["error"]["fields"] == {"slug": "taken"}
    bad = await client.post(
        "/api/v1/admin/courses",
        json={"slug": "Bad Slug", "title": "x", "cover_color": "blue", "language": "xx"},
        headers=editor,
    )
    assert bad.status_code == 400
    assert set(bad.json()["error"]["fields"]) == {"slug", "cover_color", "language"}
    lessons = "/api/v1/admin/courses/numpad/lessons"
    one = {"title": "Row 4-5-6", "source": {"kind": "fixed", "text": "456  654 465"},
           "goal": {"wpm": 15, "accuracy": 90}}  # fmt: skip
    two = {"title": "Everything", "source": {"kind": "generated", "numbers": True, "count": 10}}
    assert (await client.post(lessons, json=two, headers=editor)).status_code == 201
    added = await client.post(lessons, json={**one, "number": 1}, headers=editor)
    assert added.status_code == 201
    listed = added.json()["lessons"]
    assert [lesson["title"] for lesson in listed] == ["Row 4-5-6", "Everything"]
    assert listed[0]["source"] == {"kind": "fixed", "text": "456 654 465"}
    for bad_lesson in (
        {"title": "t", "source": {"kind": "magic"}},
        {"title": "t", "source": {"kind": "fixed", "text": "   "}},
        {"title": "t", "source": {"kind": "generated", "only_keys": True}},
        {"title": "t", "source": {"kind": "fixed", "text": "x"}, "goal": {"wpm": -1}},
        {"title": "t", "source": {"kind": "fixed", "text": "x"}, "lesson_id": "forged"},
    ):
        assert (await client.post(lessons, json=bad_lesson, headers=editor)).status_code == 400
    public = (await client.get("/api/v1/courses/numpad")).json()
    assert public["lesson_count"] == 2 and public["lessons"][1]["text"]["kind"] == "generated"
    patched = await client.patch(
        f"{lessons}/2", json={"goal": {"wpm": 30, "accuracy": 95, "seconds": 60}}, headers=editor
    )
    assert patched.status_code == 200
    assert patched.json()["lessons"][1]["goal"] == {"wpm": 30.0, "accuracy": 95.0, "seconds": 60}
    for number in ("0", "3", "-1", "abc", "1.0", "99999999999"):
        assert (
            await client.patch(f"{lessons}/{number}", json={}, headers=editor)
        ).status_code == 404
        assert (await client.delete(f"{lessons}/{number}", headers=editor)).status_code == 404
    # Changes show at once, though the page was cached before them.
    assert (await client.get("/api/v1/courses/numpad")).json()["lessons"][1]["goal"]["wpm"] == 30.0
    deleted = await client.delete(f"{lessons}/1", headers=editor)
    assert [lesson["number"] for lesson in deleted.json()["lessons"]] == [1]
    renamed = await client.patch(
        "/api/v1/admin/courses/numpad", json={"slug": "keypad", "premium": True}, headers=editor
    )
    assert renamed.status_code == 200 and renamed.json()["premium"] is True
    assert (await client.get("/api/v1/courses/numpad")).status_code == 404
    assert (await client.get("/api/v1/courses/keypad")).json()["premium"] is True
    assert (await client.delete("/api/v1/admin/courses/keypad", headers=editor)).status_code == 200
    assert (await client.get("/api/v1/courses/keypad")).status_code == 404
    async with platform.db.read() as conn:
        actions = [
            row.action
            for row in await conn.execute(
                select(audit_log.c.action).where(
                    audit_log.c.action.like("%course%") | audit_log.c.action.like("lesson%")
                )
            )
        ]
    assert actions.count("course.create") == 1 and "course.delete" in actions
    assert {"lesson.create", "lesson.update", "lesson.delete", "course.update"} <= set(actions)


async def test_catalog_pages_are_cached_and_dropped_on_change(
    client: httpx.AsyncClient, platform: Platform, starter: None
) -> None:
    before = (await client.get("/api/v1/courses?language=en&limit=3")).json()
    version = await platform.cache.get(keys.course_catalog_version())
    editor = await staff(client, platform, "edna", "editor")
    first = before["courses"][0]["slug"]
    await client.patch(f"/api/v1/admin/courses/{first}", json={"title": "Renamed"}, headers=editor)
    assert await platform.cache.get(keys.course_catalog_version()) != version
    after = (await client.get("/api/v1/courses?language=en&limit=3")).json()
    assert after["courses"][0]["title"] == "Renamed"
    ttl = await platform.cache.ttl(keys.course_catalog_course(first))
    await client.get(f"/api/v1/courses/{first}")
    ttl = await platform.cache.ttl(keys.course_catalog_course(first))
    assert ttl is not None and 3500 < ttl <= 3600


async def test_storage_layout(platform: Platform) -> None:
    """MariaDB: enrolments hash-partitioned by user into 4, the strategy's indexes, the
    FULLTEXT index; SQLite: the FTS5 table and its triggers."""
    from sqlalchemy import text

    async with platform.db.read(primary=True) as conn:
        if platform.db.dialect != "mysql":
            names = {
                row[0]
                for row in await conn.execute(
                    text("SELECT name FROM sqlite_master WHERE name LIKE 'courses_fts%'")
                )
            }
            assert {"courses_fts", "courses_fts_insert", "courses_fts_update"} <= names
            return
        partitions = (
            await conn.execute(
                text(
                    "SELECT PARTITION_METHOD, COUNT(*) FROM information_schema.PARTITIONS "
                    "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'user_typing_courses' "
                    "GROUP BY PARTITION_METHOD"
                )
            )
        ).all()
        assert [tuple(row) for row in partitions] == [("KEY", 4)]
        indexes = {
            (row[0], row[1])
            for row in await conn.execute(
                text(
                    "SELECT TABLE_NAME, INDEX_NAME FROM information_schema.STATISTICS "
                    "WHERE TABLE_SCHEMA = DATABASE() AND SEQ_IN_INDEX = 1 AND TABLE_NAME IN "
                    "('user_typing_courses', 'courses')"
                )
            )
        }
    assert {
        ("user_typing_courses", "PRIMARY"),  # starts with user_id
        ("user_typing_courses", "ix_user_typing_courses_course_id"),
        ("user_typing_courses", "ix_user_typing_courses_expires_at"),
        ("courses", "ft_courses_title_description"),
    } <= indexes
