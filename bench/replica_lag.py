"""Replica lag under the results load: how far a GTID replica trails the primary.

``python -m bench.replica_lag --rate 100 --seconds 20`` starts a MariaDB
primary and a GTID replica of its own (``tests/clusters.py``), runs
``typogram serve`` on the primary with the replica configured (every worker
group writes its rows, statistics, analytics and achievements there), drives
it with ``bench.results`` at ``--rate`` results/s, and meanwhile samples both
servers' GTID positions every ``--sample-ms`` (``typogram.db.gtid``: the lag
is the age of the newest primary position the replica has applied). It
prints the lag's p50 / p95 / max during the load, the transactions the
primary committed, and what the platform itself exported
(``typogram_db_replica_lag_seconds``, checked every 0.2 s here).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from typogram.db import gtid


def _sample(pair: object, stop: threading.Event, every_s: float, lags: list[float]) -> None:
    tracker = gtid.LagTracker(history=4096)
    while not stop.is_set():
        at = time.time()
        primary = gtid.parse(pair.sql("primary", "SELECT @@gtid_binlog_pos")[0][0])  # type: ignore[attr-defined]
        tracker.record(at, primary)
        replica = gtid.parse(pair.sql("replica", "SELECT @@gtid_slave_pos")[0][0])  # type: ignore[attr-defined]
        lags.append(tracker.lag(replica, time.time()))
        time.sleep(every_s)


def _exported_lag(url: str) -> float | None:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith("typogram_db_replica_lag_seconds{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--sample-ms", type=float, default=50.0)
    parser.add_argument("--port", type=int, default=18400)
    args = parser.parse_args()
    from tests.clusters import MariaDBPair

    with tempfile.TemporaryDirectory() as root:
        pair = MariaDBPair(Path(root) / "pair")
        pair.start()
        serve = None
        try:
            pair.sql("primary", "CREATE DATABASE typogram")
            pair.wait_caught_up()
            url = f"http://127.0.0.1:{args.port}"
            env = {
                **os.environ,
                "TYPOGRAM_DATA_DIR": str(Path(root) / "data"),
                "TYPOGRAM_DATABASE_URL": f"{pair.primary_server}/typogram",
                "TYPOGRAM_DATABASE_REPLICAS": f"{pair.replica_server}/typogram",
                "TYPOGRAM_DATABASE_REPLICA_CHECK_S": "0.2",
                "TYPOGRAM_HTTP_PORT": str(args.port),
                "TYPOGRAM_WS_PORT": str(args.port + 1),
                "TYPOGRAM_METRICS_PORT": "0",
                "TYPOGRAM_RATE_LIMIT_IP_PER_MIN": "100000000",
                "TYPOGRAM_RATE_LIMIT_USER_PER_MIN": "100000000",
                "TYPOGRAM_LOG_LEVEL": "WARNING",
            }
            serve = subprocess.Popen([sys.executable, "-m", "roles", "serve"], env=env)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            before = gtid.parse(pair.sql("primary", "SELECT @@gtid_binlog_pos")[0][0])
            lags: list[float] = []
            exported: list[float] = []
            stop = threading.Event()
            sampler = threading.Thread(
                target=_sample, args=(pair, stop, args.sample_ms / 1000, lags)
            )
            load = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bench.results",
                    "--url",
                    url,
                    "--rates",
                    str(args.rate),
                    "--seconds",
                    str(args.seconds),
                    "--users",
                    "100",
                    "--probes",
                    "10",
                ],
            )
            sampler.start()
            while load.poll() is None:
                value = _exported_lag(url)
                if value is not None:
                    exported.append(value)
                time.sleep(0.5)
            stop.set()
            sampler.join()
            after = gtid.parse(pair.sql("primary", "SELECT @@gtid_binlog_pos")[0][0])
            committed = sum(after.values()) - sum(before.values())
            lags_ms = sorted(lag * 1000 for lag in lags)
            p95 = lags_ms[int(0.95 * (len(lags_ms) - 1))]
            print(
                f"rate {args.rate}/s for {args.seconds:g} s: {committed} transactions on the "
                f"primary; replica lag over {len(lags_ms)} samples: p50 "
                f"{statistics.median(lags_ms):.0f} ms, p95 {p95:.0f} ms, max {lags_ms[-1]:.0f} ms; "
                f"exported typogram_db_replica_lag_seconds max {max(exported or [0]):.2f} s"
            )
        finally:
            if serve is not None:
                serve.terminate()
                serve.wait(timeout=30)
            pair.stop()


if __name__ == "__main__":
    main()
