"""Where the Redis master is: a fixed URL, or whichever server Redis Sentinel names.

With ``redis_sentinels`` set, every new connection asks the sentinels (in
turn, the last one that answered first) for the master of
``redis_sentinel_master`` and connects there; ``redis_url`` then only gives
the scheme, credentials and database number (its host and port are
replaced). Connections check with ``ROLE`` that the server is still the
master, and a ``READONLY`` reply (a demoted master) closes the connection,
so the next command resolves the master again: after a failover each lean
connection (``redis_wire``) and redis-py's own clients find the new master
by themselves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Self
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.asyncio.sentinel import Sentinel

from typogram.settings import Settings


def parse_address(address: str) -> tuple[str, int]:
    """``host:port`` (or ``[v6]:port``, or a bare host for 26379) → ``(host, port)``."""
    host, _, port = address.strip().rpartition(":")
    if not host:
        return address.strip(), 26379
    if not port.isdigit():
        raise ValueError(f"not a sentinel address (host:port): {address!r}")
    return host.strip("[]"), int(port)


class RedisEndpoint:
    """A URL, or Sentinel's current master; ``aclose`` releases the sentinel clients."""

    def __init__(
        self,
        url: str,
        *,
        sentinels: Sequence[str] = (),
        master: str = "typogram",
        sentinel_password: str = "",
        timeout_s: float = 5.0,
    ) -> None:
        self.url = url or "redis://"
        self.sentinels = tuple(parse_address(a) for a in sentinels)
        self.master = master
        self._sentinel_password = sentinel_password
        self._timeout_s = timeout_s
        self._sentinel: Sentinel | None = None
        self.resolutions = 0  # master look-ups through the sentinels
        self.last_master = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(
            settings.redis_url,
            sentinels=settings.redis_sentinels,
            master=settings.redis_sentinel_master,
            sentinel_password=settings.redis_sentinel_password,
            timeout_s=settings.backend_connect_timeout_s,
        )

    @property
    def uses_sentinel(self) -> bool:
        return bool(self.sentinels)

    def key(self) -> tuple[Any, ...]:
        """Equal for endpoints that reach the same data (a script may act for both)."""
        return (self.url, self.sentinels, self.master) if self.sentinels else (self.url,)

    def describe(self) -> str:
        """For error lines: the URL without its password, or the sentinels and master name."""
        if not self.sentinels:
            return redact(self.url)
        listed = ",".join(f"{host}:{port}" for host, port in self.sentinels)
        return f"sentinel://{listed}/{self.master}"

    def _sentinel_client(self) -> Sentinel:
        if self._sentinel is None:
            password = self._sentinel_password or None
            self._sentinel = Sentinel(
                self.sentinels,
                sentinel_kwargs={
                    "password": password,
                    "socket_timeout": self._timeout_s,
                    "socket_connect_timeout": self._timeout_s,
                },
                socket_timeout=self._timeout_s,
                socket_connect_timeout=self._timeout_s,
            )
        return self._sentinel

    async def resolve(self) -> str:
        """The URL to connect to now; with sentinels, that of the master they name.

        Raises redis-py's ``MasterNotFoundError`` (a ``ConnectionError``) while
        no sentinel names a healthy master (during a failover).
        """
        if not self.sentinels:
            return self.url
        async with asyncio.timeout(self._timeout_s):
            host, port = await self._sentinel_client().discover_master(self.master)
        self.resolutions += 1
        self.last_master = f"{host}:{port}"
        return with_address(self.url, str(host), int(port))

    def client(self, **options: Any) -> Redis:
        """A redis-py client of the master (re-resolved on reconnect with sentinels)."""
        if not self.sentinels:
            return Redis.from_url(self.url, **options)
        parts = urlsplit(self.url)
        db = parts.path.strip("/") or "0"
        client: Redis = self._sentinel_client().master_for(
            self.master,
            username=parts.username,
            password=parts.password,
            db=int(db),
            ssl=parts.scheme == "rediss",
            **options,
        )
        return client

    async def aclose(self) -> None:
        if self._sentinel is not None:
            for client in self._sentinel.sentinels:
                await client.aclose()
            self._sentinel = None


def with_address(url: str, host: str, port: int) -> str:
    parts = urlsplit(url)
    credentials = ""
    if parts.username or parts.password:
        credentials = f"{parts.username or ''}:{parts.password or ''}@"
    shown = f"[{host}]" if ":" in host else host
    return urlunsplit(parts._replace(netloc=f"{credentials}{shown}:{port}"))


def redact(url: str) -> str:
    """The URL without its password, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))
