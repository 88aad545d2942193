"""Statement families for the query-latency histograms (``typogram.db.timing``)."""

from __future__ import annotations

import pytest

from typogram.db.timing import FAMILY_CACHE_MAX, QueryTimes, statement_family


@pytest.mark.parametrize(
    ("sql", "family"),
    [
        ("SELECT users.id FROM users WHERE users.id = %s", "select users"),
        ("  select count(*) AS count_1 \nFROM `test_results`", "select test_results"),
        ("INSERT INTO user_key_stats (user_id) VALUES (%s)", "insert user_key_stats"),
        ("UPDATE users SET bio=%s WHERE users.id = %s", "update users"),
        ("DELETE FROM refresh_tokens WHERE used_at < %s", "delete refresh_tokens"),
        ("REPLACE INTO notes (id) VALUES (1)", "replace notes"),
        ("WITH recent AS (SELECT * FROM test_results) SELECT * FROM recent", "select test_results"),
        ("SELECT 1", "select"),
        ("SELECT @@gtid_binlog_pos", "select"),
        ("SHOW SLAVE STATUS", "other"),
        ("ALTER TABLE test_results ADD PARTITION", "other"),
        ("", "other"),
    ],
)
def test_statement_family(sql: str, family: str) -> None:
    assert statement_family(sql) == family


def test_observations_land_per_family_and_target_and_the_memo_is_bounded() -> None:
    times = QueryTimes()
    times.observe("SELECT * FROM users", "primary", 0.002)
    times.observe("SELECT * FROM users", "replica", 0.003)
    times.observe("SELECT * FROM users WHERE id = 1", "primary", 0.004)
    assert set(times.histograms) == {("select users", "primary"), ("select users", "replica")}
    assert times.histograms["select users", "primary"].sum == pytest.approx(0.006)
    for n in range(FAMILY_CACHE_MAX + 10):
        times.observe(f"SELECT {n} FROM t{n % 3}", "primary", 0.001)
    assert len(times._families) <= FAMILY_CACHE_MAX
