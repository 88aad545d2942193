"""What producers call to send a message: record it ``queued``, publish it to ``email-send``.

Rules:

1. ``enqueue`` inserts the history row, then publishes an ``email.send``
   event keyed by the user id (one user's mail stays in order on one of the
   topic's 20 partitions). Nothing is sent on the caller's path: a mail
   server that is down never blocks a request.
2. A non-security message whose category the user turned off is not
   queued at all (``None``); the worker checks again before sending.
3. A message made from another event (a receipt from ``payment.succeeded``)
   takes its id and time from that event (``message_id``, ``created_at``),
   so the event delivered again finds its message: queued, it is published
   again (the worker sends it once); already sent or failed, nothing happens.
4. ``allow`` keeps the sending limits: at most ``per_user`` messages an hour
   caused by one user and ``per_address`` to one address (a SHA-256 of it
   names the counter, never the address), whoever asks. Both counters move
   in one round trip; over either limit raises ``SendingLimited``.
5. The event names the language the user chose for mail when it was
   queued (``lang``); the worker writes the message in it.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from typogram import keys, topics
from typogram.accounts import now_ms
from typogram.mail.catalog import kind_of
from typogram.mail.history import EmailHistory, Status, queued_row
from typogram.mail.preferences import Preferences
from typogram.ports import Cache, Event, EventLog

HOUR_S = 3600


class SendingLimited(Exception):
    """Over a sending limit; ``retry_after`` seconds until the window turns."""

    def __init__(self, scope: str, retry_after: int) -> None:
        super().__init__(f"too many e-mails for this {scope}, try again later")
        self.scope = scope
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Outbox:
    history: EmailHistory
    preferences: Preferences
    events: EventLog
    cache: Cache
    per_user: int
    per_address: int
    # The language a user's mail is written in (``None``: English).
    language_of: Callable[[str], Awaitable[str]] | None = None

    async def allow(self, user_id: str, address: str) -> None:
        """Rule 4: count one message for the user and the address, or raise."""
        now = time.time()
        window = int(now // HOUR_S)
        digest = hashlib.sha256(address.lower().encode()).hexdigest()[:32]
        sent_by_user, sent_to_address = await self.cache.incr_each(
            [
                keys.email_allowance("user", user_id, window),
                keys.email_allowance("address", digest, window),
            ],
            ttl=HOUR_S,
        )
        retry_after = (window + 1) * HOUR_S - int(now)
        if sent_by_user > self.per_user:
            raise SendingLimited("account", retry_after)
        if sent_to_address > self.per_address:
            raise SendingLimited("address", retry_after)

    async def enqueue(
        self,
        kind_name: str,
        *,
        user_id: str,
        to: str,
        name: str,
        params: Mapping[str, Any] | None = None,
        message_id: str | None = None,
        created_at: int | None = None,
    ) -> str | None:
        """Queue one message; its id, or ``None`` when the user turned its category off
        (or, rule 3, when the message was already handled)."""
        kind = kind_of(kind_name)
        if kind.category is not None and not await self.preferences.enabled(user_id, kind.category):
            return None
        known = None
        if message_id is not None and created_at is not None:
            known = await self.history.get(message_id, created_at)
            if known is not None and known["status"] != Status.QUEUED.value:
                return None
        message_id = message_id or uuid.uuid4().hex
        created_at = now_ms() if created_at is None else created_at
        if known is None:
            await self.history.insert(
                queued_row(
                    message_id=message_id,
                    created_at=created_at,
                    user_id=user_id,
                    email_type=kind.name,
                    address=to,
                )
            )
        data = {
            "message_id": message_id,
            "created_at": created_at,
            "kind": kind.name,
            "user_id": user_id,
            "to": to,
            "name": name,
            "params": dict(params or {}),
            "lang": await self.language_of(user_id) if self.language_of else "en",
        }
        await self.events.publish(
            topics.EMAIL_SEND,
            Event(type=topics.EMAIL_MESSAGE, data=data, key=user_id, id=message_id),
        )
        return message_id
