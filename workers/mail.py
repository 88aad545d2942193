"""E-mail groups. ``email`` (``email-send``, 20 partitions): render and send each
queued message, once; turn password-reset requests into reset mail.
``email-notices`` (``payment-events``): turn payment and subscription events
into receipts and notices, and every ``email_reminder_interval_s`` queue
tournament notices and streak reminders.

The sending rules live in ``typogram.mail.sender``, the reset rules in
``typogram.mail.account_mail`` (rule 3: the worker, not the request, looks
the address up), which events become mail in ``typogram.mail.notices``.
Idempotent by message id through the history row, so the runtime's
done-markers are not needed (``dedupe=False``): a replayed ``email.send``
finds its message sent or failed, and a replayed payment event finds the
message it made (its id comes from the event's).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from typogram import topics
from typogram.logs import get_logger
from typogram.mail.notices import notice_for, once
from typogram.mail.reminders import streak_reminders, tournament_notices
from typogram.mail.sender import SendJob
from typogram.mail.services import account_mail_of, sender_of
from typogram.ports import Event
from workers.runtime import Group, Periodic

if TYPE_CHECKING:
    from typogram.platform import Platform

log = get_logger("typogram.workers.mail")


async def handle_notice(platform: Platform, topic: str, event: Event) -> None:
    notice = notice_for(event.type, event.data)
    if notice is not None:
        kind, user_id, params = notice
        identity = once(event.id, kind, event.ts)
        await account_mail_of(platform).notify(kind, user_id, params, **identity)


async def handle(platform: Platform, topic: str, event: Event) -> None:
    if event.type == topics.PASSWORD_RESET_REQUESTED:
        address = event.data.get("address")
        if not isinstance(address, str) or not 3 <= len(address) <= 254:
            raise ValueError("a reset request needs an address")
        await account_mail_of(platform).request_reset(address.lower())
        return
    if event.type != topics.EMAIL_MESSAGE:
        return
    job = SendJob.of(event.data)
    status = await sender_of(platform).deliver(job)
    log.debug(
        "e-mail handled",
        extra={"message_id": job.message_id, "kind": job.kind, "status": status},
    )


async def remind(platform: Platform) -> int:
    """The periodic job: tournament notices and streak reminders
    (``typogram.mail.reminders``); how many were queued."""
    settings = platform.settings
    mail = account_mail_of(platform)
    now = int(time.time() * 1000)
    queued = await tournament_notices(
        platform.db,
        mail,
        now_ms=now,
        lead_ms=settings.email_tournament_lead_s * 1000,
        site_url=settings.site_url,
    )
    queued += await streak_reminders(platform.db, mail, now_ms=now)
    if queued:
        log.info("reminders queued", extra={"count": queued})
    return queued


GROUP = Group(name="email", topics=(topics.EMAIL_SEND,), handle=handle, dedupe=False)
NOTICES_GROUP = Group(
    name="email-notices",
    topics=(topics.PAYMENT_EVENTS,),
    handle=handle_notice,
    dedupe=False,
    periodic=(Periodic("reminders", lambda s: s.email_reminder_interval_s, remind),),
)
