"""Stripe-Signature: what the sandbox signs the stripe library verifies; attacks refused."""

from __future__ import annotations

import time

import pytest
import stripe
from hypothesis import given
from hypothesis import strategies as st

from typogram.payments.signature import SignatureError, sign, verify

SECRET = "whsec_test_secret"
BODY = b'{"id":"evt_1","type":"payment_intent.succeeded"}'


def now() -> int:
    return int(time.time())


def test_a_signed_body_verifies_and_matches_the_library() -> None:
    at = now()
    header = sign(BODY, SECRET, at)
    assert header == stripe.WebhookSignature.generate_signature_header(BODY.decode(), SECRET, at)
    assert verify(BODY, header, SECRET, tolerance_s=300, now_s=at) == at


@pytest.mark.parametrize(
    ("body", "header"),
    [
        (BODY, None),
        (BODY, ""),
        (BODY + b" ", "SIGNED"),  # tampered after signing
        (BODY, "t=1,v1=deadbeef"),
        (BODY, "garbage"),
        (BODY, "t=notanumber,v1=00"),
        (b"\xff" + BODY, "SIGNED"),
        (BODY, "x" * 5000),
    ],
)
def test_refused(body: bytes, header: str | None) -> None:
    if header == "SIGNED":
        header = sign(BODY if body.startswith(b"{") else body, SECRET, now())
    with pytest.raises(SignatureError):
        verify(body, header, SECRET, tolerance_s=300, now_s=now())


def test_wrong_secret_stale_and_future_timestamps_are_refused() -> None:
    at = now()
    with pytest.raises(SignatureError):
        verify(BODY, sign(BODY, "whsec_other", at), SECRET, tolerance_s=300, now_s=at)
    with pytest.raises(SignatureError):
        verify(BODY, sign(BODY, SECRET, at - 301), SECRET, tolerance_s=300, now_s=at)
    with pytest.raises(SignatureError):
        verify(BODY, sign(BODY, SECRET, at + 301), SECRET, tolerance_s=300, now_s=at)
    assert verify(BODY, sign(BODY, SECRET, at - 299), SECRET, tolerance_s=300, now_s=at)


def test_one_good_signature_among_several_passes() -> None:
    """Stripe sends several v1 signatures while a secret is being rolled."""
    at = now()
    good = sign(BODY, SECRET, at).split(",")[1]
    header = f"t={at},v1={'0' * 64},{good}"
    assert verify(BODY, header, SECRET, tolerance_s=300, now_s=at) == at


@given(st.binary(max_size=200))
def test_any_change_of_the_body_is_refused(noise: bytes) -> None:
    at = now()
    header = sign(BODY, SECRET, at)
    changed = BODY + noise if noise else BODY[:-1]
    with pytest.raises(SignatureError):
        verify(changed, header, SECRET, tolerance_s=300, now_s=at)
