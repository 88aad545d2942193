"""What a chaos scenario hands back, how runs are summed up, and what REST may answer.

An ``Outcome`` holds the scenario's figures (printed, summed over runs as a
spread) and the invariants it found broken (``problems``; empty means every
invariant held). ``RestProbe`` asks REST the same questions over and over
while something fails and records what came back: during an outage each
answer must be the usual one or ``503 unavailable`` with ``Retry-After``,
never another 5xx, and never slow.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

Figure = float | int | None


@dataclass
class Outcome:
    scenario: str
    figures: dict[str, Figure] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def check(self, holds: bool, problem: str) -> None:
        """Record ``problem`` unless ``holds``."""
        if not holds:
            self.problems.append(problem)

    def line(self) -> str:
        shown = " ".join(f"{name}={_show(value)}" for name, value in self.figures.items())
        verdict = "ok" if not self.problems else "BROKEN: " + "; ".join(self.problems[:5])
        return f"{self.scenario}: {shown} [{verdict}]"


def _show(value: Figure) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def spread(values: list[Figure]) -> str:
    """``min-max (median m)`` of the runs that have the figure."""
    found = [float(v) for v in values if v is not None]
    if not found:
        return "-"
    missing = f", missing in {len(values) - len(found)}" if len(found) < len(values) else ""
    low, high, mid = min(found), max(found), statistics.median(found)
    if all(v.is_integer() for v in found):
        return f"{low:.0f}-{high:.0f} (median {mid:g}{missing})"
    return f"{low:.2f}-{high:.2f} (median {mid:.2f}{missing})"


def summary(outcomes: list[Outcome]) -> list[str]:
    """One line per figure of one scenario's runs."""
    names = list(dict.fromkeys(name for outcome in outcomes for name in outcome.figures))
    return [f"  {name:24} {spread([o.figures.get(name) for o in outcomes])}" for name in names]


def outage_answer_problems(response: httpx.Response) -> list[str]:
    """What is wrong with an answer given during an outage (nothing for 2xx or a good 503)."""
    if response.status_code < 300:
        return []
    if response.status_code != 503:
        return [f"{response.status_code}: {response.text[:200]}"]
    problems = []
    if response.headers.get("content-type", "").split(";")[0] != "application/json":
        problems.append(f"503 without JSON: {response.headers.get('content-type')}")
    elif response.json().get("error", {}).get("code") != "unavailable":
        problems.append(f"503 with {response.text[:200]}")
    retry_after = response.headers.get("retry-after", "")
    if not retry_after.isdigit() or int(retry_after) < 1:
        problems.append(f"503 with Retry-After {retry_after!r}")
    return problems


@dataclass
class RestProbe:
    """Every answer REST gave during a scenario: statuses, wrong answers, slowest, when."""

    statuses: Counter[int] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    slowest_s: float = 0.0
    first_unavailable: float | None = None
    last_unavailable: float | None = None
    timings: list[tuple[float, float]] = field(default_factory=list)  # (answered at, seconds)

    async def ask(
        self, client: httpx.AsyncClient, method: str, path: str, **kwargs: object
    ) -> httpx.Response:
        started = time.monotonic()
        response = await client.request(method, path, **kwargs)  # type: ignore[arg-type]
        now = time.monotonic()
        self.slowest_s = max(self.slowest_s, now - started)
        self.timings.append((now, now - started))
        self.statuses[response.status_code] += 1
        self.problems += outage_answer_problems(response)
        if response.status_code >= 500:
            self.first_unavailable = self.first_unavailable or now
            self.last_unavailable = now
        return response

    def p95_ms(self, start: float, end: float) -> float | None:
        """p95 (ms) of the answers given between ``start`` and ``end`` (monotonic)."""
        found = sorted(s for at, s in self.timings if start <= at < end)
        return round(found[int(0.95 * (len(found) - 1))] * 1000, 1) if found else None

    @property
    def unavailable_s(self) -> float | None:
        """From the first 5xx to the last: how long REST could not serve."""
        if self.first_unavailable is None or self.last_unavailable is None:
            return None
        return self.last_unavailable - self.first_unavailable

    def report_into(self, outcome: Outcome, *, slow_limit_s: float) -> None:
        outcome.figures["answers"] = sum(self.statuses.values())
        outcome.figures["answered_503"] = self.statuses[503]
        outcome.figures["rest_unavailable_s"] = self.unavailable_s
        outcome.figures["slowest_answer_s"] = round(self.slowest_s, 3)
        wrong = len(self.problems)
        outcome.figures["wrong_answers"] = wrong
        outcome.check(wrong == 0, f"{wrong} answers neither usual nor 503: {self.problems[:3]}")
        outcome.check(
            self.slowest_s <= slow_limit_s,
            f"an answer took {self.slowest_s:.1f} s (limit {slow_limit_s:g} s): not failing fast",
        )
