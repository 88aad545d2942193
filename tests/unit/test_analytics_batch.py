"""Folding one test's key and bigram statistics into a row (workers.analytics), the step a
batch repeats per event in event order."""

from __future__ import annotations

import pytest

from typogram.insights import smooth
from workers.analytics import bigram_row, key_row


def test_a_key_row_starts_at_the_first_mean_and_then_smooths() -> None:
    unseen = key_row(None, {"hits": 1, "misses": 1, "samples": 0, "total_ms": 0})
    assert unseen == {"hits": 1, "misses": 1, "samples": 0, "latency_ms": 0.0}
    # No sample yet: the first test with samples sets the latency, it is not smoothed.
    first = key_row(unseen, {"hits": 4, "misses": 0, "samples": 4, "total_ms": 400})
    assert first == {"hits": 5, "misses": 1, "samples": 4, "latency_ms": 100.0}
    second = key_row(first, {"hits": 2, "samples": 2, "total_ms": 400})
    assert second["latency_ms"] == pytest.approx(smooth(100.0, 200.0))
    assert (second["hits"], second["misses"], second["samples"]) == (7, 1, 6)
    # A test without samples of the key keeps its latency.
    assert key_row(second, {"misses": 1})["latency_ms"] == second["latency_ms"]


def test_a_bigram_row_adds_samples_and_smooths_the_mean() -> None:
    first = bigram_row(None, {"samples": 2, "total_ms": 300})
    assert first == {"samples": 2, "latency_ms": 150.0}
    assert bigram_row(first, {"samples": 1, "total_ms": 90}) == {
        "samples": 3,
        "latency_ms": smooth(150.0, 90.0),
    }
