"""Cache-aside entries that a change can make stale at once, whatever raced it.

An entry is stored with the *version token* read before it was built; a
change writes a fresh token (and drops the entries it knows). A reader gets
the entry and the token in one round trip and uses the entry only when they
match, so an entry built from data read before a change — even one stored
after the change dropped it — is never served. The token lives longer than
any entry (``VERSION_TTL_FACTOR``), so an entry can never outlive the token
that makes it stale.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import orjson

from typogram.ports import Cache

VERSION_TTL_FACTOR = 2


async def read(cache: Cache, key: str, version_key: str) -> tuple[Any | None, str]:
    """The entry's value when it is current (else ``None``), and the token to build under."""
    raw, token = await asyncio.gather(cache.get(key), cache.get(version_key))
    version = (token or b"").decode()
    if raw is not None:
        entry = orjson.loads(raw)
        if isinstance(entry, dict) and entry.get("v") == version:
            return entry.get("value"), version
    return None, version


async def store(cache: Cache, key: str, version: str, value: Any, ttl: float) -> None:
    """Keep ``value`` (JSON-able) as built under ``version`` for ``ttl`` seconds."""
    await cache.set(key, orjson.dumps({"v": version, "value": value}), ttl=ttl)


async def invalidate(cache: Cache, version_key: str, *keys: str, ttl: float) -> None:
    """A change: a fresh token (every entry under the old one is stale) and drop ``keys``.
    ``ttl`` is the entries' lifetime; the token outlives it."""
    token = secrets.token_hex(8).encode()
    await asyncio.gather(
        cache.set(version_key, token, ttl=ttl * VERSION_TTL_FACTOR),
        cache.delete(*keys) if keys else asyncio.sleep(0),
    )
