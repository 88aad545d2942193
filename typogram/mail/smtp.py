"""The SMTP transport (aiosmtplib): ``smtp://[user:pass@]host:port`` or ``smtps://…``.

Rules:

1. ``smtp://`` upgrades with STARTTLS when the server offers it; with
   ``require_tls`` a server that does not offer it is refused (the message
   fails temporarily, so a misconfigured relay shows up as retries, then
   ``failed``, never as mail sent in clear). ``smtps://`` is TLS from the
   first byte (port 465 by default).
2. A reply in 4xx, a refused or lost connection, a timeout: ``TemporaryMailError``.
   A reply in 5xx (sender, recipient or data refused; authentication
   refused): ``PermanentMailError``.
3. Connections are kept and reused, at most ``pool_size`` at once (each
   sends one message at a time). A connection that failed in any way is
   closed, never reused. A kept connection the server closed while idle is
   replaced once, before any of the message was sent.
4. A cancellation is never lost: aiosmtplib waits for replies with
   ``asyncio.wait_for``, which on Python 3.11 can swallow a cancellation
   that arrives with the reply; after each call the task's pending
   cancellation is raised again (``_keep_cancelled``), so a worker that is
   stopped stops.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Self
from urllib.parse import unquote, urlsplit

import aiosmtplib

from typogram.mail.port import MailError, PermanentMailError, TemporaryMailError


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    """Where and how to connect, read from an ``smtp://`` or ``smtps://`` URL."""

    host: str
    port: int
    implicit_tls: bool
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> SmtpTarget:
        """Raises ``ValueError`` naming what is wrong with ``url``."""
        parts = urlsplit(url)
        if parts.scheme not in {"smtp", "smtps"}:
            raise ValueError(f"SMTP URL must start with smtp:// or smtps://, got {parts.scheme!r}")
        if not parts.hostname:
            raise ValueError("SMTP URL has no host")
        implicit = parts.scheme == "smtps"
        try:
            port = parts.port or (465 if implicit else 587)
        except ValueError as exc:
            raise ValueError(f"SMTP URL has a bad port: {exc}") from exc
        return cls(
            host=parts.hostname,
            port=port,
            implicit_tls=implicit,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


def refusal(exc: Exception) -> MailError:
    """Rule 2: what an aiosmtplib error means for the message."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        code = max(codes) if codes else None
        kind = PermanentMailError if code is not None and code >= 500 else TemporaryMailError
        return kind(f"recipient refused: {exc}", code)
    if isinstance(exc, aiosmtplib.SMTPResponseException) and not isinstance(
        exc, aiosmtplib.SMTPServerDisconnected | aiosmtplib.SMTPTimeoutError
    ):
        kind = PermanentMailError if exc.code >= 500 else TemporaryMailError
        return kind(f"server replied {exc.code}: {exc.message}", exc.code)
    return TemporaryMailError(f"{type(exc).__name__}: {exc}")


class SmtpTransport:
    name = "smtp"

    def __init__(
        self,
        target: SmtpTarget,
        *,
        require_tls: bool,
        timeout_s: float = 10.0,
        pool_size: int = 4,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        if pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        self._target = target
        self._require_tls = require_tls
        self._timeout = timeout_s
        self._tls_context = tls_context
        self._slots = asyncio.Semaphore(pool_size)
        self._idle: list[aiosmtplib.SMTP] = []
        self._open = False
        self.sent = self.temporary = self.permanent = self.connects = 0

    @classmethod
    def from_url(cls, url: str, **options: object) -> SmtpTransport:
        return cls(SmtpTarget.parse(url), **options)  # type: ignore[arg-type]

    async def __aenter__(self) -> Self:
        self._open = True
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._open = False
        idle, self._idle = self._idle, []
        for client in idle:
            await _close(client)

    async def _connect(self) -> aiosmtplib.SMTP:
        target = self._target
        client = aiosmtplib.SMTP(
            hostname=target.host,
            port=target.port,
            username=target.username,
            password=target.password,
            timeout=self._timeout,
            use_tls=target.implicit_tls,
            # Rule 1: None upgrades when offered; True refuses a server without STARTTLS.
            start_tls=None if target.implicit_tls else (True if self._require_tls else None),
            tls_context=self._tls_context,
        )
        self.connects += 1
        await client.connect()
        _keep_cancelled()
        return client

    async def send(self, message: EmailMessage) -> str:
        if not self._open:
            raise RuntimeError("SMTP transport used outside its context")
        message_id = message["Message-ID"]
        if not message_id or not message["To"]:
            raise PermanentMailError("a message needs To and Message-ID")
        async with self._slots:
            reused = bool(self._idle)
            try:
                client = self._idle.pop() if reused else await self._connect()
                if reused and not client.is_connected:
                    reused, client = False, await self._connect()
            except (aiosmtplib.SMTPException, OSError) as exc:
                self._count(error := refusal(exc))
                raise error from exc
            try:
                await client.send_message(message)
                _keep_cancelled()
            except aiosmtplib.SMTPServerDisconnected as exc:
                await _close(client)
                if not reused:
                    self._count(error := refusal(exc))
                    raise error from exc
                await self._send_fresh(message)  # rule 3: dropped while idle
            except (aiosmtplib.SMTPException, OSError) as exc:
                await _close(client)
                self._count(error := refusal(exc))
                raise error from exc
            else:
                self._keep(client)
        self.sent += 1
        return str(message_id)

    async def _send_fresh(self, message: EmailMessage) -> None:
        try:
            client = await self._connect()
            await client.send_message(message)
            _keep_cancelled()
        except (aiosmtplib.SMTPException, OSError) as exc:
            self._count(error := refusal(exc))
            raise error from exc
        self._keep(client)

    def _keep(self, client: aiosmtplib.SMTP) -> None:
        if self._open:
            self._idle.append(client)
        else:
            client.close()

    def _count(self, error: MailError) -> None:
        if isinstance(error, PermanentMailError):
            self.permanent += 1
        else:
            self.temporary += 1

    async def ping(self) -> None:
        """Connect and say hello (readiness); raises ``TemporaryMailError`` when it cannot."""
        try:
            client = await self._connect()
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise refusal(exc) from exc
        await _close(client)

    def statistics(self) -> dict[str, float]:
        return {
            "sent": float(self.sent),
            "temporary_failures": float(self.temporary),
            "permanent_failures": float(self.permanent),
            "connects": float(self.connects),
            "idle_connections": float(len(self._idle)),
        }


def _keep_cancelled() -> None:
    """Rule 4: raise a cancellation requested while a library call swallowed it."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def _close(client: aiosmtplib.SMTP) -> None:
    """Say QUIT when the connection still answers; close it in any case."""
    try:
        if client.is_connected:
            async with asyncio.timeout(1.0):
                await client.quit()
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        pass
    finally:
        client.close()
        _keep_cancelled()
