"""The sandbox payment provider: a real provider inside the process, for development and tests.

It keeps its own payments (bounded, oldest forgotten first) and tells the
platform what happened the way Stripe does: events in Stripe's shape,
signed in Stripe's scheme, POSTed over HTTP to the platform's webhook
endpoint. Like a real provider it delivers at least once: a delivery that
is not answered 2xx is retried with backoff (``max_attempts``), it may send
an event again (``duplicate_pct``) and it may delay each delivery by a
random time (``max_delay_ms``), so events overtake each other.

The customer's action is ``pay(payment_id, outcome)`` (``POST
/sandbox/pay/{payment_id}`` in the REST API): ``succeeded``, ``failed``
(final here, as a cancelled intent) or ``requires_action`` (payable
later). Tests can also ``hold()`` deliveries and ``release`` them in an
order of their choosing, or ``redeliver`` one.

It refuses to start outside ``development`` and ``test``.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Self

import httpx
import orjson

from typogram.logs import get_logger
from typogram.payments.provider import ProviderError, ProviderPayment
from typogram.payments.signature import HEADER, sign
from typogram.settings import Settings, SettingsError
from typogram.tasks import Supervisor

log = get_logger("typogram.payments.sandbox")

Outcome = Literal["succeeded", "failed", "requires_action"]
OUTCOMES: tuple[Outcome, ...] = ("succeeded", "failed", "requires_action")
MAX_BACKOFF_S = 5.0
WEBHOOK_PATH = "/api/v1/payments/webhooks/sandbox"


class SandboxError(ProviderError):
    """A sandbox call the payment's state does not allow (``missing``: unknown payment)."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


@dataclass(slots=True)
class SandboxPayment:
    payment_id: str  # the platform's
    intent_id: str  # the sandbox's
    amount: int
    currency: str
    metadata: dict[str, str]
    # requires_payment_method | requires_action | succeeded | canceled | refunded
    status: str = "requires_payment_method"
    refund_id: str | None = None


@dataclass(slots=True)
class Delivery:
    event_id: str
    body: bytes
    attempt: int = 0
    sent: list[int] = field(default_factory=list)  # HTTP statuses received


class Sandbox:
    """The ``PaymentProvider`` port, in process. See the module's rules."""

    name = "sandbox"

    def __init__(
        self,
        *,
        webhook_url: str,
        secret: str,
        environment: str = "development",
        max_payments: int = 100_000,
        queue_size: int = 10_000,
        concurrency: int = 8,
        max_attempts: int = 8,
        backoff_s: float = 0.5,
        duplicate_pct: float = 0.0,
        max_delay_ms: int = 0,
        timeout_s: float = 10.0,
        rng: random.Random | None = None,
        tasks: Supervisor | None = None,
    ) -> None:
        if environment not in {"development", "test"}:
            raise SettingsError(
                f"the sandbox payment provider refuses to start in {environment!r}: "
                "it takes no money and runs only in development and test; set "
                "TYPOGRAM_PAYMENTS_PROVIDER=stripe"
            )
        self.webhook_url = webhook_url
        self._secret = secret
        self._max_payments = max_payments
        self._queue: asyncio.Queue[Delivery] = asyncio.Queue(queue_size)
        self._concurrency = concurrency
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s
        self._duplicate_pct = duplicate_pct
        self._max_delay_ms = max_delay_ms
        self._timeout_s = timeout_s
        self._rng = rng or random.Random()
        self._payments: OrderedDict[str, SandboxPayment] = OrderedDict()
        self._by_intent: dict[str, str] = {}
        self._sent_bodies: OrderedDict[str, bytes] = OrderedDict()  # event id -> body
        self._held: list[Delivery] | None = None
        self._http: httpx.AsyncClient | None = None
        self._supervisor = tasks if tasks is not None else Supervisor()
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self._stats = {"created": 0, "delivered": 0, "failed_attempts": 0, "given_up": 0}

    @classmethod
    def from_settings(cls, settings: Settings, *, tasks: Supervisor | None = None) -> Self:
        url = settings.payments_sandbox_webhook_url or (
            f"http://{_local(settings.host)}:{settings.http_port}{WEBHOOK_PATH}"
        )
        return cls(
            webhook_url=url,
            secret=settings.payments_webhook_secret,
            environment=settings.environment,
            max_payments=settings.payments_sandbox_max_payments,
            queue_size=settings.payments_sandbox_queue_size,
            concurrency=settings.payments_sandbox_delivery_concurrency,
            max_attempts=settings.payments_sandbox_max_attempts,
            backoff_s=settings.payments_sandbox_retry_backoff_s,
            duplicate_pct=settings.payments_sandbox_duplicate_pct,
            max_delay_ms=settings.payments_sandbox_max_delay_ms,
            tasks=tasks,
        )

    # -- lifecycle ------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._http is not None or self._closed:
            raise RuntimeError("Sandbox can be entered once")
        self._http = httpx.AsyncClient(timeout=self._timeout_s)
        self._tasks = [
            self._supervisor.start(f"sandbox-delivery-{i}", self._deliver_forever(), lasting=True)
            for i in range(self._concurrency)
        ]
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Stop delivering (what is still queued is dropped, as a process exit would)."""
        self._closed = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._http is not None:
            await self._http.aclose()

    def _check(self) -> None:
        if self._closed or self._http is None:
            raise RuntimeError("Sandbox is closed" if self._closed else "Sandbox is not entered")

    # -- the port -------------------------------------------------------------

    async def create_payment(
        self,
        *,
        payment_id: str,
        amount: int,
        currency: str,
        description: str,
        metadata: Mapping[str, str],
    ) -> ProviderPayment:
        self._check()
        payment = self._payments.get(payment_id)
        if payment is None:
            payment = SandboxPayment(
                payment_id=payment_id,
                intent_id=f"pi_sbx_{uuid.uuid4().hex[:24]}",
                amount=amount,
                currency=currency.lower(),
                metadata={**metadata, "payment_id": payment_id},
            )
            self._remember(payment)
            self._stats["created"] += 1
            await self._emit("payment_intent.created", payment)
        return ProviderPayment(
            provider_payment_id=payment.intent_id,
            redirect_url=f"/#/sandbox-pay?payment={payment_id}",
        )

    async def refund(self, *, payment_id: str, provider_payment_id: str, amount: int) -> str:
        self._check()
        payment = self._find(payment_id)
        if payment.status == "refunded" and payment.refund_id is not None:
            return payment.refund_id  # idempotent: the refund made the first time
        if payment.status != "succeeded":
            raise SandboxError(f"payment is {payment.status}, not refundable")
        if amount != payment.amount:
            raise SandboxError("the sandbox refunds whole payments only")
        payment.status, payment.refund_id = "refunded", f"re_sbx_{uuid.uuid4().hex[:24]}"
        await self._emit("charge.refunded", payment)
        return payment.refund_id

    async def cancel(self, *, provider_payment_id: str) -> bool:
        self._check()
        payment_id = self._by_intent.get(provider_payment_id)
        payment = None if payment_id is None else self._payments.get(payment_id)
        if payment is None:
            return True  # unknown here: a failed sandbox payment is final anyway
        if payment.status in {"succeeded", "refunded"}:
            return False
        if payment.status != "canceled":
            payment.status = "canceled"
            await self._emit("payment_intent.canceled", payment)
        return True

    def statistics(self) -> dict[str, float]:
        return {
            **self._stats,
            "payments": len(self._payments),
            "queued": self._queue.qsize(),
            "held": len(self._held or ()),
        }

    # -- the customer's side ----------------------------------------------------

    async def pay(self, payment_id: str, outcome: Outcome) -> SandboxPayment:
        """The customer pays (``succeeded``), is declined (``failed``, final) or is asked
        to authenticate (``requires_action``, payable again later)."""
        self._check()
        payment = self._find(payment_id)
        if payment.status not in {"requires_payment_method", "requires_action"}:
            raise SandboxError(f"payment is {payment.status}: nothing to pay")
        if outcome == "succeeded":
            payment.status = "succeeded"
            await self._emit("payment_intent.succeeded", payment)
        elif outcome == "failed":
            payment.status = "canceled"
            await self._emit("payment_intent.payment_failed", payment)
        else:
            payment.status = "requires_action"
            await self._emit("payment_intent.requires_action", payment)
        return payment

    def payment(self, payment_id: str) -> SandboxPayment | None:
        return self._payments.get(payment_id)

    # -- what tests steer ---------------------------------------------------------

    def hold(self) -> None:
        """Keep new events back until ``release``."""
        if self._held is None:
            self._held = []

    async def release(self, order: Sequence[int] | None = None) -> None:
        """Deliver the held events, in ``order`` (indexes into what was held) or as held."""
        held, self._held = self._held or [], None
        chosen = [held[i] for i in order] if order is not None else held
        for delivery in chosen:
            await self._queue.put(delivery)

    def held(self) -> list[tuple[str, bytes]]:
        """(type, body) of each held event, in the order they were made."""
        return [(orjson.loads(d.body)["type"], d.body) for d in self._held or ()]

    def held_types(self) -> list[str]:
        return [kind for kind, _ in self.held()]

    async def redeliver(self, event_id: str, times: int = 1) -> None:
        """Send an event already sent again, ``times`` times (a provider's retry)."""
        body = self._sent_bodies[event_id]
        for _ in range(times):
            await self._queue.put(Delivery(event_id, body))

    def sent_events(self, payment_id: str) -> list[tuple[str, str]]:
        """(event id, type) of every event made for the payment, oldest first."""
        out = []
        for event_id, body in self._sent_bodies.items():
            doc = orjson.loads(body)
            if doc["data"]["object"]["metadata"].get("payment_id") == payment_id:
                out.append((event_id, doc["type"]))
        return out

    def signed(self, body: bytes, at_s: int | None = None) -> dict[str, str]:
        """The headers a delivery of ``body`` carries."""
        now = int(time.time()) if at_s is None else at_s
        return {HEADER: sign(body, self._secret, now), "Content-Type": "application/json"}

    # -- inside -------------------------------------------------------------------

    def _find(self, payment_id: str) -> SandboxPayment:
        payment = self._payments.get(payment_id)
        if payment is None:
            raise SandboxError("no such sandbox payment", missing=True)
        return payment

    def _remember(self, payment: SandboxPayment) -> None:
        self._payments[payment.payment_id] = payment
        self._by_intent[payment.intent_id] = payment.payment_id
        while len(self._payments) > self._max_payments:
            _, old = self._payments.popitem(last=False)
            self._by_intent.pop(old.intent_id, None)

    async def _emit(self, event_type: str, payment: SandboxPayment) -> None:
        charge = event_type.startswith("charge.")
        body = orjson.dumps(
            {
                "id": f"evt_sbx_{uuid.uuid4().hex}",
                "object": "event",
                "type": event_type,
                "created": int(time.time()),
                "livemode": False,
                "data": {
                    "object": {
                        "id": payment.intent_id,
                        "object": "charge" if charge else "payment_intent",
                        "amount": payment.amount,
                        "amount_refunded": payment.amount if charge else 0,
                        "currency": payment.currency,
                        "status": payment.status,
                        "metadata": payment.metadata,
                        "payment_intent": payment.intent_id if charge else None,
                    }
                },
            }
        )
        event_id = orjson.loads(body)["id"]
        self._sent_bodies[event_id] = body
        while len(self._sent_bodies) > self._max_payments:
            self._sent_bodies.popitem(last=False)
        delivery = Delivery(event_id, body)
        if self._held is not None:
            self._held.append(delivery)
        else:
            await self._queue.put(delivery)

    async def _deliver_forever(self) -> None:
        while True:
            delivery = await self._queue.get()
            if self._max_delay_ms:
                await asyncio.sleep(self._rng.uniform(0, self._max_delay_ms) / 1000)
            while not await self._deliver(delivery):
                delivery.attempt += 1
                if delivery.attempt >= self._max_attempts:
                    self._stats["given_up"] += 1
                    log.warning(
                        "sandbox webhook given up",
                        extra={"event_id": delivery.event_id, "statuses": delivery.sent},
                    )
                    break
                backoff = self._backoff_s * 2 ** (delivery.attempt - 1)
                await asyncio.sleep(min(backoff, MAX_BACKOFF_S))
            else:  # delivered (the loop ended without ``break``)
                if self._duplicate_pct and self._rng.uniform(0, 100) < self._duplicate_pct:
                    await self._queue.put(Delivery(delivery.event_id, delivery.body))

    async def _deliver(self, delivery: Delivery) -> bool:
        assert self._http is not None, "delivering only while entered"
        try:
            response = await self._http.post(
                self.webhook_url, content=delivery.body, headers=self.signed(delivery.body)
            )
        except httpx.HTTPError as exc:
            self._stats["failed_attempts"] += 1
            delivery.sent.append(0)
            log.info("sandbox webhook not delivered", extra={"error": type(exc).__name__})
            return False
        delivery.sent.append(response.status_code)
        if 200 <= response.status_code < 300:
            self._stats["delivered"] += 1
            return True
        self._stats["failed_attempts"] += 1
        return False


def _local(host: str) -> str:
    """The address to reach this process's own listener on."""
    return "127.0.0.1" if host in {"0.0.0.0", "", "::"} else host
