"""Fixtures for the e-mail tests: a real SMTP server (aiosmtpd) the platform sends to,
on both backends, and helpers to read what arrived."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from tests.conftest import cheap_passwords, empty_tables, until
from tests.smtp_server import RecordingHandler, smtp_server
from typogram.platform import Platform, open_platform
from typogram.settings import Settings

SITE = "https://typogram.test"


@pytest.fixture
def smtp() -> Iterator[tuple[RecordingHandler, int]]:
    with smtp_server() as server:
        yield server


def mail_settings(settings: Settings, port: int) -> Settings:
    """Sending to the test's server, with short waits."""
    return settings.replace(
        smtp_url=f"smtp://127.0.0.1:{port}",
        smtp_timeout_s=2.0,
        email_max_attempts=3,
        email_retry_backoff_s=0.01,
        worker_max_retries=1,
        worker_retry_backoff_s=0.01,
        public_url=SITE,
    )


@pytest.fixture
async def platform(
    backend_settings: Settings, smtp: tuple[RecordingHandler, int]
) -> AsyncIterator[Platform]:
    """The shared ``platform`` fixture, sending mail to ``smtp``."""
    settings = mail_settings(backend_settings, smtp[1])
    async with open_platform(settings, migrate=True, passwords=cheap_passwords()) as p:
        try:
            yield p
        finally:
            await empty_tables(p)


async def mail_to(
    server: RecordingHandler, address: str, n: int = 1, within_s: float = 20.0
) -> list[EmailMessage]:
    """Wait until ``address`` got ``n`` messages; them, oldest first."""

    def arrived() -> list[EmailMessage]:
        return [m for m in server.messages if address in str(m["To"])]

    await until(lambda: len(arrived()) >= n, within_s=within_s)
    return arrived()


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def token_in(message: EmailMessage) -> str:
    """The ``token`` of the first link to the site in the message's text part."""
    for url in re.findall(r"https://typogram\.test/\S+", text_of(message)):
        fragment = urlsplit(url).fragment  # "#/reset-password?token=…"
        query = parse_qs(fragment.partition("?")[2])
        if "token" in query:
            return unquote(query["token"][0])
    raise AssertionError("no token link in the message")
