"""The embedded mail transport: every message written to a Maildir under the data directory.

``typogram serve`` needs no mail server, and a developer opens what was sent
with any mail client that reads Maildir (``mutt -f .data/mail``), or with the
standard library's ``mailbox.Maildir``. Writes run in a thread so the event
loop never waits on the disk.
"""

from __future__ import annotations

import asyncio
import mailbox
from email.message import EmailMessage
from pathlib import Path
from typing import Self

from typogram.mail.port import PermanentMailError, TemporaryMailError


class MaildirTransport:
    name = "maildir"

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        self._box: mailbox.Maildir | None = None
        self._closed = False
        self.sent = 0

    async def __aenter__(self) -> Self:
        self._box = await asyncio.to_thread(mailbox.Maildir, self._path, factory=None, create=True)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._box = None
        self._closed = True

    def _open(self) -> mailbox.Maildir:
        if self._box is None:
            raise RuntimeError("maildir transport used outside its context")
        return self._box

    async def send(self, message: EmailMessage) -> str:
        box = self._open()
        message_id = message["Message-ID"]
        if not message_id or not message["To"]:
            raise PermanentMailError("a message needs To and Message-ID")
        try:
            await asyncio.to_thread(box.add, message)
        except OSError as exc:  # a full disk may clear: worth a retry
            raise TemporaryMailError(f"cannot write to the maildir: {exc}") from exc
        self.sent += 1
        return str(message_id)

    async def ping(self) -> None:
        self._open()

    def statistics(self) -> dict[str, float]:
        return {"sent": float(self.sent)}

    @property
    def path(self) -> Path:
        return self._path
