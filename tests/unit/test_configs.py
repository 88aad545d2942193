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


def test_every_setting_is_documented() -> None:
    from dataclasses import fields

    from typogram.settings import ENV_PREFIX, Settings

    reference = (CONFIGS.parent / "docs" / "configuration.md").read_text()
    missing = [
        f"{ENV_PREFIX}{f.name.upper()}"
        for f in fields(Settings)
        if f"`{ENV_PREFIX}{f.name.upper()}`" not in reference
    ]
    assert missing == []
