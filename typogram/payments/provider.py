"""The payment provider port, its webhook event shape and the adapter chosen by settings.

A provider takes money and says what happened by webhook. The platform
calls it for three things: create a payment for a checkout, refund one,
and cancel one that failed so it can no longer take money. Each call is
idempotent by the platform's payment id (a retry after a timeout finds the
same payment at the provider, never a second one).

Adapters: ``Sandbox`` (``typogram.payments.sandbox``: in process, for
development and tests) and ``StripeProvider`` (``typogram.payments.stripe``).
Both deliver webhooks in Stripe's event shape, signed in Stripe's scheme
(``typogram.payments.signature``), so one intake serves both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol, Self

import msgspec

if TYPE_CHECKING:
    from typogram.settings import Settings
    from typogram.tasks import Supervisor


class ProviderError(RuntimeError):
    """The provider refused the call (a 4xx at the provider); retrying will not help."""


class ProviderUnavailable(RuntimeError):
    """The provider did not answer, or answered 5xx; the call may be retried."""


class ProviderPayment(msgspec.Struct, frozen=True):
    """What a provider answers to ``create_payment``."""

    provider_payment_id: str
    redirect_url: str  # where the customer goes to pay


class PaymentProvider(Protocol):
    """One provider account. An async context manager; use after exit raises."""

    name: str

    async def __aenter__(self) -> Self: ...
    async def __aexit__(self, *exc: object) -> None: ...

    async def create_payment(
        self,
        *,
        payment_id: str,
        amount: int,
        currency: str,
        description: str,
        metadata: Mapping[str, str],
    ) -> ProviderPayment:
        """Start a payment of ``amount`` minor units; the same ``payment_id`` again
        answers the payment made the first time."""
        ...

    async def refund(self, *, payment_id: str, provider_payment_id: str, amount: int) -> str:
        """Refund a succeeded payment (the refund id); ``charge.refunded`` follows by webhook."""
        ...

    async def cancel(self, *, provider_payment_id: str) -> bool:
        """Make sure the payment can no longer take money: ``True`` when it cannot
        (now or already), ``False`` when it already succeeded."""
        ...

    def statistics(self) -> dict[str, float]: ...


# -- the webhook event (Stripe's shape; only the fields the platform reads) ------


class EventObject(msgspec.Struct, frozen=True):
    id: str
    object: str = ""
    amount: int | None = None
    amount_refunded: int | None = None
    currency: str | None = None
    metadata: dict[str, str] = {}
    payment_intent: str | None = None  # a charge's PaymentIntent


class EventData(msgspec.Struct, frozen=True):
    object: EventObject


class ProviderEvent(msgspec.Struct, frozen=True):
    id: str
    type: str
    created: int
    data: EventData

    @property
    def intent_id(self) -> str:
        """The provider's id of the payment the event is about."""
        obj = self.data.object
        return obj.payment_intent or obj.id if obj.object == "charge" else obj.id


def decode_event(raw: bytes) -> ProviderEvent:
    """Parse a verified webhook body; raises ``ValueError`` on a malformed one."""
    try:
        event = msgspec.json.decode(raw, type=ProviderEvent)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ValueError(f"not a provider event: {exc}") from exc
    if not (0 < len(event.id) <= 255 and 0 < len(event.type) <= 64):
        raise ValueError("event id or type of a wrong length")
    return event


def provider_from_settings(
    settings: Settings, *, tasks: Supervisor | None = None
) -> PaymentProvider:
    """The adapter ``payments_provider`` names (settings validation refuses others); the
    sandbox's delivery tasks run under ``tasks``."""
    if settings.payments_provider == "stripe":
        from typogram.payments.stripe import StripeProvider

        return StripeProvider.from_settings(settings)
    from typogram.payments.sandbox import Sandbox

    return Sandbox.from_settings(settings, tasks=tasks)
