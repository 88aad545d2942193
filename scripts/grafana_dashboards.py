"""Write the Grafana dashboards under configs/grafana/dashboards/ from the panel lists below.

    python scripts/grafana_dashboards.py          # rewrite the JSON files
    python scripts/grafana_dashboards.py --check  # exit 1 if a file is out of date

Grafana provisions the JSON (configs/grafana/provisioning/); this script is
how they are edited, and tests/unit/test_observability.py checks that the
files match it and that every query names a metric the code exports (or one
of the exporter metrics allow-listed in configs/prometheus/exporters.yml).
``$__rate_interval`` and the ``job`` label are Grafana's and Prometheus'.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "configs" / "grafana" / "dashboards"
RATE = "$__rate_interval"

# A panel: (title, unit, [(expr, legend), ...]).
Panel = tuple[str, str, list[tuple[str, str]]]


def p95(metric: str, by: str, where: str = "") -> str:
    selector = f"{metric}_bucket{{{where}}}" if where else f"{metric}_bucket"
    return f"histogram_quantile(0.95, sum by (le, {by}) (rate({selector}[{RATE}])))"


PROCESS: list[Panel] = [
    (
        "CPU per process (1 = one core)",
        "percentunit",
        [(f'rate(typogram_process_cpu_seconds_total{{job=~"$job"}}[{RATE}])', "{{pod}}")],
    ),
    (
        "Resident memory per process",
        "bytes",
        [('typogram_process_resident_memory_bytes{job=~"$job"}', "{{pod}}")],
    ),
    (
        "Event-loop lag p99",
        "s",
        [
            (
                "histogram_quantile(0.99, sum by (le, pod) "
                f'(rate(typogram_event_loop_lag_seconds_bucket{{job=~"$job"}}[{RATE}])))',
                "{{pod}}",
            )
        ],
    ),
    (
        "GC pauses p99 by generation",
        "s",
        [
            (
                "histogram_quantile(0.99, sum by (le, generation) "
                f'(rate(typogram_gc_pause_seconds_bucket{{job=~"$job"}}[{RATE}])))',
                "gen {{generation}}",
            )
        ],
    ),
]

DASHBOARDS: dict[str, tuple[str, str, list[Panel]]] = {
    "api": (
        "Typogram / API",
        "typogram-rest",
        [
            (
                "Requests per second by route",
                "reqps",
                [
                    (
                        f"sum by (route) (rate(typogram_http_requests_total[{RATE}]))",
                        "{{route}}",
                    )
                ],
            ),
            (
                "p95 latency by route (targets: 100-200 ms)",
                "s",
                [(p95("typogram_http_request_duration_seconds", "route"), "{{route}}")],
            ),
            (
                "5xx share",
                "percentunit",
                [
                    (
                        'sum(rate(typogram_http_requests_total{status=~"5.."}'
                        f"[{RATE}])) / sum(rate(typogram_http_requests_total[{RATE}]))",
                        "5xx",
                    )
                ],
            ),
            (
                "Refused by rate limits",
                "reqps",
                [
                    (
                        f"sum by (scope) (rate(typogram_http_rate_limited_total[{RATE}]))",
                        "{{scope}}",
                    )
                ],
            ),
            (
                "Authentication outcomes",
                "ops",
                [
                    (
                        f"sum by (action, outcome) (rate(typogram_auth_events_total[{RATE}]))",
                        "{{action}} {{outcome}}",
                    )
                ],
            ),
            (
                "Cache hit rate (target > 85 %)",
                "percentunit",
                [
                    (
                        'avg(typogram_component{component="cache",stat="hit_rate"})',
                        "hit rate",
                    )
                ],
            ),
            *PROCESS,
        ],
    ),
    "gateway": (
        "Typogram / Gateway",
        "typogram-gateway",
        [
            (
                "Connections per pod (HPA target 4,000)",
                "short",
                [("typogram_gateway_connections", "{{pod}}")],
            ),
            ("Users online", "short", [("sum(typogram_gateway_users_online)", "users")]),
            (
                "Frames in by type",
                "ops",
                [
                    (
                        f"sum by (type) (rate(typogram_gateway_frames_in_total[{RATE}]))",
                        "{{type}}",
                    )
                ],
            ),
            (
                "Frames out by type",
                "ops",
                [
                    (
                        f"sum by (type) (rate(typogram_gateway_frames_out_total[{RATE}]))",
                        "{{type}}",
                    )
                ],
            ),
            (
                "Send-queue depth",
                "short",
                [("typogram_gateway_send_queue_depth", "{{pod}}")],
            ),
            (
                "Slow-consumer closes (4008) and closes by code",
                "ops",
                [
                    (f"sum(rate(typogram_gateway_slow_consumer_closes_total[{RATE}]))", "4008"),
                    (
                        f"sum by (code) (rate(typogram_gateway_closes_total[{RATE}]))",
                        "{{code}}",
                    ),
                ],
            ),
            (
                "Resumes by result",
                "ops",
                [
                    (
                        f"sum by (result) (rate(typogram_gateway_resumes_total[{RATE}]))",
                        "{{result}}",
                    )
                ],
            ),
            (
                "Fan-out latency p95 (publish to arrival on a node)",
                "s",
                [(p95("typogram_gateway_fanout_latency_seconds", "pod"), "{{pod}}")],
            ),
            (
                "Detached sessions (resume window)",
                "short",
                [
                    ("sum(typogram_gateway_sessions_detached)", "detached"),
                ],
            ),
            (
                "Sockets refused by a connection cap (429 at the handshake, 4029)",
                "ops",
                [
                    (
                        f"sum by (cap) (rate(typogram_gateway_connections_refused_total[{RATE}]))",
                        "{{cap}}",
                    )
                ],
            ),
            *PROCESS,
        ],
    ),
    "races": (
        "Typogram / Races",
        "typogram-gateway",
        [
            (
                "Races owned per node",
                "short",
                [('typogram_component{component="races",stat="races_owned"}', "{{pod}}")],
            ),
            (
                "race.progress in, race.state out",
                "ops",
                [
                    (
                        "sum(rate(typogram_gateway_frames_in_total"
                        f'{{type="race.progress"}}[{RATE}]))',
                        "race.progress in",
                    ),
                    (
                        "sum(rate(typogram_gateway_frames_out_total"
                        f'{{type="race.state"}}[{RATE}]))',
                        "race.state out",
                    ),
                ],
            ),
            (
                "Forwarded commands waiting for their owner",
                "short",
                [
                    (
                        'typogram_component{component="races",stat="race_requests_pending"}',
                        "{{pod}}",
                    )
                ],
            ),
            (
                "Race state flushes, races lost and leases retaken",
                "ops",
                [
                    (
                        'rate(typogram_component{component="races",stat="race_state_flushes"}'
                        f"[{RATE}])",
                        "flushes {{pod}}",
                    ),
                    (
                        f'rate(typogram_component{{component="races",stat="races_lost"}}[{RATE}])',
                        "lost {{pod}}",
                    ),
                    (
                        'rate(typogram_component{component="races",stat="races_retaken"}'
                        f"[{RATE}])",
                        "retaken {{pod}}",
                    ),
                ],
            ),
            (
                "Race channels watched",
                "short",
                [
                    (
                        'typogram_component{component="races",stat="race_channels_subscribed"}',
                        "{{pod}}",
                    )
                ],
            ),
        ],
    ),
    "pipeline": (
        "Typogram / Pipeline",
        "typogram-worker",
        [
            (
                "Consumer lag by group (HPA target 1,000 per pod)",
                "short",
                [("sum by (group) (typogram_consumer_lag)", "{{group}}")],
            ),
            (
                "Events handled by group and outcome",
                "ops",
                [
                    (
                        f"sum by (group, outcome) (rate(typogram_events_processed_total[{RATE}]))",
                        "{{group}} {{outcome}}",
                    )
                ],
            ),
            (
                "Handler p95 by group (target < 5 s end to end)",
                "s",
                [(p95("typogram_event_handler_duration_seconds", "group"), "{{group}}")],
            ),
            (
                "Dead letters",
                "short",
                [
                    (
                        "sum by (group, topic, error) (increase(typogram_dead_letters_total[1h]))",
                        "{{group}} {{topic}} {{error}}",
                    )
                ],
            ),
            (
                "Events published",
                "ops",
                [
                    (
                        'sum(rate(typogram_component{component="events",stat="published"}'
                        f"[{RATE}]))",
                        "published",
                    )
                ],
            ),
            *PROCESS,
        ],
    ),
    "databases": (
        "Typogram / Databases",
        "typogram-rest|typogram-worker|typogram-gateway",
        [
            (
                "SQL p95 by statement family",
                "s",
                [(p95("typogram_db_query_duration_seconds", "family"), "{{family}}")],
            ),
            (
                "SQL statements per second by family",
                "ops",
                [
                    (
                        "sum by (family, target) "
                        f"(rate(typogram_db_query_duration_seconds_count[{RATE}]))",
                        "{{family}} ({{target}})",
                    )
                ],
            ),
            (
                "Pooled connections in use / capacity",
                "percentunit",
                [
                    (
                        'sum by (target) (typogram_db_pool_connections{state="in_use"}) / '
                        'sum by (target) (typogram_db_pool_connections{state="capacity"})',
                        "{{target}}",
                    )
                ],
            ),
            (
                "Replica lag (seen by each process)",
                "s",
                [("max by (replica) (typogram_db_replica_lag_seconds)", "{{replica}}")],
            ),
            (
                "Replicas in use",
                "short",
                [("min by (replica) (typogram_db_replica_usable)", "{{replica}}")],
            ),
            (
                "MariaDB connections / max_connections (mysqld_exporter)",
                "percentunit",
                [
                    (
                        "mysql_global_status_threads_connected / "
                        "mysql_global_variables_max_connections",
                        "{{instance}}",
                    )
                ],
            ),
            (
                "MariaDB queries per second (mysqld_exporter)",
                "ops",
                [(f"rate(mysql_global_status_queries[{RATE}])", "{{instance}}")],
            ),
            (
                "Redis memory and clients (redis_exporter)",
                "short",
                [
                    ("redis_memory_used_bytes", "memory {{instance}}"),
                    ("redis_connected_clients", "clients {{instance}}"),
                ],
            ),
            (
                "Redis commands per second (redis_exporter)",
                "ops",
                [(f"rate(redis_commands_processed_total[{RATE}])", "{{instance}}")],
            ),
            (
                "Redis replicas attached (the master has them; redis_exporter)",
                "short",
                [("redis_connected_slaves", "{{instance}}")],
            ),
        ],
    ),
}


def dashboard(uid: str, title: str, job: str, panels: list[Panel]) -> dict[str, Any]:
    built = []
    for number, (name, unit, queries) in enumerate(panels):
        built.append(
            {
                "id": number + 1,
                "type": "timeseries",
                "title": name,
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "gridPos": {"h": 8, "w": 12, "x": 12 * (number % 2), "y": 8 * (number // 2)},
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
                "targets": [
                    {"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend}
                    for i, (expr, legend) in enumerate(queries)
                ],
            }
        )
    return {
        "uid": f"typogram-{uid}",
        "title": title,
        "tags": ["typogram"],
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "refresh": "30s",
        "time": {"from": "now-3h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "type": "datasource",
                    "query": "prometheus",
                    "label": "Prometheus",
                },
                {
                    "name": "job",
                    "type": "custom",
                    "label": "role",
                    "query": job.replace("|", ","),
                    "current": {"text": job, "value": job},
                    "includeAll": True,
                    "allValue": job,
                },
            ]
        },
        "panels": built,
    }


def render() -> dict[Path, str]:
    return {
        OUT / f"{uid}.json": json.dumps(dashboard(uid, title, job, panels), indent=2) + "\n"
        for uid, (title, job, panels) in DASHBOARDS.items()
    }


def main() -> int:
    rendered = render()
    stale = [p for p, text in rendered.items() if not p.exists() or p.read_text() != text]
    if "--check" in sys.argv[1:]:
        for path in stale:
            print(f"out of date: {path} (run python scripts/grafana_dashboards.py)")
        return 1 if stale else 0
    OUT.mkdir(parents=True, exist_ok=True)
    for path, text in rendered.items():
        path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
