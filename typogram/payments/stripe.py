"""The Stripe adapter of the payment provider port, on the ``stripe`` library.

* ``create_payment``: a Checkout Session (``mode=payment``, one line with
  the amount and currency), the platform's payment id in the session's and
  its PaymentIntent's metadata, idempotency key ``checkout-<payment id>``;
  the session's ``url`` is where the customer pays. Webhooks then speak of
  the PaymentIntent (``pi_…``), found by ``metadata.payment_id``.
* ``refund``: a Refund of the PaymentIntent, idempotency key
  ``refund-<payment id>``; ``charge.refunded`` follows by webhook.
* ``cancel``: expire the session so it cannot be paid; a session already
  ``complete`` answers ``False``.

Webhooks are verified by ``typogram.payments.signature`` (the library's
check), not here. ``payments_stripe_api_base`` points the library at
another host (the tests run a local server answering Stripe's shapes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

import stripe

from typogram.payments.provider import ProviderError, ProviderPayment, ProviderUnavailable
from typogram.settings import Settings

NETWORK_RETRIES = 2


class _HTTPX(stripe.HTTPXClient):
    """The library's httpx client, sending the form body as ``content``.

    ``stripe.HTTPXClient`` passes the encoded form as ``data=<str>``, which
    httpx deprecates (a ``DeprecationWarning`` on every request, and an error
    once httpx drops it). The one private hook it builds requests with is
    overridden here and nowhere else; ``tests/integration/test_payments_stripe``
    fails if the hook moves (stripe >= 12 < 17 checked).
    """

    def _get_request_args_kwargs(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any
    ) -> Any:
        args, kwargs = super()._get_request_args_kwargs(method, url, headers, post_data)
        data = kwargs.pop("data", None)
        if data:
            kwargs["content"] = data
        return args, kwargs


class StripeProvider:
    """The ``PaymentProvider`` port on Stripe."""

    name = "stripe"

    def __init__(
        self,
        *,
        api_key: str,
        api_base: str = stripe.DEFAULT_API_BASE,
        success_url: str,
        cancel_url: str,
        timeout_s: float = 10.0,
    ) -> None:
        if not api_key:
            raise ValueError("a Stripe API key is required (TYPOGRAM_PAYMENTS_STRIPE_API_KEY)")
        self._api_key = api_key
        self._api_base = api_base
        self._success_url = success_url
        self._cancel_url = cancel_url
        self._timeout_s = timeout_s
        self._http: _HTTPX | None = None
        self._client: stripe.StripeClient | None = None
        self._closed = False
        self._stats = {"created": 0, "refunds": 0, "cancels": 0, "errors": 0}

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(
            api_key=settings.payments_stripe_api_key,
            api_base=settings.payments_stripe_api_base,
            success_url=settings.payments_stripe_success_url,
            cancel_url=settings.payments_stripe_cancel_url,
            timeout_s=settings.payments_stripe_timeout_s,
        )

    async def __aenter__(self) -> Self:
        if self._client is not None or self._closed:
            raise RuntimeError("StripeProvider can be entered once")
        self._http = _HTTPX(timeout=self._timeout_s)
        self._client = stripe.StripeClient(
            self._api_key,
            base_addresses={"api": self._api_base},
            http_client=self._http,
            max_network_retries=NETWORK_RETRIES,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closed = True
        if self._http is not None:
            await self._http.close_async()  # type: ignore[no-untyped-call]

    def _stripe(self) -> stripe.StripeClient:
        if self._closed or self._client is None:
            raise RuntimeError("StripeProvider is closed or not entered")
        return self._client

    async def create_payment(
        self,
        *,
        payment_id: str,
        amount: int,
        currency: str,
        description: str,
        metadata: Mapping[str, str],
    ) -> ProviderPayment:
        tags = {**metadata, "payment_id": payment_id}
        params: Any = {
            "mode": "payment",
            "client_reference_id": payment_id,
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": currency.lower(),
                        "unit_amount": amount,
                        "product_data": {"name": description},
                    },
                }
            ],
            "metadata": tags,
            "payment_intent_data": {"metadata": tags},
            "success_url": self._success_url,
            "cancel_url": self._cancel_url,
        }
        session = await self._call(
            self._stripe().v1.checkout.sessions.create_async(
                params, options={"idempotency_key": f"checkout-{payment_id}"}
            )
        )
        self._stats["created"] += 1
        return ProviderPayment(provider_payment_id=session.id, redirect_url=session.url or "")

    async def refund(self, *, payment_id: str, provider_payment_id: str, amount: int) -> str:
        params: Any = {
            "payment_intent": provider_payment_id,
            "amount": amount,
            "metadata": {"payment_id": payment_id},
        }
        refund = await self._call(
            self._stripe().v1.refunds.create_async(
                params, options={"idempotency_key": f"refund-{payment_id}"}
            )
        )
        self._stats["refunds"] += 1
        return str(refund.id)

    async def cancel(self, *, provider_payment_id: str) -> bool:
        sessions = self._stripe().v1.checkout.sessions
        if not provider_payment_id.startswith("cs_"):
            return True  # no session was made (created elsewhere): nothing can be paid here
        try:
            await self._call(sessions.expire_async(provider_payment_id))
        except ProviderError:
            # Not open any more: expired already (fine) or complete (paid).
            session = await self._call(sessions.retrieve_async(provider_payment_id))
            return bool(session.status != "complete")
        self._stats["cancels"] += 1
        return True

    async def _call(self, pending: Any) -> Any:
        try:
            return await pending
        except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
            self._stats["errors"] += 1
            raise ProviderUnavailable(f"Stripe did not answer: {exc.user_message or exc}") from exc
        except stripe.StripeError as exc:
            self._stats["errors"] += 1
            if exc.http_status is not None and exc.http_status >= 500:
                raise ProviderUnavailable(f"Stripe failed: {exc.user_message or exc}") from exc
            raise ProviderError(f"Stripe refused: {exc.user_message or exc}") from exc

    def statistics(self) -> dict[str, float]:
        return dict(self._stats)
