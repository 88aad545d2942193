"""``payments`` group (``payment-events``): provider events applied to payments, exactly once.

1. Of the topic's events only ``payment.webhook`` (stored and published by
   the webhook intake) are applied, by ``Ledger.apply``; the rest
   (``subscription.*``, ``payment.succeeded`` …: announcements for other
   consumers) are ignored.
2. Exactly once without the runtime's done-markers (``dedupe=False``): the
   ledger keeps what it did in the payment's row and the subscription
   history, so a replay — after a crash between the database commit and
   the offset commit, or a provider's duplicate — finds it done.
3. Every ``payments_sweep_interval_s``: publish stored webhook events left
   unpublished (the intake's outbox) and fail payments the provider never
   made (``payments_abandon_after_s``). Both are safe in every process at
   once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from typogram import topics
from typogram.logs import get_logger
from typogram.payments.services import intake_of, ledger_of
from typogram.ports import Event
from workers.runtime import Group, Periodic

if TYPE_CHECKING:
    from typogram.platform import Platform

log = get_logger("typogram.workers.payments")


async def handle(platform: Platform, topic: str, event: Event) -> None:
    """Rule 1."""
    if event.type != topics.PAYMENT_WEBHOOK:
        return
    status = await ledger_of(platform).apply(event.data)
    log.debug(
        "payment event applied",
        extra={"payment_id": event.data.get("payment_id"), "status": status},
    )


async def sweep(platform: Platform) -> int:
    """Rule 3: one pass; returns how many rows it acted on."""
    settings = platform.settings
    published = await intake_of(platform).publish_pending(settings.payments_outbox_after_s)
    abandoned = await ledger_of(platform).abandon_stale(settings.payments_abandon_after_s)
    if published or abandoned:
        log.info("payments swept", extra={"published": published, "abandoned": abandoned})
    return published + abandoned


GROUP = Group(
    name="payments",
    topics=(topics.PAYMENT_EVENTS,),
    handle=handle,
    dedupe=False,  # rule 2
    periodic=(Periodic("sweep", lambda settings: settings.payments_sweep_interval_s, sweep),),
)
