"""A ``result.accepted`` event as REST publishes it, for worker tests and the chaos suite."""

from __future__ import annotations

from typogram.ports import Event


def accepted(user_id: str, result_id: str, *, wpm: float, flagged: bool = False) -> Event:
    """A ``result.accepted`` as REST publishes it, for a user with no SQL row needed."""
    data = {
        "result_id": result_id, "user_id": user_id, "username": "x", "test_id": "t" * 32,
        "mode": "words", "lang": "en", "count": 25, "seconds": None, "punctuation": False,
        "numbers": False, "difficulty": "medium", "category": "words-25-en",
        "personal_best_category": "words-25-en", "wpm": wpm, "raw_wpm": wpm, "accuracy": 97.0,
        "consistency": 80.0, "duration_ms": 15000,
        "chars": {"correct": 125, "incorrect": 0, "extra": 0, "missed": 0}, "keystrokes": 126,
        "flagged": flagged, "flag_reasons": ["wpm_high"] if flagged else [],
        "created_at": 1_767_225_600_000,
        "keys": {"a": {"hits": 9, "misses": 1, "total_ms": 1310, "samples": 9}},
        "bigrams": {"th": {"total_ms": 412, "samples": 4}}, "confusions": {"e": {"r": 1}},
    }  # fmt: skip
    return Event(type="result.accepted", data=data, key=user_id, id=result_id, ts=1_767_225_600_000)
