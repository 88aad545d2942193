"""The blog and the staff area in the browser, against a real ``typogram serve``: a post
written in the staff editor renders on its page, the feed parses, the sitemap lists it,
XSS payloads stay inert; bans, the audit log and the staff-only area."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from tests.browser.conftest import Pages, Server, shoot, sign_up
from tests.browser.test_web import unique

pytestmark = pytest.mark.browser

PASSWORD = "a long admin passphrase"
PAYLOADS = "\n\n".join(
    [
        "**Bold words** and a [safe link](https://example.com/a).",
        "<script>window.__xss = 'script'</script>",
        "<img src=x onerror=\"window.__xss = 'img'\">",
        "[click me](javascript:window.__xss='link')",
        "[entity](&#106;avascript:window.__xss='entity')",
        "![pic](javascript:window.__xss='image')",
        "<svg onload=\"window.__xss = 'svg'\"></svg>",
        "<a href=\"javascript:window.__xss='a'\">raw anchor</a>",
        "<iframe srcdoc=\"<script>parent.__xss='iframe'</script>\"></iframe>",
        "<details open ontoggle=\"window.__xss='details'\">x</details>",
    ]
)


def create_admin(server: Server, name: str) -> None:
    """``typogram admin create-admin`` against the server's own data folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TYPOGRAM_")}
    env.update(TYPOGRAM_ENVIRONMENT="test", TYPOGRAM_DATA_DIR=str(server.log.parent),
               TYPOGRAM_LOG_LEVEL="WARNING")  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "roles", "admin", "create-admin", name,
         "--email", f"{name}@example.com", "--password-stdin"],
        input=PASSWORD + "\n", env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


async def sign_in(page: Any, name: str, password: str) -> None:
    await page.goto("/#/signin")
    await page.fill("#signin-form input[name=login]", name)
    await page.fill("#signin-form input[name=password]", password)
    await page.click("#signin-form button[type=submit]")


async def as_admin(pages: Pages, server: Server) -> Any:
    name = unique("admin")
    create_admin(server, name)
    page = await pages.open("signin")
    await sign_in(page, name, PASSWORD)
    await page.wait_for_selector("nav a[href='#/admin']")
    return page


async def inert(page: Any) -> None:
    """Nothing the payloads tried ran or left active markup in the post."""
    state = await page.evaluate(
        """() => {
          const body = document.querySelector('#post-body');
          const all = [...body.querySelectorAll('*')];
          return {
            xss: window.__xss ?? null,
            active: all.filter((el) => /^(SCRIPT|IFRAME|SVG|OBJECT|EMBED|DETAILS|STYLE)$/i
              .test(el.tagName)).length,
            handlers: all.flatMap((el) => [...el.attributes].map((a) => a.name))
              .filter((name) => name.startsWith('on') || name === 'style' || name === 'srcdoc'),
            urls: all.flatMap((el) => [el.getAttribute('href'), el.getAttribute('src')])
              .filter((u) => u && !/^(https?:|mailto:|\\/|#|[^:]*$)/i.test(u.trim())),
          };
        }"""
    )
    assert state == {"xss": None, "active": 0, "handlers": [], "urls": []}, state


async def test_a_post_from_the_editor_renders_feeds_and_is_in_the_sitemap(
    pages: Pages, server: Server
) -> None:
    page = await as_admin(pages, server)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    await page.click("nav a[href='#/admin']")
    await page.click("#admin-tabs a[data-tab=posts]")
    await page.click("#new-post")
    title = f"Inert payloads {unique('p')}"
    slug = title.lower().replace(" ", "-").replace("_", "-")
    await page.fill("#post-title", title + " <img src=x onerror=alert(1)>")
    await page.fill("#post-slug", slug)
    await page.fill("#post-tags", "security, guides")
    await page.fill("#post-body", PAYLOADS)
    await page.wait_for_selector("#post-preview strong")
    assert await page.locator("#post-preview script, #post-preview img[onerror]").count() == 0
    await shoot(page, "admin-post-editor")
    await page.click("#save-post")
    await page.wait_for_selector("#post-actions:not([hidden])")
    await page.click("#publish-post")
    await page.wait_for_selector("#admin-posts[data-status=published]")

    reader = await pages.open()
    reader.on("dialog", lambda dialog: dialogs.append(dialog.message))
    await reader.goto(f"/blog/{slug}")
    assert (await reader.inner_text("#post-title")).startswith(title)
    assert "<img src=x onerror=alert(1)>" in await reader.inner_text("#post-title")
    assert await reader.inner_text("#post-body strong") == "Bold words"
    await reader.wait_for_timeout(300)  # give anything that would run the time to run
    await inert(reader)
    await shoot(reader, "blog-post")

    await reader.goto("/blog")
    assert await reader.locator(f"article[data-slug='{slug}']").count() == 1
    await reader.click(f"article[data-slug='{slug}'] h2 a")
    await reader.wait_for_selector("#post-title")
    await shoot(reader, "blog-list")

    feed = await reader.evaluate(
        """async () => {
          const text = await (await fetch('/blog/feed.xml')).text();
          const doc = new DOMParser().parseFromString(text, 'application/xml');
          return {
            broken: doc.querySelector('parsererror') !== null,
            root: doc.documentElement.localName,
            links: [...doc.getElementsByTagName('entry')].map(
              (e) => e.getElementsByTagName('link')[0].getAttribute('href')),
          };
        }"""
    )
    assert not feed["broken"] and feed["root"] == "feed"
    assert any(link.endswith(f"/blog/{slug}") for link in feed["links"])
    sitemap = await reader.evaluate(
        """async () => {
          const text = await (await fetch('/sitemap.xml')).text();
          const doc = new DOMParser().parseFromString(text, 'application/xml');
          return [...doc.getElementsByTagName('loc')].map((l) => l.textContent);
        }"""
    )
    assert any(loc.endswith(f"/blog/{slug}") for loc in sitemap)
    assert dialogs == []


async def test_staff_ban_audit_and_the_staff_only_area(pages: Pages, server: Server) -> None:
    admin = await as_admin(pages, server)
    member = await pages.open("signup")
    name = unique("member")
    await sign_up(member, name)
    assert await member.locator("nav a[href='#/admin']").count() == 0
    await member.goto("/#/admin")
    await member.wait_for_selector("#admin-refused")

    await admin.click("nav a[href='#/admin']")
    await admin.fill("#user-search", name)
    await admin.wait_for_selector(f"#user-list tr[data-user={name}]")
    await admin.click(f"#user-list tr[data-user={name}] button")
    await admin.wait_for_selector(f"#user-panel[data-user={name}]")
    await admin.fill("#ban-reason", "spam in the lobby")
    await admin.select_option("#ban-length", "86400000")
    await admin.click("#ban")
    await admin.wait_for_selector("#ban-status")
    assert "spam in the lobby" in await admin.inner_text("#ban-status")
    await shoot(admin, "admin-user-banned")

    # The member's tokens and socket are refused at once: the client signs out.
    await member.wait_for_selector("nav a[href='#/signin']", timeout=15_000)
    await sign_in(member, name, "correct horse battery")
    await member.wait_for_selector(".notice-error:has-text('banned')")

    await admin.click("#admin-tabs a[data-tab=bans]")
    await admin.wait_for_selector(f"#user-list tr[data-user={name}]")
    await admin.click("#admin-tabs a[data-tab=audit]")
    await admin.fill("#audit-action", "user.*")
    await admin.click("#admin-audit form button[type=submit]")
    await admin.wait_for_selector("#audit-table tr[data-action='user.ban']")
    await shoot(admin, "admin-audit")

    await admin.click("#admin-tabs a[data-tab=users]")
    await admin.fill("#user-search", name)
    await admin.click(f"#user-list tr[data-user={name}] button")
    await admin.click("#unban")
    await admin.wait_for_selector(f"#user-panel[data-user={name}]:not(:has(#ban-status))")
    await sign_in(member, name, "correct horse battery")
    await member.wait_for_selector("#profile-name")

    await admin.click("#admin-tabs a[data-tab=courses]")
    await admin.wait_for_selector("#staff-courses[data-loaded=true] tr[data-slug=home-row-basics]")
