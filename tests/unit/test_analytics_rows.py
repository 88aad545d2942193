"""One test's rows for the analytics tables (``workers.analytics``): what the folding
upserts insert, or add to a stored row."""

from __future__ import annotations

from workers.analytics import bigram_rows, confusion_rows, key_rows

NOW = 1_767_225_600_000


def test_key_rows_carry_the_tests_counts_and_mean_latency() -> None:
    data = {
        "keys": {
            "a": {"hits": 4, "misses": 1, "samples": 4, "total_ms": 410},
            "B": {"hits": 1, "misses": 1, "samples": 0, "total_ms": 0},  # no timing: 0.0
            "toolongkey": {"hits": 1, "samples": 1, "total_ms": 9},  # over MAX_CHAR: dropped
            "": {"hits": 1},
        }
    }
    assert key_rows("u", data, NOW) == [
        {"user_id": "u", "key": "a", "hits": 4, "misses": 1, "samples": 4,
         "latency_ms": 102.5, "created_at": NOW, "updated_at": NOW},
        {"user_id": "u", "key": "B", "hits": 1, "misses": 1, "samples": 0,
         "latency_ms": 0.0, "created_at": NOW, "updated_at": NOW},
    ]  # fmt: skip
    assert key_rows("u", {}, NOW) == []


def test_bigram_rows_only_with_samples() -> None:
    data = {"bigrams": {"th": {"samples": 2, "total_ms": 301}, "zz": {"samples": 0}}}
    assert bigram_rows("u", data, NOW) == [
        {"user_id": "u", "bigram": "th", "samples": 2, "latency_ms": 150.5,
         "created_at": NOW, "updated_at": NOW},
    ]  # fmt: skip


def test_confusions_are_summed_over_the_batch() -> None:
    fresh = [
        ("u", {"confusions": {"e": {"r": 2, "w": 1}, "bad": "not a mapping"}}),
        ("v", {"confusions": {"e": {"r": 5}}}),
        ("u", {"confusions": {"e": {"r": 1, "toolongkey": 3}}}),
    ]
    rows = {
        (r["user_id"], r["expected"], r["pressed"]): r["count"] for r in confusion_rows(fresh, NOW)
    }
    assert rows == {("u", "e", "r"): 3, ("u", "e", "w"): 1, ("v", "e", "r"): 5}
