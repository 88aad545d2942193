"""Pure rules of the mail package: what an SMTP error means, unclaimed addresses, the
suppression rule, the history's transitions."""

from __future__ import annotations

import aiosmtplib
from hypothesis import given
from hypothesis import strategies as st

from typogram.mail.history import DELIVERY_FROM, Status
from typogram.mail.port import PermanentMailError, TemporaryMailError
from typogram.mail.smtp import refusal
from typogram.mail.suppressions import Reason, blocks
from typogram.mail.unclaimed import EMAIL_MAX, is_unclaimed, shown, unclaimed


def test_smtp_errors_split_into_temporary_and_permanent() -> None:
    assert isinstance(refusal(aiosmtplib.SMTPResponseException(451, "later")), TemporaryMailError)
    assert isinstance(refusal(aiosmtplib.SMTPResponseException(554, "no")), PermanentMailError)
    assert isinstance(refusal(aiosmtplib.SMTPServerDisconnected("gone")), TemporaryMailError)
    assert isinstance(refusal(aiosmtplib.SMTPConnectError("refused")), TemporaryMailError)
    assert isinstance(refusal(ConnectionResetError()), TemporaryMailError)
    refused = aiosmtplib.SMTPRecipientsRefused(
        [aiosmtplib.SMTPRecipientRefused(550, "no such user", "a@b.c")]
    )
    error = refusal(refused)
    assert isinstance(error, PermanentMailError) and error.code == 550
    busy = aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(450, "busy", "a@b.c")])
    assert isinstance(refusal(busy), TemporaryMailError)


@given(st.emails())
def test_an_unclaimed_address_reads_as_the_address_and_is_never_one(address: str) -> None:
    stored = unclaimed(address)
    assert is_unclaimed(stored) and len(stored) <= EMAIL_MAX
    assert " " in stored  # no registered address has a space
    assert address.startswith(shown(stored))
    assert shown(address) == address and not is_unclaimed(address)
    assert unclaimed(address) != stored  # unique per account


def test_what_a_suppression_holds_back() -> None:
    assert blocks(Reason.BOUNCED, security=True) and blocks(Reason.BOUNCED, security=False)
    assert blocks(Reason.COMPLAINED, security=False)
    assert not blocks(Reason.COMPLAINED, security=True)
    assert not blocks(None, security=False)


def test_delivery_never_moves_a_message_back_or_out_of_failed() -> None:
    for target, sources in DELIVERY_FROM.items():
        assert Status.QUEUED not in sources and Status.FAILED not in sources
        assert target not in sources
    assert Status.BOUNCED not in DELIVERY_FROM[Status.DELIVERED]
