"""Links that e-mail carries: the pages they open and the signed unsubscribe token.

An unsubscribe token is ``<user id>.<category>.<signature>``, the signature
an HMAC-SHA256 (truncated to 128 bits) of the first two parts under a key
derived from the JWT secret. It needs no storage and does not expire (RFC
8058 asks that the link keep working); it can only ever turn one category
of one user off.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote

from typogram.mail.catalog import Category

_PURPOSE = b"typogram-unsubscribe-v1:"


def _signature(secret: str, user_id: str, category: str) -> str:
    digest = hmac.new(
        secret.encode(), _PURPOSE + f"{user_id}.{category}".encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


def unsubscribe_token(secret: str, user_id: str, category: Category) -> str:
    return f"{user_id}.{category.value}.{_signature(secret, user_id, category.value)}"


def read_unsubscribe_token(secret: str, token: str) -> tuple[str, Category]:
    """The user and category a token names; raises ``ValueError`` for any other string."""
    if len(token) > 200:
        raise ValueError("token too long")
    user_id, _, rest = token.partition(".")
    category, _, signature = rest.partition(".")
    if not (user_id and category and signature):
        raise ValueError("malformed token")
    expected = _signature(secret, user_id, category)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise ValueError("bad signature")
    return user_id, Category(category)


def unsubscribe_url(site_url: str, secret: str, user_id: str, category: Category) -> str:
    return f"{site_url}/unsubscribe?token={quote(unsubscribe_token(secret, user_id, category))}"


def verify_url(site_url: str, token: str) -> str:
    """The client's verification landing page (``#/verify-email``)."""
    return f"{site_url}/#/verify-email?token={quote(token)}"


def reset_url(site_url: str, token: str = "") -> str:
    """The client's reset page with a token, or its "forgot password" page without one."""
    if not token:
        return f"{site_url}/#/forgot-password"
    return f"{site_url}/#/reset-password?token={quote(token)}"
