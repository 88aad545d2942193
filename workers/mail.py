"""``email`` group (``email-send``): render and send each queued message, once.

The rules live in ``typogram.mail.sender``. Idempotent by message id through
the history row, so the runtime's done-markers are not needed
(``dedupe=False``): a replayed event finds its message sent or failed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from typogram import topics
from typogram.logs import get_logger
from typogram.mail.outbox import SEND_EVENT
from typogram.mail.sender import SendJob
from typogram.mail.services import sender_of
from typogram.ports import Event
from workers.runtime import Group

if TYPE_CHECKING:
    from typogram.platform import Platform

log = get_logger("typogram.workers.mail")


async def handle(platform: Platform, topic: str, event: Event) -> None:
    if event.type != SEND_EVENT:
        return
    job = SendJob.of(event.data)
    status = await sender_of(platform).deliver(job)
    log.debug(
        "e-mail handled",
        extra={"message_id": job.message_id, "kind": job.kind, "status": status},
    )


GROUP = Group(name="email", topics=(topics.EMAIL_SEND,), handle=handle, dedupe=False)
