"""Results benchmark: concurrent users submitting typing results, and the pipeline's lag.

Registers ``--users`` accounts against a running platform (REST plus the
``results``, ``leaderboards`` and ``analytics`` worker groups), then for
``--seconds`` runs ``--concurrency`` clients that each take a new 25-word
test and submit a human-like keystroke log (``POST /api/v1/results``).

Reported: submission p50/p95/p99 and results/s (only the POST is timed, not
``GET /api/v1/tests/new``), the same percentiles as the REST process's own
latency histogram sees them (bucket bounds, from ``/metrics``: the client on
the same cores adds its own scheduling delay), and the p95 lag from a user's *first* accepted
submission to

* the leaderboard: ``GET /api/v1/leaderboards/words-25-en?window=daily&around=me``
  shows the user (the sorted set itself; the cached top-1000 view adds at
  most ``VIEW_MIN_AGE_S``), and
* insights: ``GET /api/v1/insights/me`` counts the result.

Only first submissions are probed (a later, slower result does not move the
board), at most ``--probes`` of them, polled every ``--poll-ms``. Start the
platform with generous rate limits, e.g.::

    TYPOGRAM_RATE_LIMIT_IP_PER_MIN=100000000 TYPOGRAM_RATE_LIMIT_USER_PER_MIN=100000000 \\
        TYPOGRAM_DATA_DIR=$(mktemp -d) typogram serve
    python -m bench.results --url http://127.0.0.1:8000
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import statistics
import time
import uuid
from dataclasses import dataclass, field

import httpx

SERVER_HISTOGRAM = "typogram_http_request_duration_seconds"
TARGET_SUBMIT_P95_MS = 200.0
TARGET_BOARD_LAG_P95_MS = 1000.0
TARGET_INSIGHTS_LAG_P95_MS = 5000.0
PROBE_LIMIT_S = 30.0


def percentile(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def human_log(text: str, rng: random.Random, pace_ms: float) -> list[list[object]]:
    """Irregular intervals around ``pace_ms``: accepted by the plausibility checks."""
    t, log = 0, []
    for ch in text:
        log.append([t, ch])
        t += max(25, int(rng.gauss(pace_ms, pace_ms * 0.35)))
    return log


async def server_buckets(client: httpx.AsyncClient) -> dict[float, float]:
    """The REST process's own latency histogram for ``POST /api/v1/results``: cumulative
    counts by upper bound (s), from ``/metrics``; empty when it cannot be read."""
    try:
        text = (await client.get("/metrics")).text
    except httpx.HTTPError:
        return {}
    found: dict[float, float] = {}
    for line in text.splitlines():
        if (
            line.startswith(SERVER_HISTOGRAM + "_bucket{")
            and 'method="POST"' in line
            and 'route="/api/v1/results"' in line
        ):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            found[math.inf if bound == "+Inf" else float(bound)] = float(line.rsplit(" ", 1)[1])
    return found


def bucket_of(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """The smallest bucket bound (ms) holding the q-th percentile of the requests in between."""
    counts = sorted((bound, after[bound] - before.get(bound, 0.0)) for bound in after)
    total = counts[-1][1] if counts else 0.0
    for bound, cumulative in counts:
        if total and cumulative >= q / 100 * total:
            return bound * 1000
    return float("nan")


def cpu_ms(pid: int) -> int:
    """utime + stime of a local process in ms (Linux ``/proc``): robust to client noise."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 // os.sysconf("SC_CLK_TCK")


@dataclass
class Stats:
    submit_ms: list[float] = field(default_factory=list)
    server_cpu_ms: int | None = None
    server_ms: dict[int, float] = field(default_factory=dict)  # percentile -> bucket bound
    errors: int = 0
    board_lag_ms: list[float] = field(default_factory=list)
    insights_lag_ms: list[float] = field(default_factory=list)
    lost: int = 0
    client_lag_ms: list[float] = field(default_factory=list)  # this process's own loop delay
    probed: set[str] = field(default_factory=set)


async def _probe(
    client: httpx.AsyncClient, auth: dict[str, str], sent: float, stats: Stats, poll_s: float
) -> None:
    board_done = insights_done = False
    deadline = sent + PROBE_LIMIT_S
    while not (board_done and insights_done) and time.perf_counter() < deadline:
        if not board_done:
            r = await client.get(
                "/api/v1/leaderboards/words-25-en?window=daily&around=me", headers=auth
            )
            if r.status_code == 200 and r.json()["rank"] is not None:
                stats.board_lag_ms.append((time.perf_counter() - sent) * 1000)
                board_done = True
        if not insights_done:
            r = await client.get("/api/v1/insights/me", headers=auth)
            if r.status_code == 200 and r.json()["tests"] >= 1:
                stats.insights_lag_ms.append((time.perf_counter() - sent) * 1000)
                insights_done = True
        await asyncio.sleep(poll_s)
    stats.lost += (not board_done) + (not insights_done)


async def run(args: argparse.Namespace) -> Stats:
    limits = httpx.Limits(max_connections=args.concurrency * 2)
    stats = Stats()
    async with httpx.AsyncClient(base_url=args.url, limits=limits, timeout=30) as client:
        run_id = uuid.uuid4().hex[:6]
        tokens: list[dict[str, str]] = []
        for i in range(args.users):
            name = f"r{run_id}{i}"
            response = await client.post(
                "/api/v1/auth/register",
                json={"username": name, "email": f"{name}@bench.test", "password": "bench pw 1"},
            )
            response.raise_for_status()
            tokens.append({"Authorization": f"Bearer {response.json()['access_token']}"})
        probes: list[asyncio.Task[None]] = []
        buckets_before = await server_buckets(client)
        cpu_before = cpu_ms(args.server_pid) if args.server_pid else None
        stop_at = time.perf_counter() + args.seconds
        counter = iter(range(10**9))

        async def loop(worker: int) -> None:
            rng = random.Random(worker)
            while time.perf_counter() < stop_at:
                user = next(counter) % len(tokens)
                auth = tokens[user]
                try:
                    test = await client.get("/api/v1/tests/new?mode=words&count=25", headers=auth)
                except httpx.HTTPError:
                    stats.errors += 1
                    continue
                if test.status_code != 200:
                    stats.errors += 1
                    continue
                body = test.json()
                log = human_log(body["text"], rng, rng.uniform(110, 190))
                started = time.perf_counter()
                try:
                    response = await client.post(
                        "/api/v1/results",
                        json={"test_id": body["test_id"], "keystrokes": log},
                        headers=auth,
                    )
                except httpx.HTTPError:
                    stats.errors += 1
                    continue
                finally:
                    stats.submit_ms.append((time.perf_counter() - started) * 1000)
                if response.status_code != 201:
                    stats.errors += 1
                    continue
                key = auth["Authorization"]
                if key not in stats.probed and len(stats.probed) < args.probes:
                    stats.probed.add(key)
                    probes.append(
                        asyncio.create_task(
                            _probe(client, auth, started, stats, args.poll_ms / 1000)
                        )
                    )

        async def watch_client() -> None:
            # How late a 50 ms sleep wakes up: the delay every timing here includes
            # when the load generator itself runs short of CPU.
            while time.perf_counter() < stop_at:
                asked = time.perf_counter()
                await asyncio.sleep(0.05)
                stats.client_lag_ms.append((time.perf_counter() - asked - 0.05) * 1000)

        await asyncio.gather(watch_client(), *(loop(w) for w in range(args.concurrency)))
        if cpu_before is not None:
            stats.server_cpu_ms = cpu_ms(args.server_pid) - cpu_before
        buckets_after = await server_buckets(client)
        if buckets_after:
            stats.server_ms = {q: bucket_of(buckets_before, buckets_after, q) for q in (50, 95, 99)}
        await asyncio.gather(*probes)
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--probes", type=int, default=50)
    parser.add_argument("--poll-ms", type=float, default=50.0)
    parser.add_argument(
        "--server-pid",
        type=int,
        default=0,
        help="a local REST process: report its CPU ms per result over the submission phase",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    stats = asyncio.run(run(args))
    elapsed = min(args.seconds, time.perf_counter() - started)
    ok = len(stats.submit_ms) - stats.errors
    s = stats.submit_ms
    print(f"submissions {len(s)} ok {ok} errors {stats.errors} results/s {ok / elapsed:.0f}")
    print(
        f"submit ms    p50 {percentile(s, 50):7.1f} p95 {percentile(s, 95):7.1f} "
        f"p99 {percentile(s, 99):7.1f}  target p95 < {TARGET_SUBMIT_P95_MS:.0f}"
    )
    if stats.server_ms:
        bounds = " ".join(f"p{q} <= {ms:g}" for q, ms in stats.server_ms.items())
        print(f"server-side submit ms (REST histogram buckets): {bounds}")
    for name, lags, target in (
        ("board lag", stats.board_lag_ms, TARGET_BOARD_LAG_P95_MS),
        ("insights lag", stats.insights_lag_ms, TARGET_INSIGHTS_LAG_P95_MS),
    ):
        mean = statistics.fmean(lags) if lags else float("nan")
        print(
            f"{name:12} n {len(lags):4} mean {mean:7.1f} p95 {percentile(lags, 95):7.1f} ms"
            f"  target p95 < {target:.0f}"
        )
    print(f"probes that timed out: {stats.lost}")
    lag = stats.client_lag_ms
    print(
        f"client loop delay ms p50 {percentile(lag, 50):.1f} p95 {percentile(lag, 95):.1f} "
        "(the load generator's own scheduling delay, in every client-side number)"
    )
    if stats.server_cpu_ms is not None and ok:
        print(
            f"server cpu   {stats.server_cpu_ms} ms over the submission phase, "
            f"{stats.server_cpu_ms / ok:.2f} ms per result (includes tests/new and probes)"
        )


if __name__ == "__main__":
    main()
