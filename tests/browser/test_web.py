"""The web client end to end: a real Chromium against ``typogram serve``.

Each test drives the page the way a person would (forms, clicks, real key
presses) and reads what the page shows; the only hook is
``window.__typogram.dropSocket`` to cut the WebSocket like a bad network.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.browser.conftest import PHONE, Pages, Server, shoot, sign_up
from tests.typing_logs import delays

pytestmark = pytest.mark.browser


# Keeps the token's claims (so it does not look expired) but breaks its signature.
SPOIL_ACCESS_TOKEN = """() => {
  const auth = JSON.parse(localStorage.getItem("typogram.auth"));
  auth.access_token = auth.access_token.replace(/\\.[^.]*$/, ".bad-signature");
  localStorage.setItem("typogram.auth", JSON.stringify(auth));
  return auth.access_token;
}"""


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


async def play_as_guest(page: Any, name: str) -> None:
    await page.fill("#guest-form input[name=name]", name)
    await page.click("#guest-form button[type=submit]")
    await page.wait_for_selector(f"#whoami:text-is('{name}')", state="attached")


async def wait_online(page: Any) -> None:
    await page.wait_for_selector("#conn[data-state=online]")


def test_unknown_api_paths_stay_json_and_pages_are_served(server: Server) -> None:
    page = httpx.get(f"{server.base_url}/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-cache"
    missing = httpx.get(f"{server.base_url}/api/v1/nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    wrong_method = httpx.get(f"{server.base_url}/api/v1/auth/login")
    assert wrong_method.status_code == 405
    config = httpx.get(f"{server.base_url}/api/v1/client-config").json()
    assert config == {"ws_url": f"ws://127.0.0.1:{server.ws_port}/ws"}


async def test_sign_up_then_edit_the_profile(pages: Pages) -> None:
    page = await pages.open("signin")
    await shoot(page, "sign-in")
    username = unique("ada")
    await sign_up(page, username)
    assert await page.inner_text("#profile-email") == f"{username}@example.com"
    await wait_online(page)

    await page.fill("#profile-form input[name=display_name]", "Ada Lovelace")
    await page.select_option("#profile-form select[name=keyboard_layout]", "dvorak")
    await page.fill("#profile-form input[name=country]", "gb")
    await page.click("#profile-form button[type=submit]")
    await page.wait_for_selector("#profile-name:text-is('Ada Lovelace')")
    assert await page.inner_text("#profile-layout") == "dvorak"
    await shoot(page, "profile-desktop")

    # A reload keeps the user signed in (tokens in localStorage).
    await page.set_viewport_size(PHONE)
    await page.reload()
    await page.wait_for_selector("#profile-name:text-is('Ada Lovelace')")
    await shoot(page, "profile-phone")

    # An access token the server refuses is replaced with the refresh token.
    spoiled = await page.evaluate(SPOIL_ACCESS_TOKEN)
    await page.reload()
    await page.wait_for_selector("#profile-name:text-is('Ada Lovelace')")
    auth = await page.evaluate("JSON.parse(localStorage.getItem('typogram.auth'))")
    assert auth["access_token"] not in (spoiled, "")

    await page.click("#logout-all")
    await page.wait_for_selector("#signin-form")
    assert await page.evaluate("localStorage.getItem('typogram.auth')") is None


async def test_guest_play(pages: Pages) -> None:
    page = await pages.open()
    await page.wait_for_selector("#signin-form")  # signed-out visitors land on sign-in
    name = unique("guest")
    await play_as_guest(page, name)
    await wait_online(page)
    assert await page.evaluate("location.hash") == "#/solo"
    await page.click("nav a[href='#/profile']")
    await page.wait_for_selector("#profile:has-text('Guests have no profile')")


async def test_two_pages_chat_in_the_lobby_and_see_each_other(pages: Pages) -> None:
    ann, bob = unique("ann"), unique("bob")
    first = await pages.open()
    await play_as_guest(first, ann)
    second = await pages.open(viewport=PHONE)
    await play_as_guest(second, bob)
    for page in (first, second):
        await page.click("nav a[href='#/lobby']")
        await wait_online(page)

    await first.wait_for_selector(f"#members li[data-name='{bob}'][data-status=online]")
    await second.wait_for_selector(f"#members li[data-name='{ann}'][data-status=online]")

    await first.fill("#chat-input", "hello from ann")
    await first.press("#chat-input", "Enter")
    await second.wait_for_selector(".msg:has-text('hello from ann')")
    await second.fill("#chat-input", "hi ann")
    await second.press("#chat-input", "Enter")
    await first.wait_for_selector(".msg:has-text('hi ann')")

    # Presence: bob steps away, and ann's page shows it.
    await second.select_option("#my-status", "away")
    await first.wait_for_selector(f"#members li[data-name='{bob}'][data-status=away]")
    await shoot(first, "lobby-desktop")
    await shoot(second, "lobby-phone")


async def test_a_dropped_socket_reconnects_and_resumes(pages: Pages) -> None:
    ann, bob = unique("ann"), unique("bob")
    first, second = await pages.open(), await pages.open()
    await play_as_guest(first, ann)
    await play_as_guest(second, bob)
    for page in (first, second):
        await page.click("nav a[href='#/lobby']")
        await wait_online(page)
    await first.wait_for_selector(f"#members li[data-name='{bob}']")

    await first.evaluate("window.__typogram.dropSocket(1500)")
    await first.wait_for_selector("#conn[data-state=reconnecting]")
    # Sent while ann is away: it must reach her through the resume replay.
    await second.fill("#chat-input", "while you were away")
    await second.press("#chat-input", "Enter")
    await second.wait_for_selector(".msg:has-text('while you were away')")

    await first.wait_for_selector("#conn[data-state=online][data-resumed=true]")
    await first.wait_for_selector(".msg:has-text('while you were away')")
    assert await first.inner_text("#conn") == "online · resumed"
    log = await first.evaluate("window.__typogram.stateLog")
    assert log[-2:] == ["reconnecting", "online"]
    # Still in the room: chat keeps flowing both ways.
    await first.fill("#chat-input", "back again")
    await first.press("#chat-input", "Enter")
    await second.wait_for_selector(".msg:has-text('back again')")


async def solo_endpoints_missing(server: Server) -> bool:
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        guest = (await client.post("/api/v1/auth/guest", json={})).json()
        answer = await client.get(
            "/api/v1/tests/new?mode=words&count=5",
            headers={"Authorization": f"Bearer {guest['access_token']}"},
        )
    return answer.status_code == 404


async def type_like_a_person(page: Any, text: str) -> None:
    """One key at a time with a person's rhythm (``tests.typing_logs``): uniform timing
    is refused as robotic, evenly jittered timing flagged."""
    for ch, wait in zip(text, [*delays(text, seed=7), 0], strict=True):
        await page.keyboard.type(ch)
        await page.wait_for_timeout(max(1, wait - 15))


async def test_solo_test_typed_with_real_keys_shows_a_result(pages: Pages, server: Server) -> None:
    if await solo_endpoints_missing(server):
        pytest.skip("GET /api/v1/tests/new answers 404: the typing-test endpoints are not there")
    page = await pages.open()
    await sign_up(page, unique("typist"))
    await page.click("nav a[href='#/solo']")
    await page.wait_for_selector("#test-text")
    await page.select_option("#count", "10")
    await page.wait_for_selector(".stage[data-phase=typing] #test-text .ch")
    text = await page.evaluate(
        "[...document.querySelectorAll('#test-text .ch')].map((s) => s.textContent).join('')"
    )
    assert len(text.split()) == 10
    await shoot(page, "solo-typing")

    wrong = "x" if text[0] != "x" else "y"
    await page.keyboard.type(wrong)  # a mistake, corrected at once
    await page.wait_for_timeout(40)
    await page.keyboard.press("Backspace")
    await page.wait_for_timeout(40)
    await type_like_a_person(page, text[:-1])
    assert int(await page.inner_text("#live-wpm")) > 0
    await page.keyboard.type(text[-1])

    await page.wait_for_selector("#result[data-saved=true]")
    assert int(await page.inner_text("#result-wpm")) > 0
    assert (await page.inner_text("#result-acc")).endswith("%")
    flag = page.locator("#result-flag")
    assert await flag.count() == 0, await flag.inner_text()
    assert await page.is_visible("#personal-best")  # the first result is a personal best
    assert await page.locator("#result svg.chart path.chart-line").count() == 1
    assert await page.locator("#error-breakdown tbody tr").count() == 1
    await shoot(page, "solo-result")
