"""The e-mail worker's job: one ``email.send`` event to one message handed over, once.

Rules:

1. The history row decides: a message not ``queued`` is done (sent or
   failed), so a redelivered event sends nothing (``history`` rule 2).
2. While one worker sends a message it holds ``email:{id}:sending`` (set if
   absent, expiring after the longest a send can take); a redelivery that
   finds it held raises ``SendInProgress`` and the runtime tries again
   later, by when the row says ``sent``. What remains is the window
   between the server accepting a message and the row saying so: a crash
   there sends it again, with the same ``Message-ID``.
3. Before sending: a suppressed address (``suppressions.blocks``) or a
   category the user turned off fails the message, without a try.
4. A temporary refusal is retried here, ``max_attempts`` in all, waiting
   ``backoff_s`` doubling up to ``backoff_max_s`` in between (each attempt
   and its error recorded); then the message is ``failed``. A permanent
   refusal fails it at once. A malformed event (a missing field, an unknown
   kind, a template value it lacks) raises: the runtime's retries, then the
   DLQ.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from typogram import keys
from typogram.mail.catalog import kind_of
from typogram.mail.history import EmailHistory, Status
from typogram.mail.links import unsubscribe_url
from typogram.mail.port import MailTransport, PermanentMailError, TemporaryMailError
from typogram.mail.preferences import Preferences
from typogram.mail.render import Letter, Renderer
from typogram.mail.suppressions import Suppressions, blocks
from typogram.ports import Cache


class SendJob(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The data of an ``email.send`` event (``outbox.Outbox.enqueue``)."""

    message_id: str
    created_at: int
    kind: str
    user_id: str
    to: str
    name: str
    params: dict[str, Any]
    lang: str = "en"  # events queued before languages read in English

    @classmethod
    def of(cls, data: object) -> SendJob:
        """Raises ``ValueError`` for data that is not a send job."""
        try:
            return msgspec.convert(data, cls)
        except msgspec.ValidationError as exc:
            raise ValueError(f"not an email.send event: {exc}") from exc


class SendInProgress(RuntimeError):
    """Another worker is sending this message right now (rule 2)."""


@dataclass
class Sender:
    history: EmailHistory
    preferences: Preferences
    suppressions: Suppressions
    transport: MailTransport
    renderer: Renderer
    cache: Cache
    unsubscribe_secret: str
    site_url: str
    max_attempts: int = 5
    backoff_s: float = 1.0
    backoff_max_s: float = 30.0
    lease_s: float = 60.0
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    async def deliver(self, job: SendJob) -> Status | None:
        """Carry out rules 1-4; the status the message ended in, ``None`` when it was done
        already."""
        kind = kind_of(job.kind)
        row = await self.history.get(job.message_id, job.created_at)
        if row is None:
            raise LookupError(f"no history row for message {job.message_id}")
        if row["status"] != Status.QUEUED.value:
            return None
        lease = keys.email_sending(job.message_id)
        if not await self.cache.set_if_absent(lease, b"1", ttl=self.lease_s):
            raise SendInProgress(job.message_id)
        try:
            return await self._deliver(job, kind.category is None, int(row["attempts"]))
        finally:
            await self.cache.delete(lease)

    async def _deliver(self, job: SendJob, security: bool, attempts: int) -> Status:
        kind = kind_of(job.kind)
        reason = await self.suppressions.reason(job.to)
        if blocks(reason, security=security):
            return await self._fail(job, attempts, f"suppressed: {reason}")
        if kind.category is not None and not await self.preferences.enabled(
            job.user_id, kind.category
        ):
            return await self._fail(job, attempts, "unsubscribed")
        unsubscribe = None
        if kind.category is not None:
            unsubscribe = unsubscribe_url(
                self.site_url, self.unsubscribe_secret, job.user_id, kind.category
            )
        letter = Letter(
            job.message_id, job.kind, job.to, job.name, job.params, unsubscribe, job.lang
        )
        try:
            message = self.renderer.render(letter)
        except PermanentMailError as exc:
            return await self._fail(job, attempts, str(exc))
        while True:
            attempts += 1
            try:
                provider_id = await self.transport.send(message)
            except PermanentMailError as exc:
                return await self._fail(job, attempts, str(exc))
            except TemporaryMailError as exc:
                if attempts >= self.max_attempts:
                    return await self._fail(job, attempts, f"gave up: {exc}")
                await self.history.attempted(job.message_id, job.created_at, attempts, str(exc))
                await self.sleep(min(self.backoff_s * 2 ** (attempts - 1), self.backoff_max_s))
                continue
            await self.history.sent(
                job.message_id,
                job.created_at,
                attempts=attempts,
                provider=self.transport.name,
                provider_id=provider_id,
            )
            return Status.SENT

    async def _fail(self, job: SendJob, attempts: int, error: str) -> Status:
        await self.history.failed(job.message_id, job.created_at, attempts=attempts, error=error)
        return Status.FAILED
