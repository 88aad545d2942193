"""A real SMTP server for the tests (aiosmtpd in its own thread) that can be told to refuse.

``refuse_rcpt[address] = "550 5.1.1 no such user"`` refuses one recipient;
``refuse_data = "451 4.3.0 try later"`` refuses every message's data;
``refuse_next = ["451 …", "451 …"]`` refuses the next recipients, one reply each;
``messages`` holds what was accepted, parsed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.ports import free_port


class RecordingHandler:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.refuse_rcpt: dict[str, str] = {}
        self.refuse_data: str | None = None
        self.refuse_next: list[str] = []
        self.attempts = 0

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        self.attempts += 1
        if self.refuse_next:
            return self.refuse_next.pop(0)
        if address in self.refuse_rcpt:
            return self.refuse_rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse_data is not None:
            return self.refuse_data
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"mailer", b"s3cret")
    if ok:
        return AuthResult(success=True, auth_data=data)
    return AuthResult(success=False, handled=False, message="535 5.7.8 credentials invalid")


@contextlib.contextmanager
def smtp_server(*, auth: bool = False) -> Iterator[tuple[RecordingHandler, int]]:
    """A running server on 127.0.0.1 and a free port; ``auth``: it wants mailer/s3cret."""
    handler = RecordingHandler()
    port = free_port()
    options: dict[str, Any] = {}
    if auth:
        options = {"authenticator": _authenticate, "auth_require_tls": False}
    controller = Controller(handler, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()
