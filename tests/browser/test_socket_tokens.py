"""The browser client hands its live socket a fresh token (``auth``) without reconnecting
(issue 14)."""

from __future__ import annotations

import pytest

from tests.browser.conftest import Pages, sign_up
from tests.browser.test_web import unique, wait_online

pytestmark = pytest.mark.browser


async def test_the_socket_token_is_renewed_in_place(pages: Pages) -> None:
    page = await pages.open("signin")
    await sign_up(page, unique("renew"))
    await wait_online(page)
    before = await page.evaluate("JSON.parse(localStorage.getItem('typogram.auth')).access_token")
    session = await page.evaluate("window.__typogram.gateway.session")

    renewed = await page.evaluate("window.__typogram.renewToken()")
    assert renewed["expires_at"] > 0
    after = await page.evaluate("JSON.parse(localStorage.getItem('typogram.auth')).access_token")
    assert after != before  # refreshed over REST, then handed to the socket
    # The same socket and session: no reconnect happened.
    assert await page.evaluate("window.__typogram.gateway.session") == session
    log = await page.evaluate("window.__typogram.stateLog")
    assert "reconnecting" not in log
    pong = await page.evaluate("window.__typogram.gateway.request('ping')")
    assert "ts" in pong
