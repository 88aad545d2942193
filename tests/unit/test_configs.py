"""The shipped alert rules only name metrics the code exports."""

from __future__ import annotations

import re
from pathlib import Path

from typogram import metrics

CONFIGS = Path(__file__).parents[2] / "configs"


def test_alert_rules_reference_exported_metrics() -> None:
    exported = {
        value
        for name, value in vars(metrics).items()
        if name.isupper() and isinstance(value, str) and value.startswith("typogram_")
    }
    rules = (CONFIGS / "prometheus" / "alerts.yml").read_text()
    named = set(re.findall(r"typogram_[a-z_]+", rules))
    unknown = {name for name in named if re.sub(r"_(bucket|sum|count)$", "", name) not in exported}
    assert named
    assert unknown == set()
