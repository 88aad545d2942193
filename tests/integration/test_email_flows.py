"""The account flows e-mail carries, over REST with the ``email`` worker running and a
real SMTP server: verification, the address-taken notice, password reset, changing the
address, sending limits, preferences and unsubscribing, staff's view, delivery events.
Bad tokens first: malformed, foreign, reused and expired ones change nothing."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest

from tests.conftest import register_user, running_groups, until
from tests.integration.courses_support import eventually, staff
from tests.integration.email_support import mail_to, platform, smtp, text_of, token_in
from tests.smtp_server import RecordingHandler
from typogram.mail.history import EmailHistory
from typogram.mail.suppressions import Reason, Suppressions
from typogram.mail.tokens import EmailTokens, Purpose
from typogram.payments.signature import sign
from typogram.platform import Platform

pytestmark = pytest.mark.integration
__all__ = ["platform", "smtp"]  # fixtures

Server = tuple[RecordingHandler, int]


@pytest.fixture
async def worker(platform: Platform) -> AsyncIterator[None]:
    async with running_groups(platform, ["email"]):
        yield


def handled(platform: Platform) -> float:
    """Events the ``email`` group has finished with."""
    value = platform.metrics.registry.get_sample_value(
        "typogram_events_processed_total",
        {"group": "email", "topic": "email-send", "outcome": "ok"},
    )
    return value or 0.0


def subjects(server: RecordingHandler, address: str) -> list[str]:
    return [str(m["Subject"]) for m in server.messages if address in str(m["To"])]


async def confirm_reset(client: httpx.AsyncClient, token: str, password: str) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": token, "password": password}
    )


async def log_in(client: httpx.AsyncClient, login: str, password: str) -> httpx.Response:
    return await client.post("/api/v1/auth/login", json={"login": login, "password": password})


async def sent_history(platform: Platform, user_id: str) -> list[dict[str, object]]:
    """The user's e-mail history, once every message in it is sent."""

    async def all_sent() -> list[dict[str, object]] | None:
        rows = await EmailHistory(platform.db).of_user(user_id, limit=10)
        return rows if {r["status"] for r in rows} == {"sent"} else None

    return await eventually(all_sent)


async def test_registration_sends_a_verification_link_that_works_once(
    client: httpx.AsyncClient, smtp: Server, worker: None
) -> None:
    server, _ = smtp
    _, auth = await register_user(client, "ada")
    assert (await client.get("/api/v1/users/me", headers=auth)).json()["email_verified"] is False
    mail = await mail_to(server, "ada@example.com", 2)
    assert sorted(str(m["Subject"]) for m in mail) == [
        "Confirm your e-mail address",
        "Welcome to Typogram, ada!",
    ]
    verify_mail = next(m for m in mail if "Confirm" in str(m["Subject"]))
    assert "List-Unsubscribe" not in verify_mail  # a security message
    token = token_in(verify_mail)
    for bad, reason in (("x" * 43, "invalid"), ("not a token", "invalid"), ("", None)):
        response = await client.post("/api/v1/auth/verify-email", json={"token": bad})
        assert response.status_code == 400
        if reason:
            assert response.json()["error"] == {
                "code": "invalid_token",
                "message": "the link is invalid; ask for a new one",
                "fields": {"token": reason},
            }
    reset = await confirm_reset(client, token, "another pass phrase 1")
    assert reset.status_code == 400 and reset.json()["error"]["code"] == "invalid_token"  # foreign
    done = await client.post("/api/v1/auth/verify-email", json={"token": token})
    assert done.status_code == 200, done.text
    assert done.json() == {"email": "ada@example.com", "email_verified": True}
    again = await client.post("/api/v1/auth/verify-email", json={"token": token})
    assert again.status_code == 400 and again.json()["error"]["fields"] == {"token": "used"}
    assert (await client.get("/api/v1/users/me", headers=auth)).json()["email_verified"] is True
    resend = await client.post("/api/v1/auth/verify-email/resend", headers=auth)
    assert resend.status_code == 202 and resend.json() == {"status": "already_verified"}


async def test_registering_a_taken_address_tells_its_holder_and_nothing_else(
    client: httpx.AsyncClient, smtp: Server, worker: None
) -> None:
    server, _ = smtp
    await register_user(client, "ada")
    await mail_to(server, "ada@example.com", 2)
    response = await client.post(
        "/api/v1/auth/register",
        json={"username": "mallory", "email": "ada@example.com", "password": "correct horse"},
    )
    assert response.status_code == 201
    auth = {"Authorization": f"Bearer {response.json()['access_token']}"}
    mail = await mail_to(server, "ada@example.com", 3)
    notice = mail[-1]
    assert notice["Subject"] == "Someone tried to use your address on Typogram"
    assert "#/forgot-password" in text_of(notice) and "token=" not in text_of(notice)
    me = (await client.get("/api/v1/users/me", headers=auth)).json()
    assert me["email"] == "ada@example.com" and me["email_verified"] is False
    # Resending tells the holder again; the newcomer never gets a link for the address.
    assert (await client.post("/api/v1/auth/verify-email/resend", headers=auth)).status_code == 202
    await mail_to(server, "ada@example.com", 4)
    assert all("token=" not in text_of(m) for m in server.messages[2:])


async def test_password_reset_end_to_end(
    client: httpx.AsyncClient, platform: Platform, smtp: Server, worker: None
) -> None:
    server, _ = smtp
    user_id, auth = await register_user(client, "ada")
    await mail_to(server, "ada@example.com", 2)
    for address in ("nobody@example.com", "ADA@example.com"):
        response = await client.post("/api/v1/auth/password-reset", json={"email": address})
        assert response.status_code == 202 and response.json() == {"status": "accepted"}
    reset_mail = (await mail_to(server, "ada@example.com", 3))[-1]
    assert reset_mail["Subject"] == "Reset your Typogram password"
    token = token_in(reset_mail)
    # A password the rules refuse: 400, and the token still works afterwards.
    weak = await confirm_reset(client, token, "short")
    assert weak.status_code == 400 and "password" in weak.json()["error"]["fields"]
    verify_with_it = await client.post("/api/v1/auth/verify-email", json={"token": token})
    assert verify_with_it.status_code == 400  # a reset token is foreign to verification
    done = await confirm_reset(client, token, "a brand new secret phrase")
    assert done.status_code == 200 and done.json() == {"status": "password_changed"}
    assert (await client.get("/api/v1/users/me", headers=auth)).status_code == 401  # revoked
    old = await log_in(client, "ada", "correct horse")
    assert old.status_code == 401
    new = await log_in(client, "ada", "a brand new secret phrase")
    assert new.status_code == 200
    reused = await confirm_reset(client, token, "a third secret phrase")
    assert reused.status_code == 400 and reused.json()["error"]["fields"] == {"token": "used"}
    changed = (await mail_to(server, "ada@example.com", 4))[-1]
    assert changed["Subject"] == "Your Typogram password was changed"
    assert subjects(server, "nobody@example.com") == []
    # An expired token is refused, and nothing changes.
    expired = await EmailTokens(platform.db).issue(user_id, Purpose.RESET, "ada@example.com", -1)
    late = await confirm_reset(client, expired, "a fourth secret phrase")
    assert late.status_code == 400 and late.json()["error"]["fields"] == {"token": "expired"}
    still = await log_in(client, "ada", "a brand new secret phrase")
    assert still.status_code == 200


async def test_sending_limits_hold_against_resend_and_reset(
    client: httpx.AsyncClient, platform: Platform, smtp: Server, worker: None
) -> None:
    server, _ = smtp
    limit = platform.settings.email_limit_per_address_per_hour
    _, auth = await register_user(client, "ada")  # the first verification counts
    codes = [
        (await client.post("/api/v1/auth/verify-email/resend", headers=auth)).status_code
        for _ in range(limit + 2)
    ]
    assert codes[: limit - 1] == [202] * (limit - 1) and set(codes[limit - 1 :]) == {429}
    await mail_to(server, "ada@example.com", limit + 1)  # verifications and the welcome
    before = handled(platform)
    for _ in range(limit + 3):
        response = await client.post(
            "/api/v1/auth/password-reset", json={"email": "ada@example.com"}
        )
        assert response.status_code == 202
    await until(lambda: handled(platform) >= before + limit + 3, within_s=20)
    sent = subjects(server, "ada@example.com")
    assert sent.count("Reset your Typogram password") == 0  # the address is at its limit
    assert sent.count("Confirm your e-mail address") == limit


async def test_changing_the_address_reverifies(
    client: httpx.AsyncClient, smtp: Server, worker: None
) -> None:
    server, _ = smtp
    _, auth = await register_user(client, "ada")
    token = token_in((await mail_to(server, "ada@example.com", 2))[0])
    assert (
        await client.post("/api/v1/auth/verify-email", json={"token": token})
    ).status_code == 200
    wrong = await client.post(
        "/api/v1/users/me/email",
        headers=auth,
        json={"email": "ada@new.example", "current_password": "nope"},
    )
    assert wrong.status_code == 401
    changed = await client.post(
        "/api/v1/users/me/email",
        headers=auth,
        json={"email": "ada@new.example", "current_password": "correct horse"},
    )
    assert changed.status_code == 202
    assert changed.json() == {"email": "ada@new.example", "email_verified": False}
    new_token = token_in((await mail_to(server, "ada@new.example"))[0])
    done = await client.post("/api/v1/auth/verify-email", json={"token": new_token})
    assert done.json() == {"email": "ada@new.example", "email_verified": True}
    login = await log_in(client, "ada@new.example", "correct horse")
    assert login.status_code == 200


async def test_preferences_and_unsubscribing(
    client: httpx.AsyncClient, platform: Platform, smtp: Server, worker: None
) -> None:
    server, _ = smtp
    _, auth = await register_user(client, "ada")
    prefs = await client.get("/api/v1/users/me/email-preferences", headers=auth)
    assert prefs.json() == {
        "announcements": True,
        "billing": True,
        "tournaments": True,
        "achievements": False,
        "streak_reminders": False,
    }
    for bad in ({"security": False}, {"billing": "no"}, {"billing": None, "x": 1}):
        response = await client.patch("/api/v1/users/me/email-preferences", headers=auth, json=bad)
        assert response.status_code == 400
    on = await client.patch(
        "/api/v1/users/me/email-preferences", headers=auth, json={"achievements": True}
    )
    assert on.json()["achievements"] is True
    welcome = next(
        m for m in await mail_to(server, "ada@example.com", 2) if "Welcome" in str(m["Subject"])
    )
    link = str(welcome["List-Unsubscribe"]).strip("<>")
    assert welcome["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    path = link.removeprefix("https://typogram.test")
    page = await client.get(path)
    assert page.status_code == 200 and "Unsubscribe" in page.text
    assert page.headers["x-content-type-options"] == "nosniff"
    still = await client.get("/api/v1/users/me/email-preferences", headers=auth)
    assert still.json()["announcements"] is True  # a GET changes nothing
    one_click = await client.post(path, content=b"List-Unsubscribe=One-Click")
    assert one_click.status_code == 200 and "Unsubscribed" in one_click.text
    after = await client.get("/api/v1/users/me/email-preferences", headers=auth)
    assert after.json()["announcements"] is False and after.json()["achievements"] is True
    for bad_path in (
        "/unsubscribe",
        "/unsubscribe?token=x.y.z",
        path.replace("announcements", "billing"),
    ):
        assert (await client.post(bad_path)).status_code == 400
        assert (await client.get(bad_path)).status_code == 400


async def test_staff_read_a_users_history_with_statuses(
    client: httpx.AsyncClient, platform: Platform, smtp: Server, worker: None
) -> None:
    server, _ = smtp
    user_id, auth = await register_user(client, "ada")
    await mail_to(server, "ada@example.com", 2)
    await sent_history(platform, user_id)
    moderator = await staff(client, platform, "mod", "moderator")
    assert (await client.get("/api/v1/admin/emails?user=ada", headers=auth)).status_code == 403
    assert (await client.get("/api/v1/admin/emails", headers=moderator)).status_code == 400
    assert (await client.get("/api/v1/admin/emails?user=zed", headers=moderator)).status_code == 404
    bad = await client.get("/api/v1/admin/emails?user=ada&before=-1", headers=moderator)
    assert bad.status_code == 400
    page = await client.get("/api/v1/admin/emails?user=ada&limit=1", headers=moderator)
    assert page.status_code == 200, page.text
    body = page.json()
    assert body["user"]["id"] == user_id and len(body["items"]) == 1
    rest = await client.get(
        f"/api/v1/admin/emails?user={user_id}&before={body['next_before']}", headers=moderator
    )
    items = body["items"] + rest.json()["items"]
    assert sorted(i["email_type"] for i in items) == ["verify_email", "welcome"]
    assert {i["status"] for i in items} == {"sent"}


def signed(body: bytes, secret: str, at: int | None = None) -> dict[str, str]:
    return {"Typogram-Signature": sign(body, secret, at or int(time.time()))}


async def test_signed_delivery_events_update_the_history_and_suppress(
    client: httpx.AsyncClient, platform: Platform, smtp: Server, worker: None
) -> None:
    server, _ = smtp
    user_id, _ = await register_user(client, "ada")
    await mail_to(server, "ada@example.com", 2)
    rows = await sent_history(platform, user_id)
    welcome = next(r for r in rows if r["email_type"] == "welcome")
    verify = next(r for r in rows if r["email_type"] == "verify_email")
    secret = platform.settings.email_webhook_secret
    url = "/api/v1/email/events/smtp"
    reports = [
        {"type": "delivered", "message_id": welcome["provider_message_id"]},
        {"type": "bounced", "bounce": "soft", "message_id": verify["provider_message_id"]},
        {"type": "complained", "message_id": welcome["provider_message_id"]},
        {"type": "delivered", "message_id": welcome["provider_message_id"]},  # late: ignored
        {"type": "delivered", "message_id": "<unknown@x>"},
    ]
    body = orjson.dumps(reports)
    for headers, status in (
        ({}, 400),
        ({"Typogram-Signature": "t=1,v1=00"}, 400),
        (signed(body, "another-secret"), 400),
        (signed(body, secret, int(time.time()) - 3600), 400),
    ):
        response = await client.post(url, content=body, headers=headers)
        assert (
            response.status_code == status and response.json()["error"]["code"] == "bad_signature"
        )
    assert (
        await client.post(
            "/api/v1/email/events/sendgrid", content=body, headers=signed(body, secret)
        )
    ).status_code == 404
    malformed = b'[{"type": "opened", "message_id": "x"}]'
    assert (
        await client.post(url, content=malformed, headers=signed(malformed, secret))
    ).status_code == 400
    applied = await client.post(url, content=body, headers=signed(body, secret))
    assert applied.status_code == 200 and applied.json() == {"applied": 3}
    after = {
        r["email_type"]: r["status"]
        for r in await EmailHistory(platform.db).of_user(user_id, limit=10)
    }
    assert after == {"welcome": "complained", "verify_email": "sent"}
    assert await Suppressions(platform.db).reason("ada@example.com") is Reason.COMPLAINED
