"""The blog's REST API, staff editing and public pages, on both backends."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import feedparser
import httpx
import pytest
from sqlalchemy import select

from tests.integration.courses_support import client, staff, user
from typogram.db.schema import audit_log
from typogram.platform import Platform

pytestmark = pytest.mark.integration
__all__ = ["client"]  # fixture

Auth = dict[str, str]


def now_ms() -> int:
    return int(time.time() * 1000)


async def editor(client: httpx.AsyncClient, platform: Platform, name: str = "editor1") -> Auth:
    return await staff(client, platform, name, "editor")


async def write(client: httpx.AsyncClient, auth: Auth, **fields: Any) -> dict[str, Any]:
    body = {"title": "A post", "body_markdown": "Some *text*."} | fields
    response = await client.post("/api/v1/admin/posts", json=body, headers=auth)
    assert response.status_code == 201, response.text
    post: dict[str, Any] = response.json()
    return post


def slugs(page: dict[str, Any]) -> list[str]:
    return [post["slug"] for post in page["posts"]]


async def test_drafts_publishing_and_scheduled_posts(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    auth = await editor(client, platform)
    draft = await write(client, auth, title="Hello, World!", tags=["news"])
    assert draft["slug"] == "hello-world" and draft["status"] == "draft"
    assert draft["html"] == "<p>Some <em>text</em>.</p>\n" and draft["excerpt"] == "Some text."
    assert slugs((await client.get("/api/v1/blog/posts")).json()) == []
    assert (await client.get("/api/v1/blog/posts/hello-world")).status_code == 404
    assert (await client.get("/blog/hello-world")).status_code == 404

    published = await client.post(f"/api/v1/admin/posts/{draft['id']}/publish", headers=auth)
    assert published.status_code == 200 and published.json()["status"] == "published"
    view = (await client.get("/api/v1/blog/posts/hello-world")).json()
    assert view["title"] == "Hello, World!" and view["html"].startswith("<p>Some")
    assert view["author"]["username"] == "editor1" and "body_markdown" not in view

    # Scheduled 1.5 s ahead: absent from the cached list until its time, then present
    # without any further change (no cache entry outlives the next publication).
    soon = now_ms() + 1_500
    later = await write(client, auth, title="Coming soon", publish_at=soon)
    assert later["status"] == "scheduled"
    assert slugs((await client.get("/api/v1/blog/posts")).json()) == ["hello-world"]
    assert (await client.get("/api/v1/blog/posts/coming-soon")).status_code == 404
    await asyncio.sleep(max(0.0, (soon - now_ms()) / 1000) + 0.1)
    assert slugs((await client.get("/api/v1/blog/posts")).json()) == [
        "coming-soon",
        "hello-world",
    ]
    assert (await client.get("/api/v1/blog/posts/coming-soon")).status_code == 200

    down = await client.post(f"/api/v1/admin/posts/{draft['id']}/unpublish", headers=auth)
    assert down.json()["status"] == "draft"
    assert slugs((await client.get("/api/v1/blog/posts")).json()) == ["coming-soon"]
    again = await client.post(f"/api/v1/admin/posts/{draft['id']}/publish", headers=auth)
    assert again.json()["published_at"] == published.json()["published_at"]  # keeps its place


async def test_keyset_pages_and_tags(client: httpx.AsyncClient, platform: Platform) -> None:
    auth = await editor(client, platform)
    base = now_ms() - 100_000
    for n in range(7):
        tags = ["even"] if n % 2 == 0 else ["odd"]
        await write(client, auth, title=f"Post {n}", publish_at=base + n * 1000, tags=tags)
    await write(client, auth, title="Same time", publish_at=base + 6000, tags=["odd"])
    seen: list[str] = []
    cursor = None
    while True:
        query = "/api/v1/blog/posts?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = (await client.get(query)).json()
        seen += slugs(page)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 8 and len(set(seen)) == 8
    assert seen[-1] == "post-0" and set(seen[:2]) == {"post-6", "same-time"}
    even = (await client.get("/api/v1/blog/posts?tag=even")).json()
    assert slugs(even) == ["post-6", "post-4", "post-2", "post-0"]
    bad = await client.get("/api/v1/blog/posts?tag=Not%20A%20Tag&limit=0")
    assert bad.status_code == 400 and set(bad.json()["error"]["fields"]) == {"tag"}
    assert (await client.get("/api/v1/blog/posts?limit=0")).status_code == 400
    for cursor in ("garbage", "W10", "a" * 400):
        assert (await client.get(f"/api/v1/blog/posts?cursor={cursor}")).status_code == 400


async def test_changed_slug_redirects_and_old_links_stay_reserved(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    auth = await editor(client, platform)
    post = await write(client, auth, title="First name", publish_at=now_ms() - 1000)
    changed = await client.patch(
        f"/api/v1/admin/posts/{post['id']}", json={"slug": "second-name"}, headers=auth
    )
    assert changed.status_code == 200 and changed.json()["old_slugs"] == ["first-name"]
    moved = await client.get("/api/v1/blog/posts/first-name")
    assert (
        moved.status_code == 301 and moved.headers["location"] == "/api/v1/blog/posts/second-name"
    )
    page = await client.get("/blog/first-name")
    assert page.status_code == 301 and page.headers["location"] == "/blog/second-name"
    # Nobody else may take the old slug, or the live one.
    for slug in ("first-name", "second-name"):
        taken = await client.post(
            "/api/v1/admin/posts", json={"title": "x", "body_markdown": "", "slug": slug},
            headers=auth,
        )  # fmt: skip
        assert taken.status_code == 409 and taken.json()["error"]["fields"] == {"slug": "taken"}
    # A derived slug steps around both.
    assert (await write(client, auth, title="First name"))["slug"] == "first-name-2"
    back = await client.patch(
        f"/api/v1/admin/posts/{post['id']}", json={"slug": "first-name"}, headers=auth
    )
    assert back.json()["old_slugs"] == ["second-name"] and back.json()["slug"] == "first-name"
    assert (await client.get("/api/v1/blog/posts/first-name")).status_code == 200


async def test_changes_show_at_once_through_the_cache(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    auth = await editor(client, platform)
    post = await write(client, auth, title="Cached", publish_at=now_ms() - 1000)
    for _ in range(2):  # the second read comes from the cache
        assert (await client.get("/api/v1/blog/posts/cached")).json()["title"] == "Cached"
        assert (await client.get("/api/v1/blog/posts")).json()["posts"][0]["title"] == "Cached"
    await client.patch(
        f"/api/v1/admin/posts/{post['id']}",
        json={"title": "Renamed", "body_markdown": "New **body**"},
        headers=auth,
    )
    fresh = (await client.get("/api/v1/blog/posts/cached")).json()
    assert fresh["title"] == "Renamed" and "<strong>body</strong>" in fresh["html"]
    assert fresh["excerpt"] == "New body"
    assert (await client.get("/api/v1/blog/posts")).json()["posts"][0]["title"] == "Renamed"
    deleted = await client.delete(f"/api/v1/admin/posts/{post['id']}", headers=auth)
    assert deleted.json() == {"deleted": True}
    assert (await client.get("/api/v1/blog/posts/cached")).status_code == 404
    assert (await client.get("/api/v1/blog/posts")).json()["posts"] == []


async def test_search_ranks_public_posts_and_takes_any_query(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    auth = await editor(client, platform)
    past = now_ms() - 10_000
    await write(client, auth, title="Typing speed drills", body_markdown="Drills for speed.",
                publish_at=past)  # fmt: skip
    await write(client, auth, title="Accuracy first", body_markdown="Slow down for speed later.",
                publish_at=past)  # fmt: skip
    await write(client, auth, title="Secret speed draft", body_markdown="speed speed speed")
    found = (await client.get("/api/v1/blog/search?q=speed%20drills")).json()
    assert slugs(found) == ["typing-speed-drills", "accuracy-first"]
    assert found["posts"][0]["score"] > found["posts"][1]["score"]
    one = (await client.get("/api/v1/blog/search?q=speed&limit=1")).json()
    assert len(one["posts"]) == 1 and one["next_cursor"]
    rest = (await client.get(f"/api/v1/blog/search?q=speed&cursor={one['next_cursor']}")).json()
    assert len(rest["posts"]) == 1 and slugs(rest) != slugs(one)
    listing_cursor = await client.get(f"/api/v1/blog/posts?cursor={one['next_cursor']}")
    assert listing_cursor.status_code == 400
    for q in ('"', "+speed -drills", "speed*", "%' OR '1'='1", "NEAR(a b)", "日本語", "x" * 5000,
              "", "()", "@2 speed", "\\"):  # fmt: skip
        answer = await client.get("/api/v1/blog/search", params={"q": q})
        assert answer.status_code == 200, (q, answer.text)
    assert (await client.get("/api/v1/blog/search")).status_code == 400
    staff_found = await client.get("/api/v1/admin/posts?q=speed", headers=auth)
    assert "secret-speed-draft" in slugs(staff_found.json())


async def test_bad_input_and_roles(client: httpx.AsyncClient, platform: Platform) -> None:
    auth = await editor(client, platform)
    bad = await client.post(
        "/api/v1/admin/posts",
        json={"title": " ", "body_markdown": "x", "slug": "Bad Slug!", "tags": ["ok", "NOT OK"],
              "language": "xx", "cover_url": "javascript:alert(1)"},
        headers=auth,
    )  # fmt: skip
    assert bad.status_code == 400
    assert set(bad.json()["error"]["fields"]) == {"title", "slug", "tags", "language", "cover_url"}
    too_long = await client.post(
        "/api/v1/admin/posts", json={"title": "t", "body_markdown": "x" * 60_001}, headers=auth
    )
    assert too_long.status_code in (400, 413)
    assert (await client.get("/api/v1/admin/posts/" + "0" * 32, headers=auth)).status_code == 404
    assert (await client.get("/api/v1/admin/posts/not-an-id", headers=auth)).status_code == 404
    listing = await client.get("/api/v1/admin/posts?status=nope", headers=auth)
    assert listing.status_code == 400
    _, plain = await user(client, "reader")
    moderator = await staff(client, platform, "mod", "moderator")
    for who in (plain, moderator):
        refused = await client.post(
            "/api/v1/admin/posts", json={"title": "x", "body_markdown": "y"}, headers=who
        )
        assert refused.status_code == 403
    assert (await client.get("/api/v1/admin/posts")).status_code == 401


async def test_staff_actions_are_audited_with_the_actor(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    auth = await editor(client, platform, "auditor")
    post = await write(client, auth, title="Audited")
    await client.patch(f"/api/v1/admin/posts/{post['id']}", json={"tags": ["a"]}, headers=auth)
    await client.post(f"/api/v1/admin/posts/{post['id']}/publish", json={}, headers=auth)
    await client.post(f"/api/v1/admin/posts/{post['id']}/unpublish", headers=auth)
    await client.delete(f"/api/v1/admin/posts/{post['id']}", headers=auth)
    me = (await client.get("/api/v1/users/me", headers=auth)).json()["id"]
    async with platform.db.read(primary=True) as conn:
        rows = (
            await conn.execute(
                select(audit_log.c.action, audit_log.c.actor_id)
                .where(audit_log.c.action.like("post.%"))
                .order_by(audit_log.c.id)
            )
        ).all()
    assert [row.action for row in rows] == [
        "post.create", "post.update", "post.publish", "post.unpublish", "post.delete",
    ]  # fmt: skip
    assert {row.actor_id for row in rows} == {me}


async def test_previews_render_without_saving(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    auth = await editor(client, platform)
    preview = await client.post(
        "/api/v1/admin/posts/preview",
        json={"body_markdown": "# Hi\n<script>alert(1)</script>[x](javascript:alert(1))"},
        headers=auth,
    )
    assert preview.status_code == 200
    assert "<h1>Hi</h1>" in preview.json()["html"] and "<script" not in preview.json()["html"]
    assert "href" not in preview.json()["html"]
    post = await write(client, auth, body_markdown="**bold**")
    saved = await client.get(f"/api/v1/admin/posts/{post['id']}/preview", headers=auth)
    assert saved.json()["html"] == "<p><strong>bold</strong></p>\n"


# -- pages, feed, sitemap ---------------------------------------------------------


async def test_pages_feed_and_sitemap(client: httpx.AsyncClient, platform: Platform) -> None:
    auth = await editor(client, platform)
    await write(
        client, auth, title="Pages <b>and</b> feeds", slug="pages-and-feeds", tags=["guides"],
        body_markdown="Hello <script>alert(1)</script> [x](javascript:alert(1)) **world**",
        cover_url="https://cdn.example.com/c.png", publish_at=now_ms() - 5000, language="de",
    )  # fmt: skip
    await write(client, auth, title="Draft page")

    listing = await client.get("/blog")
    assert listing.status_code == 200 and listing.headers["content-type"].startswith("text/html")
    html = listing.text
    assert 'data-slug="pages-and-feeds"' in html and "Draft page" not in html
    assert "Pages &lt;b&gt;and&lt;/b&gt; feeds" in html and "<b>and</b>" not in html
    assert '<link rel="canonical" href="http://test/blog">' in html
    assert "script-src 'self'" in listing.headers["content-security-policy"]
    assert listing.headers["cache-control"].startswith("public, max-age=")
    etag = listing.headers["etag"]
    cached = await client.get("/blog", headers={"If-None-Match": etag})
    assert cached.status_code == 304 and cached.content == b""

    page = await client.get("/blog/pages-and-feeds")
    body = page.text
    assert page.status_code == 200 and '<html lang="de">' in body
    assert '<link rel="canonical" href="http://test/blog/pages-and-feeds">' in body
    assert '<meta property="og:title" content="Pages &lt;b&gt;and&lt;/b&gt; feeds">' in body
    assert '<meta property="og:image" content="https://cdn.example.com/c.png">' in body
    assert '<meta property="og:type" content="article">' in body
    assert "<strong>world</strong>" in body and "&lt;script&gt;" in body
    assert "<script" not in body and "javascript:" not in body.split("<main", 1)[1].split('"')[0]
    stylesheet = body.split('<link rel="stylesheet" href="', 1)[1].split('"', 1)[0]
    css = await client.get(stylesheet)
    assert css.status_code == 200 and "immutable" in css.headers["cache-control"]
    assert (await client.get("/blog/assets/blog-000000000000.css")).status_code == 404
    assert (await client.get("/blog/no-such-post")).status_code == 404
    assert (await client.get("/blog?tag=Bad%20Tag")).status_code == 400
    assert (await client.get("/blog?tag=guides")).text.count('class="post-summary"') == 1

    feed = await client.get("/blog/feed.xml")
    assert feed.headers["content-type"].startswith("application/atom+xml")
    parsed = feedparser.parse(feed.content)
    assert not parsed.bozo and parsed.version == "atom10"
    assert [entry.link for entry in parsed.entries] == ["http://test/blog/pages-and-feeds"]
    assert parsed.entries[0].title == "Pages <b>and</b> feeds"
    assert "<strong>world</strong>" in parsed.entries[0].content[0].value
    assert parsed.entries[0].tags[0].term == "guides"
    assert (await client.get("/blog/feed.xml", headers={"If-None-Match": feed.headers["etag"]})
            ).status_code == 304  # fmt: skip

    sitemap = await client.get("/sitemap.xml")
    assert sitemap.headers["content-type"].startswith("application/xml")
    assert "<loc>http://test/blog/pages-and-feeds</loc>" in sitemap.text
    assert "draft-page" not in sitemap.text


async def test_public_url_makes_links_absolute_on_it(platform: Platform) -> None:
    from rest.app import create_app

    configured = platform.settings.replace(public_url="https://typogram.example")
    app = create_app(dataclasses.replace(platform, settings=configured))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://evil.example") as c:
        page = await c.get("/blog")
        assert '<link rel="canonical" href="https://typogram.example/blog">' in page.text
        assert "evil.example" not in page.text
        assert "https://typogram.example/blog" in (await c.get("/sitemap.xml")).text


async def test_concurrent_misses_share_one_build(platform: Platform) -> None:
    from typogram.blog.services import reader_of

    reader = reader_of(platform)
    builds = 0

    async def build(now: int) -> dict[str, int]:
        nonlocal builds
        builds += 1
        await asyncio.sleep(0.05)
        return {"built_at": now}

    answers = await asyncio.gather(*(reader._cached("blog:test:one", build) for _ in range(20)))
    assert builds == 1 and all(answer == answers[0] for answer in answers)
    assert reader.statistics() == {"building": 0}

    async def failing(now: int) -> None:
        await asyncio.sleep(0.01)
        raise RuntimeError("database down")

    failed = await asyncio.gather(
        *(reader._cached("blog:test:two", failing) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(answer, RuntimeError) for answer in failed)
    assert reader.statistics() == {"building": 0}
