"""Alerts, dashboards and autoscaling rules name only metrics that something exports.

Typogram's own names come from a live registry: an embedded platform (the
kernel's metrics, the database and event-log collectors, the process
collector) plus the gateway's metrics, exactly as ``/metrics`` serves them.
Other names must be in the exporter allow-list
(``configs/prometheus/exporters.yml``).
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from gateway.metrics import GatewayMetrics
from tests.conftest import make_settings
from typogram.platform import open_platform

ROOT = Path(__file__).parents[2]
CONFIGS = ROOT / "configs"
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
KEYWORDS |= {"and", "or", "unless", "inf", "nan"}
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not functions, labels or keywords)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values, strings
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range and subquery windows
    grouping = r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)"
    expr = re.sub(grouping, " ", expr)
    expr = re.sub(r"\$\w+", "", expr)  # Grafana variables
    names = set()
    for found in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        before = expr[found.start() - 1] if found.start() else " "
        if before.isdigit() or before == ".":  # 5m, 1e3
            continue
        if expr[found.end() :].lstrip().startswith("("):  # a function or aggregation
            continue
        if found.group() not in KEYWORDS:
            names.add(found.group())
    return names


@pytest.fixture(scope="module")
def allowed() -> set[str]:
    listed = yaml.safe_load((CONFIGS / "prometheus" / "exporters.yml").read_text())
    return {name for names in listed.values() for name in names}


@pytest.fixture
async def exported(tmp_path: Path) -> set[str]:
    registry = CollectorRegistry()
    async with open_platform(make_settings(data_dir=str(tmp_path)), registry=registry):
        GatewayMetrics(registry).bind(lambda: 0, lambda: 0, lambda: 0, lambda: 0, dict)
        names: set[str] = set()
        for family in registry.collect():
            names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
            names.update(sample.name for sample in family.samples)
    return names


def alert_expressions() -> list[str]:
    rules = yaml.safe_load((CONFIGS / "prometheus" / "alerts.yml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def dashboard_expressions() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted((CONFIGS / "grafana" / "dashboards").glob("*.json")):
        board = json.loads(path.read_text())
        found[path.stem] = [t["expr"] for p in board["panels"] for t in p["targets"]]
    return found


def adapter_expressions() -> list[str]:
    """Queries of the prometheus-adapter rules (custom metrics for the HPAs)."""
    exprs = []
    for path in sorted((CONFIGS / "k8s").glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if not document or document.get("kind") != "ConfigMap":
                continue
            config = document.get("data", {}).get("config.yaml")
            if not config:
                continue
            for rule in yaml.safe_load(config).get("rules", []):
                exprs.append(rule["seriesQuery"])
                exprs.append(rule["metricsQuery"].replace("<<.Series>>", rule["seriesQuery"]))
    return exprs


def test_the_checker_finds_names_and_skips_the_rest() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, route) (rate(typogram_x_bucket{a="b(c)"}[5m])))'
        " / on(pod) group_left sum without (le) (up offset 5m) > 1e3 and $var"
    )
    assert metric_names(expr) == {"typogram_x_bucket", "up"}


async def test_every_alert_rule_names_an_exported_metric(
    exported: set[str], allowed: set[str]
) -> None:
    expressions = alert_expressions()
    assert len(expressions) >= 20
    unknown = {n for e in expressions for n in metric_names(e)} - exported - allowed
    assert unknown == set()


async def test_every_dashboard_panel_names_an_exported_metric(
    exported: set[str], allowed: set[str]
) -> None:
    boards = dashboard_expressions()
    assert set(boards) == {"api", "gateway", "races", "pipeline", "databases"}
    for name, expressions in boards.items():
        assert expressions, name
        unknown = {n for e in expressions for n in metric_names(e)} - exported - allowed
        assert unknown == set(), name


async def test_the_autoscaling_rules_name_exported_metrics(exported: set[str]) -> None:
    expressions = adapter_expressions()
    assert expressions
    assert {n for e in expressions for n in metric_names(e)} - exported == set()


async def test_a_made_up_name_is_caught(exported: set[str], allowed: set[str]) -> None:
    """The check can fail: a typo or a metric the code stopped exporting."""
    for typo in ("typogram_http_request_duration_second_bucket", "typogram_gateway_conections"):
        assert metric_names(f"rate({typo}[5m])") - exported - allowed == {typo}


def test_the_dashboards_are_what_the_script_writes() -> None:
    spec = importlib.util.spec_from_file_location(
        "grafana_dashboards", ROOT / "scripts" / "grafana_dashboards.py"
    )
    assert spec is not None and spec.loader is not None
    module: Any = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for path, text in module.render().items():
        assert path.read_text() == text, f"{path.name}: run python scripts/grafana_dashboards.py"


def test_client_chosen_close_codes_share_one_label() -> None:
    from gateway.metrics import close_label
    from typogram.codes import CloseCode

    assert close_label(int(CloseCode.UNAUTHORIZED)) == "4001"
    assert close_label(1000) == "1000"
    assert {
        close_label(code) for code in range(3000, 5000) if code not in set(map(int, CloseCode))
    } == {"client"}
