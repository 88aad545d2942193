"""Browser fixtures: one ``typogram serve`` and one headless Chromium per session.

The server runs as a subprocess on free ports with a temporary data folder
and the test environment, exactly as a person would start it. Chromium is
Debian's (``/usr/bin/chromium``) driven by Playwright's async API on the
test session's event loop (the sync API would leave its own loop marked as
running between calls and break every asyncio test after it); Playwright
never downloads a browser of its own. Without that binary, or without the
``playwright`` package, every browser test is skipped and says why.

``TYPOGRAM_SCREENSHOTS=1`` makes ``shoot`` write the screenshots in
``docs/screenshots/``; otherwise it does nothing, so a test run leaves the
work tree clean.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

CHROMIUM = Path(os.environ.get("TYPOGRAM_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "docs" / "screenshots"
SERVER_START_S = 30.0
UI_TIMEOUT_MS = 10_000
DESKTOP = {"width": 1100, "height": 720}
PHONE = {"width": 390, "height": 780}


@dataclass(frozen=True)
class Server:
    base_url: str
    ws_port: int
    log: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"typogram serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    pytest.fail(f"typogram serve did not answer /health in {SERVER_START_S} s")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``typogram serve`` on free ports, embedded backends, a fresh data folder."""
    data_dir = tmp_path_factory.mktemp("typogram-data")
    http_port, ws_port = _free_port(), _free_port()
    # Nothing from the caller's TYPOGRAM_* may point this server at real backends.
    env = {k: v for k, v in os.environ.items() if not k.startswith("TYPOGRAM_")}
    env.update(
        TYPOGRAM_ENVIRONMENT="test",
        TYPOGRAM_HOST="127.0.0.1",
        TYPOGRAM_HTTP_PORT=str(http_port),
        TYPOGRAM_WS_PORT=str(ws_port),
        TYPOGRAM_METRICS_PORT=str(_free_port()),
        TYPOGRAM_DATA_DIR=str(data_dir),
        TYPOGRAM_RATE_LIMIT_IP_PER_MIN="100000",
        TYPOGRAM_RATE_LIMIT_USER_PER_MIN="100000",
        # Every browser of the suite signs up and logs in from 127.0.0.1.
        TYPOGRAM_REGISTER_PER_IP_PER_HOUR="100000",
        TYPOGRAM_GUEST_TOKENS_PER_IP_PER_HOUR="100000",
        TYPOGRAM_LOGIN_ATTEMPTS_PER_IP_PER_15MIN="100000",
        TYPOGRAM_LOG_LEVEL="WARNING",
        # Short races keep the browser suite fast: a 2 s countdown, six-word
        # matchmade texts, and two queued players matched after 1 s.
        TYPOGRAM_RACE_COUNTDOWN_MS="2000",
        TYPOGRAM_RACE_WORDS="6",
        TYPOGRAM_MATCH_MAX_WAIT_MS="1000",
    )
    log = data_dir / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "roles", "serve"],
            cwd=data_dir,  # not the repository: configs/default.toml must not apply
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{http_port}"
    try:
        _wait_healthy(url, proc, log)
        yield Server(url, ws_port, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def chromium() -> Path:
    """The Chromium binary; skips the browser tests when it is not installed."""
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture(scope="session")
async def browser(chromium: Path) -> AsyncIterator[Any]:
    """Debian's Chromium through Playwright; skips when either is missing."""
    async_api = pytest.importorskip(
        "playwright.async_api", reason="playwright is not installed (pip install -e '.[test]')"
    )
    async with async_api.async_playwright() as playwright:
        instance = await playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield instance
        finally:
            await instance.close()


class Pages:
    """Opens pages of the client, each in its own context (own storage, own user)."""

    def __init__(self, browser: Any, server: Server) -> None:
        self.browser = browser
        self.server = server
        self.contexts: list[Any] = []
        self.js_errors: list[str] = []

    async def open(self, route: str = "", *, viewport: dict[str, int] = DESKTOP) -> Any:
        context = await self.browser.new_context(viewport=viewport, base_url=self.server.base_url)
        context.set_default_timeout(UI_TIMEOUT_MS)
        self.contexts.append(context)
        page = await context.new_page()
        page.on("pageerror", lambda exc: self.js_errors.append(f"{route}: {exc}"))
        await page.goto(f"/#/{route}")
        await page.wait_for_selector("html[data-ready=true]")
        return page

    async def close(self) -> None:
        for context in self.contexts:
            await context.close()


@pytest.fixture
async def pages(browser: Any, server: Server) -> AsyncIterator[Pages]:
    opened = Pages(browser, server)
    try:
        yield opened
    finally:
        await opened.close()
    assert not opened.js_errors, f"uncaught errors in the page: {opened.js_errors}"


async def shoot(page: Any, name: str) -> None:
    """Saves ``docs/screenshots/<name>.png`` when TYPOGRAM_SCREENSHOTS=1."""
    if os.environ.get("TYPOGRAM_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await page.evaluate("window.scrollTo(0, 0)")  # the sticky header belongs at the top
        await page.screenshot(
            path=str(SCREENSHOTS / f"{name}.png"), full_page=True, animations="disabled"
        )


async def until(page: Any, expression: str, arg: Any = None, timeout_s: float = 10.0) -> None:
    """Wait until ``expression`` (JavaScript, a function of ``arg`` or a plain
    expression) is truthy in the page, evaluating it from here.

    Not ``page.wait_for_function``: that polls inside the page with ``eval``,
    which the client's Content-Security-Policy (``script-src 'self'``) refuses
    whenever the first check is false.
    """
    async with asyncio.timeout(timeout_s):
        while not await page.evaluate(expression, arg):  # noqa: ASYNC110 - polls the page
            await asyncio.sleep(0.05)


async def sign_up(page: Any, username: str) -> None:
    """Sign up as ``username`` through the form; back once the profile shows."""
    await page.goto("/#/signup")
    await page.fill("#signup-form input[name=username]", username)
    await page.fill("#signup-form input[name=email]", f"{username}@example.com")
    await page.fill("#signup-form input[name=password]", "correct horse battery")
    await page.click("#signup-form button[type=submit]")
    await page.wait_for_selector("#profile-name")
