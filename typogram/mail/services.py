"""The e-mail services built from a platform's backends and settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from typogram.mail.account_mail import AccountMail
from typogram.mail.addresses import EmailAddresses
from typogram.mail.history import EmailHistory
from typogram.mail.outbox import Outbox
from typogram.mail.preferences import Preferences
from typogram.mail.render import Renderer
from typogram.mail.sender import Sender
from typogram.mail.suppressions import Suppressions
from typogram.mail.tokens import EmailTokens

if TYPE_CHECKING:
    from typogram.platform import Platform


def outbox_of(platform: Platform) -> Outbox:
    settings = platform.settings
    accounts = platform.accounts

    async def language_of(user_id: str) -> str:
        user = await accounts.get(user_id)
        return user.language if user is not None else "en"

    return Outbox(
        EmailHistory(platform.db),
        Preferences(platform.db),
        platform.events,
        platform.cache,
        per_user=settings.email_limit_per_user_per_hour,
        per_address=settings.email_limit_per_address_per_hour,
        language_of=language_of,
    )


def renderer_of(platform: Platform) -> Renderer:
    settings = platform.settings
    return Renderer(
        sender=settings.mail_from,
        site_url=settings.site_url,
        message_id_domain=settings.mail_message_id_domain,
    )


def sender_of(platform: Platform) -> Sender:
    settings = platform.settings
    return Sender(
        EmailHistory(platform.db),
        Preferences(platform.db),
        Suppressions(platform.db),
        platform.mail,
        renderer_of(platform),
        platform.cache,
        unsubscribe_secret=settings.jwt_secret,
        site_url=settings.site_url,
        max_attempts=settings.email_max_attempts,
        backoff_s=settings.email_retry_backoff_s,
        backoff_max_s=settings.email_retry_backoff_max_s,
        # Longer than every attempt and wait of one message together.
        lease_s=settings.email_max_attempts * (settings.smtp_timeout_s * 3)
        + settings.email_max_attempts * settings.email_retry_backoff_max_s,
    )


def account_mail_of(platform: Platform) -> AccountMail:
    settings = platform.settings
    return AccountMail(
        outbox_of(platform),
        EmailTokens(platform.db),
        EmailAddresses(platform.db, platform.accounts),
        platform.accounts,
        site_url=settings.site_url,
        verify_ttl_s=settings.email_verify_token_ttl_s,
        reset_ttl_s=settings.email_reset_token_ttl_s,
    )
