"""The whole platform under a day's mix (Locust, headless): what one process of each role sustains.

``python -m bench.platform_load --users 30,60,90 --step-s 30 --runs 3`` starts
the distributed platform in processes on this machine (a MariaDB database and
a Redis prefix of its own on the shared servers, a tansu broker,
``typogram migrate``, one ``typogram rest``, one ``typogram gateway`` and one
``typogram worker all``), registers the accounts, then for each step runs
``locust -f bench/platform_load/locustfile.py --headless`` with that many
users (four typists, one chatter and two racers in seven) for ``--step-s`` seconds and prints, per
step: requests/s, failures, per-request p95 against the strategy's target,
and each role's CPU over the step (``/proc``), from which **requests/s per
core** of the REST process follow. Every step is bounded; the load average is
printed before and after.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import csv
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson

from bench.chaos.stack import REDIS_URL, fresh_database, redis_prefix
from bench.common import CLK_TCK, ONE_ADDRESS, base_env, cpu_times, free_port, rss_kib
from tests.clusters import KafkaBroker, _wait_port

HERE = Path(__file__).parent
PASSWORD = "correct horse battery"
# p95 targets (ms) of the strategy, by the Locust request name.
TARGETS_MS: dict[str, float] = {
    "POST /auth/login": 200,
    "GET /users/me": 100,
    "GET /tests/new": 100,
    "POST /results": 200,
    "GET /leaderboards/{board}": 100,
    "GET /results/me": 200,
    "GET /courses": 100,
    "GET /users/{u}/stats": 100,
    "GET /challenges/today": 100,
    "GET /achievements/me": 100,
    "GET /blog/posts": 100,
    "chat.send": 100,
    "race.finish": 100,
    # A public race starts when full or once its oldest ticket waited match_max_wait_ms (4 s).
    "match.found": 5000,
}
WS_REQUESTS = ("chat.send", "match.found", "race.finish")


@dataclass
class Role:
    name: str
    proc: subprocess.Popen[bytes]

    def cpu_s(self) -> float:
        user, system = cpu_times(self.proc.pid)
        return user + system


@contextlib.contextmanager
def platform(root: Path) -> Iterator[tuple[str, str, list[Role]]]:
    """The platform in processes; yields the REST URL, the WebSocket URL and the roles."""
    with redis_prefix() as prefix, fresh_database() as url:
        broker = KafkaBroker(root / "kafka")
        broker.start()
        http_port, ws_port = free_port(), free_port()
        backends: dict[str, object] = {
            "database_url": url,
            "redis_url": REDIS_URL,
            "redis_prefix": prefix,
            "kafka_bootstrap": broker.bootstrap,
            "kafka_topic_prefix": prefix.replace(":", "."),
            "log_level": "WARNING",
        }
        env = base_env(str(root), **backends)
        subprocess.run([sys.executable, "-m", "roles", "migrate"], env=env, check=True, timeout=300)
        roles: list[Role] = []
        try:
            for name, args, http, ws, wait in (
                ("rest", ["rest"], http_port, free_port(), http_port),
                ("gateway", ["gateway"], free_port(), ws_port, ws_port),
                ("workers", ["worker", "all"], free_port(), free_port(), None),
            ):
                role_env = (
                    env
                    | {
                        "TYPOGRAM_HTTP_PORT": str(http),
                        "TYPOGRAM_WS_PORT": str(ws),
                        "TYPOGRAM_RATE_LIMIT_IP_PER_MIN": "10000000",  # one IP is everybody here
                    }
                    | {f"TYPOGRAM_{k.upper()}": str(v) for k, v in ONE_ADDRESS.items()}
                )
                with (root / f"{name}.log").open("wb") as log:
                    proc = subprocess.Popen(
                        [sys.executable, "-m", "roles", *args],
                        env=role_env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                roles.append(Role(name, proc))
                _wait_port(wait or http, 60)
            yield f"http://127.0.0.1:{http_port}", f"ws://127.0.0.1:{ws_port}/ws", roles
        finally:
            for role in roles:
                role.proc.terminate()
            for role in roles:
                try:
                    role.proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    role.proc.kill()
            broker.stop()


def register_accounts(url: str, count: int, path: Path) -> None:
    """``count`` users through REST (Argon2id at its production cost), listed in ``path``
    with the access token their sign-up returned."""
    names = [f"d{uuid.uuid4().hex[:12]}" for _ in range(count)]

    def one(name: str) -> str:
        with httpx.Client(base_url=url, timeout=60) as client:
            answer = client.post(
                "/api/v1/auth/register",
                json={"username": name, "email": f"{name}@example.com", "password": PASSWORD},
            )
            answer.raise_for_status()
            return f"{name} {answer.json()['access_token']} {PASSWORD}\n"

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        path.write_text("".join(pool.map(one, names)))


def check_alive(roles: list[Role], root: Path) -> None:
    for role in roles:
        if role.proc.poll() is not None:
            tail = (root / f"{role.name}.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{role.name} exited with {role.proc.returncode}:\n{tail}")


def run_step(
    url: str,
    ws_url: str,
    accounts: Path,
    users: int,
    seconds: float,
    roles: list[Role],
    out: Path,
    login_weight: int,
) -> dict[str, object]:
    before = {role.name: role.cpu_s() for role in roles}
    started = time.monotonic()
    subprocess.run(
        [
            sys.executable, "-m", "locust", "-f", str(HERE / "locustfile.py"), "--headless",
            "-u", str(users), "-r", str(max(1, users // 2)), "-t", f"{seconds:g}s",
            "--host", url, "--csv", str(out), "--only-summary", "--loglevel", "ERROR",
            "--stop-timeout", "5",
        ],
        env=base_env(str(out.parent))
        | {
            "BENCH_ACCOUNTS": str(accounts),
            "BENCH_WS_URL": ws_url,
            "BENCH_LOGIN_WEIGHT": str(login_weight),
            "BENCH_COUNTS": str(out.parent / "counts.json"),
        },
        check=False,
        timeout=seconds + 120,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    check_alive(roles, out.parent)
    cpu = {role.name: (role.cpu_s() - before[role.name]) / elapsed for role in roles}
    rows = list(csv.DictReader((out.parent / f"{out.name}_stats.csv").open()))
    per_name = {row["Name"]: row for row in rows if row["Name"] != "Aggregated"}
    total = next(row for row in rows if row["Name"] == "Aggregated")
    rest_rps = sum(float(r["Requests/s"]) for n, r in per_name.items() if n not in WS_REQUESTS)
    results_rps = float(per_name.get("POST /results", {}).get("Requests/s", 0))
    chat_rps = float(per_name.get("chat.send", {}).get("Requests/s", 0))
    races_rps = float(per_name.get("race.finish", {}).get("Requests/s", 0))
    progress = orjson.loads((out.parent / "counts.json").read_bytes()).get("race.progress", 0)
    # What reached the gateway: requests (a match.join per match.found) and progress reports.
    ws_rps = chat_rps + float(per_name.get("match.found", {}).get("Requests/s", 0))
    ws_rps += races_rps + progress / elapsed
    missed = [
        f"{name} {float(row['95%']):.0f}>{TARGETS_MS[name]:.0f}"
        for name, row in per_name.items()
        if name in TARGETS_MS and float(row["95%"]) > TARGETS_MS[name]
    ]
    return {
        "users": users,
        "req/s": round(float(total["Requests/s"]), 1),
        "REST req/s": round(rest_rps, 1),
        "failures": int(total["Failure Count"]),
        "p50 ms": total["50%"],
        "p95 ms": total["95%"],
        "REST CPU %": round(100 * cpu["rest"], 1),
        "REST CPU ms/req": round(1000 * cpu["rest"] / rest_rps, 2) if rest_rps else None,
        "REST req/s per core": round(rest_rps / cpu["rest"], 0) if cpu["rest"] else None,
        "workers CPU ms/result": round(1000 * cpu["workers"] / results_rps, 1)
        if results_rps
        else None,
        "finishes/s": round(races_rps, 2),
        "gateway WS msg/s": round(ws_rps, 1),
        "gateway CPU ms/WS msg": round(1000 * cpu["gateway"] / ws_rps, 2) if ws_rps else None,
        "gateway WS msg/s per core": round(ws_rps / cpu["gateway"], 0) if cpu["gateway"] else None,
        "gateway CPU %": round(100 * cpu["gateway"], 1),
        "workers CPU %": round(100 * cpu["workers"], 1),
        "RSS MiB (rest/gateway/workers)": "/".join(
            f"{rss_kib(role.proc.pid) / 1024:.0f}" for role in roles
        ),
        "p95 over target": ", ".join(missed) or "none",
        "per request": {
            name: (row["Request Count"], row["95%"], row["Failure Count"])
            for name, row in per_name.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", default="30,60,90", help="Locust users per step")
    parser.add_argument("--step-s", type=float, default=30.0)
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument(
        "--login-weight", type=int, default=2, help="0: no logins after the first (REST alone)"
    )
    args = parser.parse_args()
    steps = [int(n) for n in args.users.split(",")]
    print(f"clock ticks {CLK_TCK}/s; load average before: {_loadavg()}", flush=True)
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory() as folder, platform(Path(folder)) as (url, ws, roles):
            accounts = Path(folder) / "accounts.txt"
            check_alive(roles, Path(folder))
            register_accounts(url, args.accounts, accounts)
            for users in steps:
                row = run_step(
                    url, ws, accounts, users, args.step_s, roles, Path(folder) / "s",
                    args.login_weight,
                )  # fmt: skip
                details = row.pop("per request")
                print(f"run {run} " + " | ".join(f"{k}: {v}" for k, v in row.items()), flush=True)
                for name, (count, p95, failures) in sorted(details.items()):  # type: ignore[attr-defined]
                    target = TARGETS_MS.get(name)
                    print(f"    {name:28} n={count:>6} p95={p95:>5} ms (target {target}) "
                          f"failures={failures}", flush=True)  # fmt: skip
                print(f"    load average: {_loadavg()}", flush=True)
    print(f"load average after: {_loadavg()}")


def _loadavg() -> str:
    return Path("/proc/loadavg").read_text().strip()


if __name__ == "__main__":
    main()
