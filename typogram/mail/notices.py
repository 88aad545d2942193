"""Which events of other topics become mail, and with what values (pure).

* ``payment.succeeded`` (``payment-events``) → ``payment_receipt``;
* ``subscription.renewed`` → ``subscription_renewed``;
* ``subscription.expired`` → ``subscription_expired``.

``notice_for`` answers ``(kind, user id, params)`` or ``None`` for an event
that sends nothing. Achievement unlocks are mailed by the achievements
worker after its commit (``workers.achievements``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

from typogram import topics

Notice = tuple[str, str, dict[str, object]]


def money(amount: int, currency: str) -> str:
    """Minor units as a price: ``999, "eur"`` → ``"9.99 EUR"``."""
    return f"{amount // 100}.{amount % 100:02d} {currency.upper()}"


def day(epoch_ms: int) -> str:
    return dt.datetime.fromtimestamp(epoch_ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d")


def once(source: str, kind: str, at_ms: int) -> dict[str, Any]:
    """The identity of the one message of ``kind`` that ``source`` (an event id, a
    tournament and user, …) makes: the same source gives the same message."""
    return {
        "message_id": uuid.uuid5(uuid.NAMESPACE_URL, f"{source}:{kind}").hex,
        "created_at": at_ms,
    }


def notice_for(event_type: str, data: Mapping[str, Any]) -> Notice | None:
    """Raises ``KeyError``/``TypeError``/``ValueError`` for an event missing its fields."""
    if event_type == topics.PAYMENT_SUCCEEDED:
        plan = data.get("plan_name") or data["plan_id"]
        params: dict[str, object] = {
            "amount": money(int(data["amount"]), str(data["currency"])),
            "plan": str(plan),
            "payment_id": str(data["id"]),
        }
        return "payment_receipt", str(data["user_id"]), params
    if event_type == topics.SUBSCRIPTION_RENEWED:
        until = day(int(data["period_end"]))
        return (
            "subscription_renewed",
            str(data["user_id"]),
            {"plan": data["plan_id"], "until": until},
        )
    if event_type == topics.SUBSCRIPTION_EXPIRED:
        return "subscription_expired", str(data["user_id"]), {"plan": str(data["plan_id"])}
    return None
