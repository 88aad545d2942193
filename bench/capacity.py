"""The capacity model: processes, cores and memory per role for a number of users.

``python -m bench.capacity --users 1000000 5000000`` prints, per target, the
peak load the strategy's assumptions give (``Assumptions``), what each role
needs to carry it from the per-process figures measured by ``bench/``
(``Measured``; every value names the command it comes from, in
``docs/capacity.md``), the backends' throughput, where the bottleneck is,
and what it costs at the strategy's prices. ``--cpu-target`` (0.7: the
strategy's CPU alert) is the share of a core a role may use at peak.

Pure arithmetic, no I/O: change a measured figure (``--set
rest_requests_per_core=900``) and the plan follows.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass, field

from typogram import topics

# The topics a result's work is spread over: one consumer per partition at most.
RESULT_TOPICS = (
    topics.TEST_RESULTS,
    topics.KEYSTROKE_ANALYTICS,
    topics.LEADERBOARD_UPDATES,
    topics.ACHIEVEMENT_EVENTS,
)


@dataclass(frozen=True)
class Assumptions:
    """The strategy's user activity, per registered user (1 M users → its figures)."""

    daily_active_share: float = 0.20  # 200 k DAU of 1 M
    concurrent_share: float = 0.02  # 20 k concurrent at peak
    api_peak_rps_per_user: float = 0.005  # 5,000 requests/s at peak
    result_share_of_requests: float = 0.20  # 2 M tests of 10 M requests a day (a submit each)
    login_share_of_requests: float = 0.017  # the load test's day mix (2 of 120 requests)
    racing_share_of_concurrent: float = 0.30  # connected users in a race at peak
    race_snapshot_hz: float = 10.0  # race.state to each racer
    chat_messages_per_s_per_1m: float = 1_000.0  # the strategy's chat throughput
    chat_recipients: float = 20.0  # members a message reaches (room size)
    redis_ops_per_request: float = 4.0  # rate-limit counters, cache reads, token version
    redis_ops_per_result: float = 12.0  # personal best, boards, claims, accepted list
    kafka_messages_per_result: float = 4.0  # result.accepted and its follow-ups


@dataclass(frozen=True)
class Measured:
    """Per-process figures from ``bench/`` on the 2-core test machine (docs/capacity.md)."""

    rest_ms_per_request: float = 1.1  # REST CPU per request of the day's mix without logins
    rest_ms_per_login: float = 36.0  # Argon2id at OWASP cost, in a loaded REST process
    rest_rss_mib: float = 290.0  # Argon2id's 19 MiB per verification in flight
    gateway_connections_per_process: int = 5_000  # admitted (ws_max_connections)
    gateway_us_per_frame: float = 70.0  # races, delivered frames incl. the engine (bench.races)
    gateway_base_rss_mib: float = 115.0
    gateway_kib_per_connection: float = 21.0  # bench.connections
    worker_ms_per_result: float = 10.0  # every group of a result (``worker all``)
    worker_rss_mib: float = 120.0
    db_ms_per_result: float = 4.1  # MariaDB CPU per result (bench.results, pipeline)
    broker_ms_per_result: float = 2.1  # tansu; re-measure on Kafka
    redis_ops_per_core: float = 100_000.0  # one Redis thread, pipelined commands


@dataclass(frozen=True)
class Prices:
    """Monthly prices from the strategy's cost table."""

    app_instance: float = 133.0  # 4 vCPU, 8 GB ($2,000 for 10-20)
    app_instance_cores: int = 4
    app_instance_gib: float = 8.0
    db_primary: float = 1_000.0  # 16 vCPU, 64 GB
    db_primary_cores: int = 16
    db_replica: float = 500.0  # 8 vCPU, 32 GB
    redis_node: float = 333.0  # 4 vCPU, 16 GB
    kafka_broker: float = 667.0  # 8 vCPU, 32 GB
    kafka_broker_cores: int = 8


@dataclass(frozen=True)
class Load:
    users: int
    daily_active: int
    concurrent: int
    api_rps: float
    results_per_s: float
    ws_connections: int
    frames_per_s: float


@dataclass(frozen=True)
class RolePlan:
    role: str
    processes: int
    cores: float
    memory_gib: float
    why: str


@dataclass
class Plan:
    load: Load
    roles: list[RolePlan] = field(default_factory=list)
    backends: dict[str, str] = field(default_factory=dict)
    bottleneck: str = ""  # backends by the share of one node's capacity they need, busiest first
    monthly_cost: float = 0.0


def peak_load(users: int, a: Assumptions = Assumptions()) -> Load:
    if users <= 0:
        raise ValueError("users must be positive")
    concurrent = round(users * a.concurrent_share)
    api_rps = users * a.api_peak_rps_per_user
    racing = concurrent * a.racing_share_of_concurrent
    chat = a.chat_messages_per_s_per_1m * users / 1_000_000
    return Load(
        users=users,
        daily_active=round(users * a.daily_active_share),
        concurrent=concurrent,
        api_rps=api_rps,
        results_per_s=api_rps * a.result_share_of_requests,
        ws_connections=concurrent,
        frames_per_s=racing * a.race_snapshot_hz + chat * a.chat_recipients,
    )


def plan(
    users: int,
    a: Assumptions = Assumptions(),
    m: Measured = Measured(),
    p: Prices = Prices(),
    cpu_target: float = 0.7,
) -> Plan:
    """Processes per role (one core each: one event loop per process) and the backends."""
    if not 0 < cpu_target <= 1:
        raise ValueError("cpu_target must be in (0, 1]")
    load = peak_load(users, a)
    result = Plan(load)

    logins = load.api_rps * a.login_share_of_requests
    rest_cores = (
        (load.api_rps - logins) * m.rest_ms_per_request + logins * m.rest_ms_per_login
    ) / 1000
    rest = math.ceil(rest_cores / cpu_target)
    by_cpu = math.ceil(load.frames_per_s * m.gateway_us_per_frame / 1e6 / cpu_target)
    by_connections = math.ceil(load.ws_connections / m.gateway_connections_per_process)
    gateways = max(by_cpu, by_connections, 2)  # two at least: one may drain or die
    workers = math.ceil(load.results_per_s * m.worker_ms_per_result / 1000 / cpu_target)
    per_gateway_mib = (
        m.gateway_base_rss_mib
        + load.ws_connections / gateways * m.gateway_kib_per_connection / 1024
    )
    result.roles = [
        RolePlan("rest", max(rest, 2), max(rest, 2), max(rest, 2) * m.rest_rss_mib / 1024,
                 f"{load.api_rps:,.0f} req/s: {m.rest_ms_per_request:g} ms each, "
                 f"{logins:,.0f} logins/s at {m.rest_ms_per_login:g} ms"),
        RolePlan("gateway", gateways, gateways, gateways * per_gateway_mib / 1024,
                 f"{load.ws_connections:,} sockets, {load.frames_per_s:,.0f} frames/s "
                 f"({'CPU' if by_cpu >= by_connections else 'connections'} bound)"),
        RolePlan("workers", max(workers, 2), max(workers, 2),
                 max(workers, 2) * m.worker_rss_mib / 1024,
                 f"{load.results_per_s:,.0f} results/s at {m.worker_ms_per_result:g} ms each"),
    ]  # fmt: skip

    db_cores = load.results_per_s * m.db_ms_per_result / 1000 / cpu_target
    redis_ops = (
        load.api_rps * a.redis_ops_per_request
        + load.results_per_s * a.redis_ops_per_result
        + load.frames_per_s / a.race_snapshot_hz  # publishes, batched per node and tick
    )
    redis_cores = redis_ops / m.redis_ops_per_core / cpu_target
    kafka_msgs = load.results_per_s * a.kafka_messages_per_result + load.frames_per_s / 100
    broker_cores = load.results_per_s * m.broker_ms_per_result / 1000 / cpu_target
    db_primaries = math.ceil(db_cores / p.db_primary_cores)
    brokers = max(3, math.ceil(broker_cores / p.kafka_broker_cores))
    partitions = sum(topics.PARTITIONS[t] for t in RESULT_TOPICS)
    result.backends = {
        "result partitions": f"{partitions} for {max(workers, 2)} worker processes"
        + (" — raise the partition counts" if workers > partitions else ""),
        "MySQL primary": f"{db_cores:.1f} cores of writes ({load.results_per_s:,.0f} results/s)"
        + (" — more than one primary: shard or batch" if db_primaries > 1 else ""),
        "Redis": f"{redis_ops:,.0f} ops/s = {redis_cores:.2f} cores of one thread"
        + (" — past one thread: Redis Cluster" if redis_cores > 1 else ""),
        "Kafka": f"{kafka_msgs:,.0f} messages/s, {broker_cores:.1f} broker cores"
        + f" → {brokers} brokers",
    }
    shares = {
        "MySQL primary writes": db_cores / p.db_primary_cores,
        "Redis (one thread)": redis_cores,
        "Kafka brokers": broker_cores / (brokers * p.kafka_broker_cores),
    }
    ranked = sorted(shares, key=lambda k: -shares[k])
    result.bottleneck = ", ".join(f"{name} {100 * shares[name]:.0f} %" for name in ranked)
    app_cores = sum(r.cores for r in result.roles)
    app_gib = sum(r.memory_gib for r in result.roles)
    instances = max(
        math.ceil(app_cores / p.app_instance_cores), math.ceil(app_gib / p.app_instance_gib)
    )
    replicas = 2 if users <= 1_000_000 else 4  # the strategy's read replicas
    result.monthly_cost = (
        instances * p.app_instance
        + db_primaries * p.db_primary
        + replicas * p.db_replica
        + 3 * p.redis_node * max(1, math.ceil(redis_cores))
        + brokers * p.kafka_broker
    )
    result.backends["app instances"] = f"{instances} of {p.app_instance_cores} vCPU"
    result.backends["MySQL servers"] = f"{db_primaries} primary + {replicas} replicas"
    return result


def render(found: Plan) -> str:
    load = found.load
    lines = [
        f"{load.users:,} users: {load.daily_active:,} daily, {load.concurrent:,} concurrent; "
        f"peak {load.api_rps:,.0f} API req/s, {load.results_per_s:,.0f} results/s, "
        f"{load.frames_per_s:,.0f} WebSocket frames/s",
        f"  {'role':8} {'processes':>9} {'cores':>6} {'GiB':>6}  why",
    ]
    for role in found.roles:
        lines.append(
            f"  {role.role:8} {role.processes:>9} {role.cores:>6.0f} "
            f"{role.memory_gib:>6.1f}  {role.why}"
        )
    lines += [f"  {name}: {text}" for name, text in found.backends.items()]
    lines.append(f"  busiest single node (share of its capacity): {found.bottleneck}")
    lines.append(f"  about ${found.monthly_cost:,.0f} a month at the strategy's prices")
    return "\n".join(lines)


def _override(measured: Measured, pairs: list[str]) -> Measured:
    names = {f.name for f in dataclasses.fields(Measured)}
    changes: dict[str, float] = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        if name not in names:
            raise SystemExit(f"--set: unknown figure {name!r} (one of {', '.join(sorted(names))})")
        try:
            changes[name] = float(value)
        except ValueError:
            raise SystemExit(f"--set {name}: not a number: {value!r}") from None
    return dataclasses.replace(measured, **changes)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--cpu-target", type=float, default=0.7)
    parser.add_argument("--set", action="append", default=[], metavar="FIGURE=VALUE")
    args = parser.parse_args()
    measured = _override(Measured(), args.set)
    for users in args.users:
        try:
            print(render(plan(users, m=measured, cpu_target=args.cpu_target)))
        except ValueError as exc:
            raise SystemExit(str(exc)) from None


if __name__ == "__main__":
    main()
