"""The ``email`` group end to end: outbox → ``email-send`` → worker → a real SMTP server,
on both backends; retries, permanent refusals, a server that is down, suppressions,
preferences, redelivery and poison messages."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import pytest

from tests.conftest import cheap_passwords, empty_tables, running_groups, until
from tests.integration.courses_support import eventually
from tests.integration.email_support import mail_settings, platform, smtp
from tests.smtp_server import RecordingHandler, free_port
from typogram import topics
from typogram.mail.catalog import Category
from typogram.mail.history import EmailHistory, Status
from typogram.mail.outbox import Outbox
from typogram.mail.preferences import Preferences
from typogram.mail.services import outbox_of
from typogram.mail.suppressions import Reason, Suppressions
from typogram.platform import Platform, open_platform
from typogram.ports import Event, EventLog
from typogram.settings import Settings
from workers import mail
from workers.runtime import GroupRunner

pytestmark = pytest.mark.integration
__all__ = ["platform", "smtp"]  # fixtures


class Recorder:
    """Forwards to the real log and keeps what was published (to replay it by hand)."""

    def __init__(self, log: EventLog) -> None:
        self.log = log
        self.events: list[Event] = []

    async def publish(self, topic: str, event: Event) -> None:
        self.events.append(event)
        await self.log.publish(topic, event)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.log, name)


def recording(platform: Platform) -> tuple[Outbox, Recorder]:
    recorder = Recorder(platform.events)
    return dataclasses.replace(outbox_of(platform), events=recorder), recorder  # type: ignore[arg-type]


async def process(platform: Platform, events: Sequence[Event]) -> None:
    runner = GroupRunner(platform, mail.GROUP)
    for event in events:
        await runner.process(topics.EMAIL_SEND, event.encode())


async def status_of(platform: Platform, event: Event) -> dict[str, Any]:
    row = await EmailHistory(platform.db).get(event.data["message_id"], event.data["created_at"])
    assert row is not None
    return row


async def test_a_queued_message_is_sent_once_even_when_redelivered(
    platform: Platform, smtp: tuple[RecordingHandler, int]
) -> None:
    server, _ = smtp
    outbox, recorder = recording(platform)
    message_id = await outbox.enqueue(
        "welcome", user_id="u1", to="ada@example.com", name="Ada", params={}
    )
    (event,) = recorder.events
    assert event.id == message_id and event.key == "u1"
    assert (await status_of(platform, event))["status"] == Status.QUEUED
    await process(platform, [event, event])  # a redelivery
    await process(platform, [event])
    assert len(server.messages) == 1
    sent = server.messages[0]
    assert sent["Subject"].startswith("Welcome") and sent["To"] == "Ada <ada@example.com>"
    assert sent["Message-ID"] == f"<{message_id}@typogram.local>"
    assert sent["List-Unsubscribe"].startswith("<https://typogram.test/unsubscribe?token=u1.")
    row = await status_of(platform, event)
    assert row["status"] == Status.SENT and row["attempts"] == 1 and row["sent_at"]
    assert row["provider"] == "smtp" and row["provider_message_id"] == sent["Message-ID"]


async def test_temporary_refusals_are_retried_then_sent(
    platform: Platform, smtp: tuple[RecordingHandler, int]
) -> None:
    server, _ = smtp
    server.refuse_next = ["451 4.3.0 try later", "421 4.7.0 slow down"]
    outbox, recorder = recording(platform)
    await outbox.enqueue(
        "password_changed", user_id="u1", to="a@x.test", name="A", params={"link": "l"}
    )
    await process(platform, recorder.events)
    row = await status_of(platform, recorder.events[0])
    assert row["status"] == Status.SENT and row["attempts"] == 3
    assert len(server.messages) == 1


async def test_a_permanent_refusal_fails_at_once(
    platform: Platform, smtp: tuple[RecordingHandler, int]
) -> None:
    server, _ = smtp
    server.refuse_rcpt["gone@x.test"] = "550 5.1.1 no such user"
    outbox, recorder = recording(platform)
    await outbox.enqueue(
        "password_changed", user_id="u1", to="gone@x.test", name="A", params={"link": "l"}
    )
    await process(platform, recorder.events)
    row = await status_of(platform, recorder.events[0])
    assert row["status"] == Status.FAILED and row["attempts"] == 1 and "550" in row["error"]
    assert server.attempts == 1


async def test_a_server_that_stays_down_ends_in_failed_and_never_blocks_the_producer(
    backend_settings: Settings,
) -> None:
    settings = mail_settings(backend_settings, free_port())  # nobody listens there
    async with open_platform(settings, migrate=True, passwords=cheap_passwords()) as platform:
        try:
            outbox, recorder = recording(platform)
            await outbox.enqueue(
                "password_changed", user_id="u1", to="a@x.test", name="A", params={"link": "l"}
            )
            await process(platform, recorder.events)
            row = await status_of(platform, recorder.events[0])
            assert row["status"] == Status.FAILED and row["attempts"] == 3
            assert row["error"].startswith("gave up")
            dead = await dead_letters(platform)
            assert recorder.events[0].id.encode() not in {d.key.encode() for d in dead if d.key}
            assert all(recorder.events[0].id.encode() not in d.value for d in dead)
        finally:
            await empty_tables(platform)


async def test_suppressed_addresses_and_categories_turned_off(
    platform: Platform, smtp: tuple[RecordingHandler, int]
) -> None:
    server, _ = smtp
    suppressions = Suppressions(platform.db)
    await suppressions.add("Bounced@x.test", Reason.BOUNCED)
    await suppressions.add("complained@x.test", Reason.COMPLAINED)
    assert not await suppressions.add("bounced@x.test", Reason.COMPLAINED)  # the first stays
    outbox, recorder = recording(platform)
    link = {"link": "l"}
    await outbox.enqueue(
        "password_changed", user_id="u1", to="bounced@x.test", name="A", params=link
    )
    await outbox.enqueue(
        "password_changed", user_id="u2", to="complained@x.test", name="B", params=link
    )
    await outbox.enqueue("welcome", user_id="u2", to="complained@x.test", name="B", params={})
    # Opt-in categories are off until chosen: nothing is even queued.
    achievement = {"title": "t", "description": "d"}
    assert (
        await outbox.enqueue(
            "achievement_unlocked", user_id="u3", to="c@x.test", name="C", params=achievement
        )
        is None
    )
    await Preferences(platform.db).set("u3", {Category.ACHIEVEMENTS: True})
    await outbox.enqueue(
        "achievement_unlocked", user_id="u3", to="c@x.test", name="C", params=achievement
    )
    await Preferences(platform.db).set("u3", {Category.ACHIEVEMENTS: False})  # turned off meanwhile
    await process(platform, recorder.events)
    statuses = [(await status_of(platform, e))["status"] for e in recorder.events]
    assert statuses == [Status.FAILED, Status.SENT, Status.FAILED, Status.FAILED]
    errors = [(await status_of(platform, e))["error"] for e in recorder.events]
    assert errors[0] == "suppressed: bounced" and errors[3] == "unsubscribed"
    assert [m["To"] for m in server.messages] == ["B <complained@x.test>"]


async def test_poison_messages_go_to_the_dead_letter_topic(
    platform: Platform, smtp: tuple[RecordingHandler, int]
) -> None:
    runner = GroupRunner(platform, mail.GROUP)
    before = len(await dead_letters(platform))  # the session's topic: other tests' too
    bad_kind = Event(
        type="email.send",
        data={
            "message_id": "m",
            "created_at": 1,
            "kind": "nope",
            "user_id": "u",
            "to": "a@x.test",
            "name": "A",
            "params": {},
        },
    )
    missing = Event(type="email.send", data={"message_id": "m"})
    outbox, recorder = recording(platform)
    await outbox.enqueue(
        "password_reset", user_id="u1", to="a@x.test", name="A", params={"link": "l"}
    )  # no "minutes"
    for raw in (b"not json", bad_kind.encode(), missing.encode(), recorder.events[0].encode()):
        await runner.process(topics.EMAIL_SEND, raw)

    async def all_four() -> int | None:  # Kafka makes a record readable a moment later
        count = len(await dead_letters(platform))
        return count if count >= before + 4 else None

    await eventually(all_four, 10)
    await asyncio.sleep(0.2)
    assert len(await dead_letters(platform)) == before + 4
    assert smtp[0].messages == []


async def dead_letters(platform: Platform) -> list[Any]:
    return await platform.events.read_back(topics.dead_letter(topics.EMAIL_SEND), 10_000)


async def test_the_running_group_sends_what_producers_queue(
    platform: Platform, smtp: tuple[RecordingHandler, int]
) -> None:
    server, _ = smtp
    async with running_groups(platform, ["email"]):
        outbox = outbox_of(platform)
        for n in range(5):
            await outbox.enqueue(
                "welcome", user_id=f"u{n}", to=f"u{n}@x.test", name=f"U{n}", params={}
            )
        await until(lambda: len(server.messages) == 5, within_s=20)
    assert sorted(str(m["To"]) for m in server.messages) == [
        f"U{n} <u{n}@x.test>" for n in range(5)
    ]


async def test_payment_events_become_one_receipt_each(
    platform: Platform, smtp: tuple[RecordingHandler, int]
) -> None:
    server, _ = smtp
    user = await platform.accounts.create_user("ada", "ada@example.com", "x")
    paid = Event(
        type="payment.succeeded",
        data={
            "id": "p1",
            "user_id": user.id,
            "amount": 999,
            "currency": "eur",
            "plan_id": "pro",
            "plan_name": "Pro monthly",
        },
        key=user.id,
    )
    failed = Event(type="payment.failed", data={"id": "p2", "user_id": user.id}, key=user.id)
    runner = GroupRunner(platform, mail.NOTICES_GROUP)
    for event in (paid, failed, paid):  # the receipt's event delivered twice
        await runner.process(topics.PAYMENT_EVENTS, event.encode())
    (row,) = await EmailHistory(platform.db).of_user(user.id, limit=10)
    assert row["email_type"] == "payment_receipt" and row["created_at"] == paid.ts
    # The queued receipt is published on email-send; hand it to the worker as Kafka would.
    job = Event(
        type="email.send",
        id=row["id"],
        key=user.id,
        data={
            "message_id": row["id"],
            "created_at": row["created_at"],
            "kind": "payment_receipt",
            "user_id": user.id,
            "to": "ada@example.com",
            "name": "ada",
            "params": {"amount": "9.99 EUR", "plan": "Pro monthly", "payment_id": "p1"},
        },
    )
    await process(platform, [job, job])
    await runner.process(topics.PAYMENT_EVENTS, paid.encode())  # after sending: nothing new
    assert [str(m["Subject"]) for m in server.messages] == ["Your Typogram receipt"]
    assert "9.99 EUR" in str(server.messages[0].get_body(("plain",)).get_content())


async def test_reminders_tell_entrants_and_opted_in_streaks_once(
    platform: Platform, smtp: tuple[RecordingHandler, int]
) -> None:
    import datetime as dt

    from typogram.db.schema import challenge_streaks, tournament_participants, tournaments

    ada = await platform.accounts.create_user("ada", "ada@example.com", "x")
    bob = await platform.accounts.create_user("bob", "bob@example.com", "x")
    now = int(time.time() * 1000)
    yesterday = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()
    async with platform.db.write() as conn:
        await conn.execute(
            tournaments.insert().values(
                id="t1", title="Friday cup", opens_at=now - 1000, starts_at=now + 60_000,
                ends_at=now + 3_600_000, max_participants=10, scoring="points",
                points_by_place="[3,2,1]", status="open", created_by="x", created_at=now,
            )
        )  # fmt: skip
        for user_id, guest in ((ada.id, 0), ("guest:g1", 1)):
            await conn.execute(
                tournament_participants.insert().values(
                    tournament_id="t1", user_id=user_id, name="n", joined_at=now, guest=guest
                )
            )
        for user in (ada, bob):
            await conn.execute(
                challenge_streaks.insert().values(
                    user_id=user.id, last_date=yesterday, current=5, best=5, updated_at=now
                )
            )
    await Preferences(platform.db).set(bob.id, {Category.STREAK_REMINDERS: True})
    assert await mail.remind(platform) == 2  # ada's tournament, bob's streak (ada: opt-in off)
    await mail.remind(platform)  # still queued: published again, never a second message
    history = EmailHistory(platform.db)
    kinds = {
        user.id: [r["email_type"] for r in await history.of_user(user.id, limit=5)]
        for user in (ada, bob)
    }
    assert kinds == {ada.id: ["tournament_starting"], bob.id: ["streak_reminder"]}
