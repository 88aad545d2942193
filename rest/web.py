"""The browser client: ``web/`` served at ``/``, and the config the page reads first.

The static files live in the repository (``web/`` beside this package), which
is where an editable install (``pip install -e .``) finds them. A process
that has no such folder refuses to start with a message saying so rather
than serving a blank page.

Only paths outside the API reach the static files: ``WebMount`` declines
``/api/...`` and the ops paths, so the router still answers them with its
own JSON 404 and 405 errors.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from rest.context import platform_of
from rest.routing import Answer, Api

api = Api()

WEB_DIR = Path(__file__).resolve().parent.parent / "web"

# Paths the static app never answers: the API and the ops endpoints.
RESERVED_PREFIX = "/api/"
RESERVED_PATHS = frozenset({"/api", "/health", "/ready", "/metrics"})

# Every asset is unversioned (no build step, no hashed names), so the browser
# revalidates each one with its ETag; an unchanged file costs a 304.
REVALIDATE = "no-cache"
LONG_LIVED = "public, max-age=86400"
LONG_LIVED_SUFFIXES = (".png", ".svg", ".ico", ".woff2")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # The gateway listens on its own port, so WebSocket URLs are not 'self'. Images may
    # come from any https origin (course and post covers, images in posts).
    "Content-Security-Policy": (
        "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data: https:; "
        "style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'"
    ),
}


class WebFilesMissing(RuntimeError):
    """The ``web/`` folder is not where the REST process expects it."""


class ClientConfig(msgspec.Struct):
    ws_url: str


class WebFiles(StaticFiles):
    """``StaticFiles`` with cache and security headers on every answer."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        long_lived = os.fspath(full_path).endswith(LONG_LIVED_SUFFIXES)
        response.headers["Cache-Control"] = LONG_LIVED if long_lived else REVALIDATE
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response


class WebMount(Mount):
    """A mount at ``/`` that leaves the API and ops paths to the router."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path = scope.get("path", "")
        if scope.get("type") == "http" and (
            path.startswith(RESERVED_PREFIX) or path in RESERVED_PATHS
        ):
            return Match.NONE, {}
        return super().matches(scope)


def web_mount(directory: Path = WEB_DIR) -> Mount:
    """The static client at ``/``; place it after every API route.

    Raises ``WebFilesMissing`` when ``directory`` has no ``index.html``.
    """
    if not (directory / "index.html").is_file():
        raise WebFilesMissing(
            f"the browser client is missing: no index.html in {directory}. "
            "Run Typogram from a source checkout installed with `pip install -e .`."
        )
    return WebMount("/", app=WebFiles(directory=os.fspath(directory), html=True), name="web")


def _is_wildcard(host: str) -> bool:
    if host in ("", "0.0.0.0", "::"):
        return True
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def _url_host(host: str) -> str:
    """``host`` as it goes in a URL: IPv6 literals in brackets."""
    try:
        return f"[{host}]" if ipaddress.ip_address(host).version == 6 else host
    except ValueError:
        return host


@api.route(
    "GET",
    "/api/v1/client-config",
    summary="Where a browser client finds the WebSocket gateway",
    tag="web",
    response=ClientConfig,
    errors=(429,),
)
async def client_config(request: Request) -> Answer:
    settings = platform_of(request).settings
    host = settings.host
    if _is_wildcard(host):
        # Listening everywhere: the page reaches the gateway the way it reached us.
        host = request.url.hostname or "127.0.0.1"
    scheme = "wss" if request.url.scheme == "https" else "ws"
    return Answer(
        {"ws_url": f"{scheme}://{_url_host(host)}:{settings.ws_port}/ws"},
        headers={"Cache-Control": "no-store"},
    )
