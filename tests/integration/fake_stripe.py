"""A local HTTP server answering Stripe's request shapes for the calls the adapter makes.

Stripe cannot be reached from the test machines, so the ``stripe`` library is pointed
at this (``payments_stripe_api_base``). It checks what Stripe would check — the bearer
key, form-encoded parameters, the ``Idempotency-Key`` (the same key answers the same
object) — and answers JSON objects in Stripe's shapes: Checkout Sessions (create,
retrieve, expire) and Refunds. ``fail_next`` makes the next request answer 500.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

API_KEY = "sk_test_typogram"


def _error(status: int, message: str, kind: str = "invalid_request_error") -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message}}, status)


class FakeStripe:
    def __init__(self) -> None:
        self.sessions: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, dict[str, str], str | None]] = []
        self._by_key: dict[str, Any] = {}
        self.fail_next = 0
        self.app = Starlette(
            routes=[
                Route("/v1/checkout/sessions", self.create_session, methods=["POST"]),
                Route("/v1/checkout/sessions/{id}", self.get_session, methods=["GET"]),
                Route("/v1/checkout/sessions/{id}/expire", self.expire, methods=["POST"]),
                Route("/v1/refunds", self.create_refund, methods=["POST"]),
            ]
        )

    async def _form(self, request: Request) -> dict[str, str] | JSONResponse:
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return _error(401, "Invalid API Key provided", "authentication_error")
        form = dict(parse_qsl((await request.body()).decode()))
        self.requests.append(
            (request.method, request.url.path, form, request.headers.get("idempotency-key"))
        )
        if self.fail_next:
            self.fail_next -= 1
            return _error(500, "boom", "api_error")
        return form

    def _replayed(self, request: Request) -> Any:
        key = request.headers.get("idempotency-key")
        return None if key is None else self._by_key.get(key)

    async def create_session(self, request: Request) -> JSONResponse:
        form = await self._form(request)
        if isinstance(form, JSONResponse):
            return form
        if (seen := self._replayed(request)) is not None:
            return JSONResponse(seen)
        for needed in ("mode", "success_url", "line_items[0][price_data][unit_amount]"):
            if needed not in form:
                return _error(400, f"Missing required param: {needed}.")
        session_id = f"cs_test_{uuid.uuid4().hex}"
        session = {
            "id": session_id,
            "object": "checkout.session",
            "status": "open",
            "payment_status": "unpaid",
            "url": f"https://checkout.stripe.test/c/pay/{session_id}",
            "amount_total": int(form["line_items[0][price_data][unit_amount]"]),
            "currency": form["line_items[0][price_data][currency]"],
            "client_reference_id": form.get("client_reference_id"),
            "metadata": {k[9:-1]: v for k, v in form.items() if k.startswith("metadata[")},
            "payment_intent": None,
        }
        self.sessions[session_id] = session
        self._by_key[request.headers.get("idempotency-key", session_id)] = session
        return JSONResponse(session)

    async def get_session(self, request: Request) -> JSONResponse:
        form = await self._form(request)
        if isinstance(form, JSONResponse):
            return form
        session = self.sessions.get(request.path_params["id"])
        return JSONResponse(session) if session else _error(404, "No such checkout.session")

    async def expire(self, request: Request) -> JSONResponse:
        form = await self._form(request)
        if isinstance(form, JSONResponse):
            return form
        session = self.sessions.get(request.path_params["id"])
        if session is None:
            return _error(404, "No such checkout.session")
        if session["status"] != "open":
            return _error(400, f"This Checkout Session is {session['status']}.")
        session["status"] = "expired"
        return JSONResponse(session)

    async def create_refund(self, request: Request) -> JSONResponse:
        form = await self._form(request)
        if isinstance(form, JSONResponse):
            return form
        if (seen := self._replayed(request)) is not None:
            return JSONResponse(seen)
        if not form.get("payment_intent", "").startswith("pi_"):
            return _error(400, "No such payment_intent")
        refund = {
            "id": f"re_{uuid.uuid4().hex[:24]}",
            "object": "refund",
            "status": "succeeded",
            "amount": int(form.get("amount", "0")),
            "payment_intent": form["payment_intent"],
        }
        self.refunds[refund["id"]] = refund
        self._by_key[request.headers.get("idempotency-key", refund["id"])] = refund
        return JSONResponse(refund)

    def complete(self, session_id: str, intent_id: str) -> None:
        """The customer paid on Stripe's page."""
        self.sessions[session_id] |= {"status": "complete", "payment_intent": intent_id}


@asynccontextmanager
async def running_fake_stripe() -> AsyncIterator[tuple[FakeStripe, str]]:
    fake = FakeStripe()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(fake.app, host="127.0.0.1", port=port, log_config=None, lifespan="off")
    )
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:  # noqa: ASYNC110 - uvicorn offers no event
                await asyncio.sleep(0.01)
        yield fake, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
