"""The mail port: hand one finished MIME message to a transport.

A transport is an async context manager. ``send`` answers the message id the
provider knows the message by (its ``Message-ID`` header), or raises one of
two refusals the sender must tell apart:

* ``TemporaryMailError``: try again later (a 4xx reply, a server that is down,
  a timeout). The e-mail worker retries with back-off.
* ``PermanentMailError``: this message will never go (a 5xx reply, a refused
  address). Recorded as ``failed`` and not retried.
"""

from __future__ import annotations

from email.message import EmailMessage
from typing import Protocol, Self


class MailError(RuntimeError):
    """A transport refused a message; ``code`` is the SMTP reply code when there was one."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class TemporaryMailError(MailError):
    """The message may go later: retry."""


class PermanentMailError(MailError):
    """The message will never go: record it as failed."""


class MailTransport(Protocol):
    """Sends messages; use after exit raises ``RuntimeError``."""

    name: str

    async def __aenter__(self) -> Self: ...
    async def __aexit__(self, *exc: object) -> None: ...

    async def send(self, message: EmailMessage) -> str:
        """Hand ``message`` (with ``From``, ``To`` and ``Message-ID`` set) over; returns its
        ``Message-ID``. Raises ``TemporaryMailError`` or ``PermanentMailError``."""
        ...

    async def ping(self) -> None: ...
    def statistics(self) -> dict[str, float]: ...
