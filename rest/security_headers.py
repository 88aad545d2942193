"""Security headers on every HTTP response, whatever produced it (API, pages, files, 404s).

``nosniff``, a Content-Security-Policy that forbids framing, plugins and
``<base>`` (``X-Frame-Options`` too, for old browsers), and a referrer policy
that never sends a path to another origin. A response
that already sets a header (the web client's fuller CSP) keeps its own.
"""

from __future__ import annotations

from typing import Final

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_HEADERS: Final = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    # For answers that are not pages (JSON, text, feeds): nothing to load, nothing to frame.
    # Pages set their own, fuller policy (``rest.web.SECURITY_HEADERS``).
    (
        "Content-Security-Policy",
        "default-src 'none'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    ),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
)


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in DEFAULT_HEADERS:
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
