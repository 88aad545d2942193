"""The staff's review queues in the browser, against a real ``typogram serve``: a member
reports a lobby message, a moderator resolves the report in the Reports tab; the
Flags tab lists flagged results; the message disappears for everyone once staff
delete it in the lobby."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import Pages, Server, shoot, sign_up
from tests.browser.test_blog import as_admin
from tests.browser.test_web import unique, wait_online

pytestmark = pytest.mark.browser


async def in_lobby(page: Any) -> None:
    await page.click("nav a[href='#/lobby']")
    await wait_online(page)


async def test_a_reported_message_is_resolved_in_the_reports_tab(
    pages: Pages, server: Server
) -> None:
    admin = await as_admin(pages, server)
    author, reporter = await pages.open("signup"), await pages.open("signup")
    author_name, reporter_name = unique("loud"), unique("calm")
    await sign_up(author, author_name)
    await sign_up(reporter, reporter_name)
    for page in (author, reporter):
        await in_lobby(page)
    await author.fill("#chat-input", "buy cheap followers here")
    await author.press("#chat-input", "Enter")
    message = reporter.locator(".msg:has-text('buy cheap followers here')")
    await message.wait_for()
    assert await author.locator(".msg.mine .msg-report").count() == 0  # not one's own
    await message.locator(".msg-report").click()
    await reporter.wait_for_selector(".notice:has-text('Reported')")

    await admin.goto("/#/admin?tab=reports")
    item = admin.locator("#reports-list .queue-item:has-text('buy cheap followers here')")
    for _ in range(50):  # the chat worker queues the report a moment later
        if await item.count():
            break
        await admin.click("#admin-tabs a[data-tab=flags]")
        await admin.wait_for_selector("#flags-list[data-loaded]")
        await admin.click("#admin-tabs a[data-tab=reports]")
        await admin.wait_for_selector("#reports-list[data-loaded]")
    await shoot(admin, "admin-reports")
    await item.locator(".decision-note").fill("warned the author")
    await item.locator("button[data-verdict=resolve]").click()
    await admin.wait_for_selector("#reports-list:has-text('Nothing here.')")
    await admin.select_option("#reports-status", "resolved")
    await admin.wait_for_selector("#reports-list .queue-item:has-text('warned the author')")

    await admin.click("#admin-tabs a[data-tab=flags]")
    await admin.wait_for_selector("#flags-list[data-loaded]")
    await shoot(admin, "admin-flags")

    # Staff delete the message from the lobby: it disappears for everyone.
    assert await reporter.locator(".msg-delete").count() == 0  # members do not delete
    await in_lobby(admin)
    spam = admin.locator(".msg:has-text('buy cheap followers here')")
    await spam.locator(".msg-delete").click()
    for page in (admin, author, reporter):
        await page.wait_for_selector(".msg:has-text('buy cheap followers here')", state="detached")
