"""Login throttling that an attacker cannot turn against the account's owner.

Rules:

1. An attempt is counted before its password is verified, with one atomic
   increment per counter; the verification runs only when every count is
   within its limit. However many attempts arrive at once, no more than the
   limit are verified.
2. Attempts are keyed on the *account* the login name resolves to (its
   username and e-mail are one account; an unknown name is its own key) and
   on the client IP:
   * per (account, IP): ``per_pair`` attempts per window — the attacker's own
     pair, never the owner's elsewhere;
   * per IP: ``per_ip`` attempts per window over all accounts (spraying);
   * per account: ``per_account`` attempts per window from IPs that have not
     logged into this account lately (a distributed guess), counting only the
     attempts their pair and IP limits let through. An IP that has
     (``known_ttl_s``) is not counted there, so the owner at home still logs in
     while strangers hammer the account, and one address alone can never use
     the account's allowance up.
3. Failures back off progressively per (account, IP): after ``backoff_free``
   failures in a row, the pair waits ``backoff_base_s * 2**(n - free - 1)``
   seconds (at most ``backoff_max_s``) before its next attempt is admitted.
   A success clears the pair's streak, wait and window count.
4. Every refusal says which limit refused and how long to wait; the caller
   audits it.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from typogram import keys
from typogram.ports import Cache

if TYPE_CHECKING:
    from typogram.platform import Platform
    from typogram.settings import Settings

# How long a failure streak is remembered without a new failure.
STREAK_TTL_S = 24 * 3600


@dataclass(frozen=True, slots=True)
class LoginLimits:
    per_pair: int = 10
    per_ip: int = 100
    per_account: int = 100
    window_s: int = 900
    backoff_free: int = 3
    backoff_base_s: float = 1.0
    backoff_max_s: int = 900
    known_ttl_s: int = 30 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Decision:
    """``scope`` names the limit that refused (``pair``, ``ip``, ``account``, ``backoff``)."""

    allowed: bool
    scope: str = ""
    retry_after: int = 0


ADMITTED = Decision(True)


def backoff_seconds(failures: int, limits: LoginLimits) -> int:
    """The wait after the ``failures``-th failure in a row (rule 3); 0 while still free."""
    over = failures - limits.backoff_free
    if over <= 0:
        return 0
    # Capped before the power: a streak of thousands must not overflow.
    wait = limits.backoff_base_s * 2 ** min(over - 1, 32)
    return int(min(math.ceil(wait), limits.backoff_max_s))


def over_limit(counts: list[int], limits: list[int]) -> int | None:
    """Index of the first count over its limit; ``None`` when all are within."""
    for index, (count, limit) in enumerate(zip(counts, limits, strict=True)):
        if count > limit:
            return index
    return None


class LoginThrottle:
    """The rules above over the shared cache; one per process, stateless itself."""

    def __init__(
        self, cache: Cache, limits: LoginLimits, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._cache = cache
        self._limits = limits
        self._clock = clock

    def _window(self) -> tuple[int, int]:
        """The current window's number and the whole seconds left in it."""
        now = self._clock()
        size = self._limits.window_s
        window = int(now // size)
        return window, max(1, (window + 1) * size - int(now))

    async def admit(self, account: str, ip: str) -> Decision:
        """Count one attempt on ``account`` from ``ip``; verify the password only if allowed.

        The account-wide counter counts only attempts its own pair and IP limits let
        through, so one address hammering an account cannot use it up for everyone.
        """
        limits = self._limits
        pair = f"{account}|{ip}"
        waiting, known = await asyncio.gather(
            self._cache.ttl(keys.login_backoff(pair)),
            self._cache.get(keys.login_known(account, ip)),
        )
        if waiting is not None and waiting > 0:
            return Decision(False, "backoff", max(1, math.ceil(waiting)))
        window, left = self._window()
        ttl = limits.window_s + 1
        counts = await self._cache.incr_each(
            [
                keys.rate_limit("login-pair", pair, window),
                keys.rate_limit("login-ip", ip, window),
            ],
            ttl=ttl,
        )
        refused = over_limit(counts, [limits.per_pair, limits.per_ip])
        if refused is not None:
            return Decision(False, ("pair", "ip")[refused], left)
        if known is None:
            account_key = keys.rate_limit("login-account", account, window)
            count = await self._cache.incr(account_key, ttl=ttl)
            if count > limits.per_account:
                return Decision(False, "account", left)
        return ADMITTED

    async def failed(self, account: str, ip: str) -> int:
        """Record a failed verification; returns the wait now imposed on the pair."""
        pair = f"{account}|{ip}"
        streak = await self._cache.incr(keys.login_streak(pair), ttl=STREAK_TTL_S)
        wait = backoff_seconds(streak, self._limits)
        if wait:
            await self._cache.set(keys.login_backoff(pair), b"1", ttl=wait)
        return wait

    async def succeeded(self, account: str, ip: str) -> None:
        """The pair logged in: clear its streak, wait and count; remember the IP."""
        pair = f"{account}|{ip}"
        window, _ = self._window()
        await self._cache.delete(
            keys.login_streak(pair),
            keys.login_backoff(pair),
            keys.rate_limit("login-pair", pair, window),
        )
        await self._cache.set(keys.login_known(account, ip), b"1", ttl=self._limits.known_ttl_s)


async def within_hourly_quota(cache: Cache, scope: str, ip: str, limit: int, now: float) -> int:
    """Count one ``scope`` action (``register``, ``guest``) from ``ip`` in this hour's window.

    Returns 0 when within ``limit``, else the seconds until the window ends.
    """
    window = int(now // 3600)
    count = await cache.incr(keys.rate_limit(scope, ip, window), ttl=3601)
    return 0 if count <= limit else max(1, (window + 1) * 3600 - int(now))


def limits_of(settings: Settings) -> LoginLimits:
    return LoginLimits(
        per_pair=settings.login_attempts_per_15min,
        per_ip=settings.login_attempts_per_ip_per_15min,
        per_account=settings.login_attempts_per_account_per_15min,
        window_s=900,
        backoff_free=settings.login_backoff_free_failures,
        backoff_base_s=settings.login_backoff_base_s,
        backoff_max_s=settings.login_backoff_max_s,
        known_ttl_s=settings.login_known_ip_days * 24 * 3600,
    )


def throttle_of(platform: Platform) -> LoginThrottle:
    return LoginThrottle(platform.cache, limits_of(platform.settings))
