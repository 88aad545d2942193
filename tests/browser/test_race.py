"""Races in two real pages: a private race by code, and two players matched from the queue.

Both pages type with real key presses and uneven gaps at the same time; the
server replays each keystroke log, so a page that sent a wrong log, or one
timed outside the race clock, would not get its place in the standings.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.browser.conftest import PHONE, Pages, shoot, sign_up
from tests.browser.test_screens import reload_until
from tests.browser.test_web import play_as_guest, unique, wait_online
from tests.typing_logs import delays

pytestmark = pytest.mark.browser

PRIVATE_TEXT = "the quick brown fox jumps over a lazy dog"


async def race_text(page: Any) -> str:
    text: str = await page.evaluate(
        "[...document.querySelectorAll('#race-text .ch')].map((s) => s.textContent).join('')"
    )
    return text


async def race_by_hand(page: Any, seed: int, mistake: bool = False) -> None:
    """Waits for the start, then types the text one key at a time with uneven gaps."""
    await page.wait_for_selector("#race-stage[data-phase=running] #race-text", timeout=15_000)
    await page.focus("#race-input")
    text = await race_text(page)
    if mistake:
        await page.keyboard.type("z" if text[0] != "z" else "q")
        await page.wait_for_timeout(120)
        await page.keyboard.press("Backspace")
        await page.wait_for_timeout(150)
    # A person's rhythm (tests.typing_logs), less the time a key press itself takes.
    for ch, wait in zip(text, [*delays(text, wpm=90, seed=seed), 0], strict=True):
        await page.keyboard.type(ch)
        await page.wait_for_timeout(max(1, wait - 15))


async def standings_names(page: Any) -> list[str]:
    await page.wait_for_selector("#race-standings tbody tr", timeout=15_000)
    names: list[str] = await page.eval_on_selector_all(
        "#race-standings tbody tr", "(rows) => rows.map((r) => r.dataset.name)"
    )
    return names


async def open_race(pages: Pages, name: str, **kwargs: Any) -> Any:
    page = await pages.open(**kwargs)
    await play_as_guest(page, name)
    await page.click("nav a[href='#/race']")
    await wait_online(page)
    await page.wait_for_selector("#race-stage[data-phase=idle]")
    return page


async def test_private_race_by_code_two_pages_race_and_see_standings(pages: Pages) -> None:
    ann, bob = unique("ann"), unique("bob")
    host = await open_race(pages, ann)
    guest = await open_race(pages, bob, viewport=PHONE)

    await host.click("#race details summary")
    await host.fill("#race-own-text", PRIVATE_TEXT)
    await host.click("#race-create")
    await host.wait_for_selector("#race-stage[data-phase=lobby] #race-code")
    code = (await host.inner_text("#race-code")).strip()
    assert len(code) == 6

    await guest.fill("#race-code-input", code.lower())  # codes are not case-sensitive
    await guest.click("#race-join")
    await guest.wait_for_selector("#race-wait-host")
    # Both see both players in the lobby before the start.
    for page in (host, guest):
        await page.wait_for_selector(f"#race-track li[data-name='{ann}']")
        await page.wait_for_selector(f"#race-track li[data-name='{bob}']")
    await shoot(host, "race-lobby")

    await host.click("#race-start")
    for page in (host, guest):
        await page.wait_for_selector("#race-countdown")

    async def watch_progress() -> None:
        # While bob types, ann's page shows his bar moving (race.state pushes).
        await host.wait_for_selector(
            f"#race-track li[data-name='{bob}']:not([data-pos='0'])", timeout=15_000
        )

    watcher = asyncio.create_task(watch_progress())
    await asyncio.gather(race_by_hand(host, 1, mistake=True), race_by_hand(guest, 2))
    await watcher
    host_names, guest_names = await standings_names(host), await standings_names(guest)
    assert sorted(host_names) == sorted([ann, bob])
    assert host_names == guest_names
    rows = host.locator("#race-standings tbody tr")
    for i in range(2):
        assert await rows.nth(i).get_attribute("data-place") == str(i + 1)
        assert int(await rows.nth(i).locator("td").nth(2).inner_text()) > 0
    await shoot(host, "race-standings")
    await shoot(guest, "race-standings-phone")


async def test_two_pages_queue_race_and_see_standings(pages: Pages) -> None:
    ann, bob = unique("ann"), unique("bob")
    first = await open_race(pages, ann)
    second = await open_race(pages, bob)
    for page in (first, second):
        await page.select_option("#race-difficulty", "easy")
        await page.click("#race-queue")
        await page.wait_for_selector("#race-stage[data-phase=queued] #race-cancel")
    await shoot(first, "race-queued")
    await first.wait_for_selector(
        "#race-countdown, #race-stage[data-phase=running]", timeout=15_000
    )
    await shoot(first, "race-countdown")

    async def race_and_shoot() -> None:
        await race_by_hand(first, 3)

    async def shoot_midway() -> None:
        await second.wait_for_selector("#race-stage[data-phase=running]", timeout=15_000)
        await second.wait_for_timeout(1200)
        await shoot(second, "race-running")

    await asyncio.gather(race_and_shoot(), race_by_hand(second, 4), shoot_midway())
    assert sorted(await standings_names(first)) == sorted([ann, bob])
    assert sorted(await standings_names(second)) == sorted([ann, bob])


async def test_queue_can_be_cancelled(pages: Pages) -> None:
    page = await open_race(pages, unique("cat"))
    await page.select_option("#race-difficulty", "hard")
    await page.click("#race-queue")
    await page.click("#race-cancel")
    await page.wait_for_selector("#race-stage[data-phase=idle] #race-queue")


async def test_signed_up_racers_see_the_race_and_their_rating_change_in_the_profile(
    pages: Pages,
) -> None:
    names = [unique("rae"), unique("ray")]
    players = []
    for name in names:
        page = await pages.open()
        await sign_up(page, name)
        await page.wait_for_selector("#profile-rating:has-text('unrated')")
        await page.click("nav a[href='#/race']")
        await wait_online(page)
        await page.select_option("#race-difficulty", "easy")
        players.append(page)
    for page in players:
        await page.click("#race-queue")
    await asyncio.gather(*(race_by_hand(p, n) for n, p in enumerate(players)))
    for page in players:
        assert sorted(await standings_names(page)) == sorted(names)

    for page in players:
        await page.click("nav a[href='#/profile']")
        await reload_until(page, "#race-history tr[data-race]")
        row = page.locator("#race-history tbody tr").first
        place = await row.get_attribute("data-place")
        cell = row.locator("td").last
        before = float(await cell.get_attribute("data-before") or "nan")
        after = float(await cell.get_attribute("data-after") or "nan")
        assert before == 0.0 and after >= 0.0  # a new player's displayed rating, then the race's
        assert ("+" in await cell.inner_text()) == (place == "1") or after == before
        assert "/2" in await row.locator("td").nth(2).inner_text()
        await reload_until(page, "#profile-rating:has-text('rank #')")
        assert "1 played" in await page.inner_text("#stat-races")
    await shoot(players[0], "profile-races")


CROSSED_CANCEL = """async ([names, keepSeat]) => {
  const { Gateway } = await import("/js/gateway.js");
  const { RaceState } = await import("/js/race-state.js");
  const { ws_url: url } = await (await fetch("/api/v1/client-config")).json();
  const connect = async (name) => {
    const answer = await fetch("/api/v1/auth/guest", { method: "POST",
      headers: { "content-type": "application/json" }, body: JSON.stringify({ name }) });
    const auth = await answer.json();
    const gateway = new Gateway({ url, getToken: async () => auth.access_token,
      refreshToken: async () => { throw new Error("a guest has nothing to refresh"); } });
    const online = new Promise((resolve) =>
      gateway.on("state", ({ state }) => state === "online" && resolve()));
    gateway.start(auth.user.id);
    await online;
    return gateway;
  };
  const [ann, bob] = [await connect(names[0]), await connect(names[1])];
  // ann's match.found has not reached her client when she cancels: the match crossed it.
  const emit = ann.emit.bind(ann);
  ann.emit = (t, d) => (t === "match.found" ? undefined : emit(t, d));
  const race = new RaceState(ann);
  await race.queue("hard");
  const found = new Promise((resolve) => bob.on("match.found", resolve));
  await bob.request("match.join", { mode: "race", difficulty: "hard", lang: "en" });
  const match = await found;
  let error = null;
  try {
    await ann.request("match.cancel", { ticket: "0".repeat(20) });
  } catch (err) {
    error = { code: err.code, details: err.details };
  }
  await race.cancel({ keepSeat });
  const seen = { race: race.race, phase: race.phase, text: race.text, ticket: race.ticket };
  let again = null;
  try {
    await ann.request("match.join", { mode: "race", difficulty: "hard", lang: "en" });
    again = "queued";
  } catch (err) {
    again = err.code;
  }
  ann.stop();
  bob.stop();
  return { match: { race: match.race, text: match.text }, seen, error, again };
}"""


@pytest.mark.parametrize("keep_seat", [True, False])
async def test_a_cancel_that_crossed_the_match_takes_up_or_leaves_the_seat(
    pages: Pages, keep_seat: bool
) -> None:
    """``match.cancel`` after the match answers ``conflict`` naming the race
    (``details``): the client takes up its seat as if ``match.found`` had come, or,
    walking away from the queue, leaves that race at once (a forfeit)."""
    page = await pages.open()
    out = await page.evaluate(CROSSED_CANCEL, [[unique("ann"), unique("bob")], keep_seat])
    assert out["error"] == {"code": "not_found", "details": {}}  # no details: an empty object
    match = out["match"]
    if keep_seat:
        assert out["seen"] == {
            "race": match["race"],
            "phase": "countdown",
            "text": match["text"],
            "ticket": None,
        }
        assert out["again"] == "conflict"  # seated in that race: one race at a time
    else:
        assert out["seen"] == {"race": None, "phase": "idle", "text": "", "ticket": None}
        assert out["again"] == "queued"  # out of that race (forfeited): free to queue
