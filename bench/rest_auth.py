"""REST benchmark: logins and profile reads under concurrency.

Registers ``--users`` accounts, then runs two phases against a running REST
process, each with ``--concurrency`` clients for ``--seconds``:

* ``login``: ``POST /api/v1/auth/login`` (Argon2id verification included);
* ``profile``: ``GET /api/v1/users/me`` and ``GET /api/v1/users/{username}``
  (cache-aside profile reads).

Prints p50/p95/p99 latency and requests/s per phase beside the targets
(login < 200 ms p95, profile < 100 ms p95). Start the server with generous
rate limits first, e.g.::

    TYPOGRAM_RATE_LIMIT_IP_PER_MIN=100000000 TYPOGRAM_RATE_LIMIT_USER_PER_MIN=100000000 \\
        TYPOGRAM_LOGIN_ATTEMPTS_PER_15MIN=1000000 \\
        TYPOGRAM_LOGIN_ATTEMPTS_PER_IP_PER_15MIN=100000000 \\
        TYPOGRAM_REGISTER_PER_IP_PER_HOUR=100000000 typogram rest
    python -m bench.rest_auth --url http://127.0.0.1:8000
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

import httpx

TARGETS_MS = {"login": 200.0, "profile": 100.0}


def percentile(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
    return ordered[index]


async def _phase(
    name: str,
    concurrency: int,
    seconds: float,
    request: Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]],
    client: httpx.AsyncClient,
) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def loop(worker: int) -> None:
        nonlocal errors
        i = worker
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            response = await request(client, i)
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status_code >= 400:
                errors += 1
            i += concurrency

    started = time.perf_counter()
    await asyncio.gather(*(loop(w) for w in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {
        "phase": name,  # type: ignore[dict-item]
        "requests": len(latencies),
        "errors": errors,
        "rps": len(latencies) / elapsed,
        "p50": percentile(latencies, 50),
        "p95": percentile(latencies, 95),
        "p99": percentile(latencies, 99),
        "mean": statistics.fmean(latencies) if latencies else float("nan"),
    }


async def run(url: str, users: int, concurrency: int, seconds: float) -> list[dict[str, float]]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        run_id = uuid.uuid4().hex[:6]
        accounts: list[tuple[str, str]] = []
        for i in range(users):
            name = f"b{run_id}{i}"
            response = await client.post(
                "/api/v1/auth/register",
                json={
                    "username": name,
                    "email": f"{name}@bench.test",
                    "password": "bench password",
                },
            )
            response.raise_for_status()
            accounts.append((name, response.json()["access_token"]))

        async def login(c: httpx.AsyncClient, i: int) -> httpx.Response:
            name, _ = accounts[i % users]
            return await c.post(
                "/api/v1/auth/login", json={"login": name, "password": "bench password"}
            )

        async def profile(c: httpx.AsyncClient, i: int) -> httpx.Response:
            _name, token = accounts[i % users]
            if i % 2:
                return await c.get(f"/api/v1/users/{random.choice(accounts)[0]}")
            return await c.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})

        return [
            await _phase("login", concurrency, seconds, login, client),
            await _phase("profile", concurrency, seconds, profile, client),
        ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    results = asyncio.run(run(args.url, args.users, args.concurrency, args.seconds))
    print(
        f"{'phase':8} {'req':>7} {'err':>5} {'req/s':>8} "
        f"{'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}  target p95"
    )
    for r in results:
        target = TARGETS_MS[str(r["phase"])]
        verdict = "ok" if r["p95"] < target else "MISSED"
        print(
            f"{r['phase']:8} {r['requests']:>7} {r['errors']:>5} {r['rps']:>8.0f} "
            f"{r['p50']:>8.1f} {r['p95']:>8.1f} {r['p99']:>8.1f}  < {target:.0f} ms {verdict}"
        )


if __name__ == "__main__":
    main()
