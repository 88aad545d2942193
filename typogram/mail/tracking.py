"""Delivery events from the mail provider, applied to the history and the suppressions.

A signed ``POST /api/v1/email/events/{provider}`` carries a JSON list of
reports, each naming the provider's message id (our ``Message-ID``):

* ``delivered``: ``sent`` → ``delivered``;
* ``bounced`` with ``bounce: "hard"`` (the default): → ``bounced``, and the
  address is suppressed for all mail; a ``soft`` bounce changes nothing (the
  provider retries it);
* ``complained``: → ``complained``, and the address gets no more
  non-security mail.

Reports for unknown messages are ignored; a report repeated, or arriving
out of order, never moves a message back (``history`` rule 3).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from typogram.db.database import Database
from typogram.mail.history import EmailHistory, Status
from typogram.mail.suppressions import Reason, Suppressions

MAX_REPORTS = 1000


class DeliveryReport(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    type: Literal["delivered", "bounced", "complained"]
    message_id: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
    bounce: Literal["hard", "soft"] = "hard"


Reports = Annotated[list[DeliveryReport], msgspec.Meta(max_length=MAX_REPORTS)]

_STATUS = {
    "delivered": Status.DELIVERED,
    "bounced": Status.BOUNCED,
    "complained": Status.COMPLAINED,
}
_SUPPRESS = {Status.BOUNCED: Reason.BOUNCED, Status.COMPLAINED: Reason.COMPLAINED}


async def apply_report(db: Database, report: DeliveryReport) -> int:
    """1 when the report named a message we sent, else 0."""
    if report.type == "bounced" and report.bounce == "soft":
        return 0
    status = _STATUS[report.type]
    row = await EmailHistory(db).delivery(report.message_id, status)
    if row is None:
        return 0
    if (reason := _SUPPRESS.get(status)) is not None:
        await Suppressions(db).add(row["address"], reason, row["id"])
    return 1
