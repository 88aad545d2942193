"""The mail transport the settings pick: SMTP when ``smtp_url`` is set, else the Maildir."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from typogram.mail.maildir import MaildirTransport
from typogram.mail.port import MailTransport
from typogram.mail.smtp import SmtpTransport

if TYPE_CHECKING:
    from typogram.settings import Settings

MAILDIR = "mail"  # under ``data_dir``


def transport_from_settings(settings: Settings) -> MailTransport:
    if settings.smtp_url:
        return SmtpTransport.from_url(
            settings.smtp_url,
            require_tls=settings.smtp_tls_required,
            timeout_s=settings.smtp_timeout_s,
            pool_size=settings.smtp_pool_size,
        )
    return MaildirTransport(Path(settings.data_dir) / MAILDIR)
