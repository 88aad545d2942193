"""Webhook intake: verify, store once, hand to the log. Nothing is applied here.

1. The signature (and its timestamp window) is checked on the raw bytes
   before anything of the body is read (``signature.verify``); a failure
   raises ``WebhookRefused`` and stores nothing.
2. A verified event that the platform does not act on (another type, no
   payment of ours in its metadata) is acknowledged and ignored, so the
   provider stops sending it.
3. The event is stored in ``payment_webhook_events`` under its provider's
   event id (the primary key): a second delivery, sequential or
   concurrent, finds it there and is acknowledged as a duplicate with no
   other effect.
4. Then it goes to ``payment-events`` as ``payment.webhook`` (key: the
   payment, so one payment's events stay in order; id derived from the
   provider's event id) and the row is marked published. If publishing
   fails the answer is 503 and the provider retries; a row left
   unpublished (a crash in between) is published by ``publish_pending``,
   which the payments worker runs on a schedule (the table is an outbox).
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from typogram import topics
from typogram.db.database import Database
from typogram.db.schema import payment_webhook_events, payments
from typogram.logs import get_logger
from typogram.payments.ledger import EVENT_VERSION
from typogram.payments.machine import SIGNALS
from typogram.payments.provider import ProviderEvent, decode_event
from typogram.payments.signature import SignatureError, verify
from typogram.ports import Event, EventLog

log = get_logger("typogram.payments.webhooks")
PAYMENT_ID = re.compile(r"\A[0-9a-f]{32}\Z")
Outcome = Literal["accepted", "duplicate", "ignored"]
OUTBOX_BATCH = 200


class WebhookRefused(ValueError):
    """Rule 1: not signed with the secret, outside the window, or not an event."""


class NotPublished(RuntimeError):
    """Rule 4: stored, but the log did not take it; the provider should retry."""


@dataclass(frozen=True, slots=True)
class Received:
    outcome: Outcome
    event_id: str
    payment_id: str | None = None


def log_event(provider: str, event: ProviderEvent, payment_id: str) -> Event:
    """The ``payment.webhook`` event for a stored provider event."""
    obj = event.data.object
    return Event(
        type=topics.PAYMENT_WEBHOOK,
        data={
            "provider": provider,
            "event_id": event.id,
            "type": event.type,
            "signal": SIGNALS[event.type],
            "created": event.created,
            "payment_id": payment_id,
            "intent_id": event.intent_id,
            "amount": obj.amount,
            "amount_refunded": obj.amount_refunded,
            "currency": None if obj.currency is None else obj.currency.upper(),
        },
        key=payment_id,
        version=EVENT_VERSION,
        id=uuid.uuid5(uuid.NAMESPACE_URL, f"webhook:{provider}:{event.id}").hex,
    )


class Intake:
    def __init__(self, db: Database, events: EventLog, *, secret: str, tolerance_s: int) -> None:
        self.db = db
        self.events = events
        self._secret = secret
        self._tolerance_s = tolerance_s

    async def receive(self, provider: str, raw: bytes, header: str | None) -> Received:
        """Rules 1-4; raises ``WebhookRefused`` or ``NotPublished``."""
        try:
            verify(raw, header, self._secret, tolerance_s=self._tolerance_s, now_s=int(time.time()))
            event = decode_event(raw)
        except (SignatureError, ValueError) as exc:
            raise WebhookRefused(str(exc)) from exc
        if event.type not in SIGNALS:
            return Received("ignored", event.id)
        payment_id = await self._payment_of(provider, event)
        if payment_id is None:
            return Received("ignored", event.id)
        now = int(time.time() * 1000)
        try:
            async with self.db.write() as conn:
                await conn.execute(
                    payment_webhook_events.insert().values(
                        provider=provider, event_id=event.id, type=event.type,
                        payment_id=payment_id, created=event.created,
                        body=raw.decode(), received_at=now,
                    )
                )  # fmt: skip
        except IntegrityError:
            return Received("duplicate", event.id, payment_id)
        try:
            await self.events.publish(topics.PAYMENT_EVENTS, log_event(provider, event, payment_id))
        except Exception as exc:
            log.exception("webhook stored, not published", extra={"event_id": event.id})
            raise NotPublished(event.id) from exc
        await self._published(provider, [event.id])
        return Received("accepted", event.id, payment_id)

    async def _payment_of(self, provider: str, event: ProviderEvent) -> str | None:
        """Rule 2: our payment id, from the metadata or the provider's payment id."""
        claimed = event.data.object.metadata.get("payment_id", "")
        if PAYMENT_ID.match(claimed):
            return claimed
        p = payments.c
        async with self.db.read(primary=True) as conn:
            found = await conn.scalar(
                select(p.id).where(
                    p.provider == provider,
                    or_(p.provider_payment_id == event.intent_id,
                        p.provider_intent_id == event.intent_id),
                )
            )  # fmt: skip
        return None if found is None else str(found)

    async def _published(self, provider: str, event_ids: list[str]) -> None:
        w = payment_webhook_events.c
        async with self.db.write() as conn:
            await conn.execute(
                update(payment_webhook_events)
                .where(w.provider == provider, w.event_id.in_(event_ids), w.published_at.is_(None))
                .values(published_at=int(time.time() * 1000))
            )

    async def publish_pending(self, older_than_s: float) -> int:
        """Rule 4: publish stored events still unpublished after ``older_than_s``."""
        w = payment_webhook_events.c
        before = int((time.time() - older_than_s) * 1000)
        async with self.db.read(primary=True) as conn:
            rows = list(
                await conn.execute(
                    select(payment_webhook_events)
                    .where(w.published_at.is_(None), w.received_at < before)
                    .order_by(w.received_at)
                    .limit(OUTBOX_BATCH)
                )
            )
        for row in rows:
            event = decode_event(row.body.encode())
            await self.events.publish(
                topics.PAYMENT_EVENTS, log_event(row.provider, event, row.payment_id)
            )
            await self._published(row.provider, [row.event_id])
        return len(rows)
