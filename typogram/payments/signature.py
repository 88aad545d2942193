"""Webhook signatures in Stripe's scheme: one signing rule, one verification path.

``Stripe-Signature: t=<unix s>,v1=<hex HMAC-SHA256(secret, "{t}.{raw body}")>``.
The sandbox signs with ``sign``; every webhook, the sandbox's and Stripe's,
is checked by ``verify``, which runs the ``stripe`` library's own check
(constant-time comparison, a stale timestamp refused) and also refuses a
timestamp more than the tolerance in the future, so a captured signature
cannot be made to last by a skewed clock. Nothing of the body is parsed
before it passes.
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "Stripe-Signature"


class SignatureError(ValueError):
    """The webhook is not signed by the secret, or not within the time window."""


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """The ``Stripe-Signature`` header value for ``body`` sent at ``timestamp`` (unix s)."""
    signed = str(timestamp).encode() + b"." + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(body: bytes, header: str | None, secret: str, *, tolerance_s: int, now_s: int) -> int:
    """Check ``header`` against ``body``; returns its timestamp or raises ``SignatureError``."""
    import stripe

    if not header:
        raise SignatureError(f"missing {HEADER} header")
    if len(header) > 2048:
        raise SignatureError(f"{HEADER} header too long")
    try:
        body.decode("utf-8")  # the library signs text; a non-UTF-8 body is not Stripe's
        stripe.WebhookSignature.verify_header(body, header, secret, tolerance_s)
    except UnicodeDecodeError as exc:
        raise SignatureError("body is not UTF-8") from exc
    except stripe.SignatureVerificationError as exc:
        raise SignatureError(str(exc).split(".")[0]) from exc
    timestamp = _timestamp(header)
    if timestamp > now_s + tolerance_s:
        raise SignatureError("timestamp is in the future, outside the tolerance")
    return timestamp


def _timestamp(header: str) -> int:
    for item in header.split(","):
        name, _, value = item.partition("=")
        if name.strip() == "t":
            return int(value)
    raise SignatureError("no timestamp")  # verify_header already refused this
