"""Monthly partitions of ``test_results``, ``challenge_attempts``, ``payments`` and
``email_history`` on MariaDB."""

from __future__ import annotations

import time

import pytest

from typogram.db.partitions import DAY_MS, MAXVALUE, apply, existing, maintain
from typogram.platform import Platform

pytestmark = pytest.mark.integration


async def test_partitions_are_created_and_maintained(platform: Platform) -> None:
    now = int(time.time() * 1000)
    if platform.db.dialect != "mysql":
        assert await apply(platform.db, now) == []
        assert await maintain(platform.db, platform.settings, now) == {
            "challenge_attempts": [],
            "email_history": [],
            "payments": [],
            "test_results": [],
        }
        return
    current = await existing(platform.db, "test_results")
    assert current[-1].name == MAXVALUE and len(current) >= 2
    paid = await existing(platform.db, "payments")  # migration 0011
    assert paid[-1].name == MAXVALUE and len(paid) >= 4
    mailed = await existing(platform.db, "email_history")  # migration 0016
    assert mailed[-1].name == MAXVALUE and len(mailed) >= 4
    # Far ahead: months to add and months past retention, planned but not run.
    later = await apply(platform.db, now + 400 * DAY_MS, ahead=3, dry_run=True)
    assert later[0].startswith("ALTER TABLE test_results REORGANIZE PARTITION pmax")
    assert later[-1].startswith("ALTER TABLE test_results DROP PARTITION")
    # Adding months ahead for real, then nothing is left to do.
    for table in ("test_results", "challenge_attempts", "payments", "email_history"):
        await apply(platform.db, now, table=table, ahead=6, drop=False)
        assert await apply(platform.db, now, table=table, ahead=6, drop=False, dry_run=True) == []
    planned = await maintain(platform.db, platform.settings, now, dry_run=True)
    # 6 months ahead already cover the default 3
    assert planned == {
        "challenge_attempts": [],
        "email_history": [],
        "payments": [],
        "test_results": [],
    }
    # Payments are money records: 400 days on, results drop months and payments do not.
    far = await maintain(platform.db, platform.settings, now + 400 * DAY_MS, dry_run=True)
    assert any("DROP PARTITION" in s for s in far["test_results"])
    assert not any("DROP PARTITION" in s for s in far["payments"])
    assert far["payments"][0].startswith("ALTER TABLE payments REORGANIZE PARTITION pmax")
    # The e-mail history keeps a year (``email_retention_days``): 400 days on, months go.
    assert any("DROP PARTITION" in s for s in far["email_history"])
    grown = await existing(platform.db, "test_results")
    assert len(grown) >= len(current) and grown[-1].name == MAXVALUE
