"""The shipped configuration matches the code (alerts and dashboards: test_observability)."""

from __future__ import annotations

from pathlib import Path

CONFIGS = Path(__file__).parents[2] / "configs"


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
