"""Mail in the user's language through the whole pipeline: REST registration (its
``Accept-Language``) and the profile set the language, the ``email`` worker writes the
message in it. The embedded backend delivers to its Maildir, the distributed one to a
real SMTP server. Bad languages are refused with the field named."""

from __future__ import annotations

import mailbox
from collections.abc import AsyncIterator, Callable
from email import message_from_bytes, policy
from email.message import EmailMessage

import httpx
import pytest

from tests.conftest import cheap_passwords, empty_tables, running_groups, until
from tests.integration.email_support import SITE, mail_settings, smtp, text_of
from tests.smtp_server import RecordingHandler
from typogram.mail.maildir import MaildirTransport
from typogram.platform import Platform, open_platform
from typogram.settings import Settings

pytestmark = pytest.mark.integration
__all__ = ["smtp"]  # a fixture

Inbox = Callable[[], list[EmailMessage]]


@pytest.fixture
async def platform(
    backend: str, backend_settings: Settings, request: pytest.FixtureRequest
) -> AsyncIterator[Platform]:
    """Embedded: the default Maildir under the data directory. Distributed: the test's
    SMTP server."""
    if backend == "embedded":
        settings = backend_settings.replace(public_url=SITE, worker_retry_backoff_s=0.01)
    else:
        settings = mail_settings(backend_settings, request.getfixturevalue("smtp")[1])
    async with open_platform(settings, migrate=True, passwords=cheap_passwords()) as p:
        try:
            yield p
        finally:
            await empty_tables(p)


@pytest.fixture
def inbox(backend: str, platform: Platform, request: pytest.FixtureRequest) -> Inbox:
    """Every message delivered so far, however the backend delivers."""
    if backend == "embedded":
        assert isinstance(platform.mail, MaildirTransport)
        path = platform.mail.path

        def from_maildir() -> list[EmailMessage]:
            if not path.exists():
                return []
            box = mailbox.Maildir(path, factory=None, create=False)
            found = []
            for key in box.iterkeys():
                parsed = message_from_bytes(box.get_bytes(key), policy=policy.default)
                assert isinstance(parsed, EmailMessage)
                found.append(parsed)
            return found

        return from_maildir
    server: RecordingHandler = request.getfixturevalue("smtp")[0]
    return lambda: list(server.messages)


@pytest.fixture
async def worker(platform: Platform) -> AsyncIterator[None]:
    async with running_groups(platform, ["email"]):
        yield


async def arrived(inbox: Inbox, address: str, n: int) -> dict[str, EmailMessage]:
    """Wait until ``address`` got ``n`` messages; them by subject."""

    def mine() -> list[EmailMessage]:
        return [m for m in inbox() if address in str(m["To"])]

    await until(lambda: len(mine()) >= n, within_s=20.0)
    return {str(m["Subject"]): m for m in mine()}


async def register(
    client: httpx.AsyncClient, name: str, accept_language: str | None
) -> tuple[dict[str, str], dict[str, object]]:
    headers = {"Accept-Language": accept_language} if accept_language is not None else {}
    response = await client.post(
        "/api/v1/auth/register",
        json={"username": name, "email": f"{name}@example.com", "password": "correct horse"},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return {"Authorization": f"Bearer {body['access_token']}"}, body["user"]


async def test_a_french_speaker_gets_french_mail(
    client: httpx.AsyncClient, inbox: Inbox, worker: None
) -> None:
    auth, user = await register(client, "zoe", "fr-CA,fr;q=0.9,en;q=0.5")
    assert user["language"] == "fr"
    assert (await client.get("/api/v1/users/me", headers=auth)).json()["language"] == "fr"
    mail = await arrived(inbox, "zoe@example.com", 2)
    assert set(mail) == {"Bienvenue sur Typogram, zoe !", "Confirmez votre adresse e-mail"}
    verify = mail["Confirmez votre adresse e-mail"]
    assert text_of(verify).startswith("Bonjour zoe,")
    assert "Veuillez confirmer" in text_of(verify) and f"{SITE}/#/verify-email?token=" in (
        text_of(verify)
    )
    html = verify.get_body(("html",))
    assert html is not None and '<html lang="fr">' in html.get_content()
    assert "List-Unsubscribe" not in verify  # a security message, in any language
    welcome = mail["Bienvenue sur Typogram, zoe !"]
    assert welcome["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    # Changed on the profile: the next message is in the new language.
    changed = await client.patch("/api/v1/users/me", json={"language": "de"}, headers=auth)
    assert changed.status_code == 200 and changed.json()["language"] == "de"
    resend = await client.post("/api/v1/auth/verify-email/resend", headers=auth)
    assert resend.status_code == 202, resend.text
    mail = await arrived(inbox, "zoe@example.com", 3)
    assert "Bestätigen Sie Ihre E-Mail-Adresse" in mail


async def test_without_a_platform_language_mail_is_in_english(
    client: httpx.AsyncClient, inbox: Inbox, worker: None
) -> None:
    for name, header in (("ann", None), ("bob", "zh-CN, ja;q=0.8"), ("cyd", "fr;q=0")):
        _, user = await register(client, name, header)
        assert user["language"] == "en"
    # A platform language without a catalog is kept, and its mail reads in English.
    _, user = await register(client, "tom", "tr-TR")
    assert user["language"] == "tr"
    mail = await arrived(inbox, "tom@example.com", 2)
    assert set(mail) == {"Welcome to Typogram, tom!", "Confirm your e-mail address"}


async def test_a_bad_language_is_refused_with_the_field(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    auth, _ = await register(client, "eve", "pl")
    for bad in ("xx", "FR", "fr-FR", "", "en\r\nBcc: x@y.z", "é" * 20):
        response = await client.patch("/api/v1/users/me", json={"language": bad}, headers=auth)
        assert response.status_code == 400, (bad, response.text)
        error = response.json()["error"]
        assert error["code"] == "bad_request" and "language" in str(error), error
    for bad_type in (7, None, ["fr"]):
        response = await client.patch("/api/v1/users/me", json={"language": bad_type}, headers=auth)
        assert response.status_code == 400, (bad_type, response.text)
    me = (await client.get("/api/v1/users/me", headers=auth)).json()
    assert me["language"] == "pl"
