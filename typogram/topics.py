"""Kafka topics and their partition counts (from the scaling strategy)."""

from __future__ import annotations

from typing import Final

TEST_RESULTS: Final = "test-results"
KEYSTROKE_ANALYTICS: Final = "keystroke-analytics"
LEADERBOARD_UPDATES: Final = "leaderboard-updates"
TOURNAMENT_SCORES: Final = "tournament-scores"
RACE_EVENTS: Final = "race-events"
CHALLENGE_ATTEMPTS: Final = "challenge-attempts"
CHAT_MESSAGES: Final = "chat-messages"
PAYMENT_EVENTS: Final = "payment-events"
ACHIEVEMENT_EVENTS: Final = "achievement-events"
EMAIL_SEND: Final = "email-send"

PARTITIONS: Final[dict[str, int]] = {
    TEST_RESULTS: 10,
    KEYSTROKE_ANALYTICS: 20,
    LEADERBOARD_UPDATES: 10,
    TOURNAMENT_SCORES: 10,
    RACE_EVENTS: 10,
    CHALLENGE_ATTEMPTS: 10,
    CHAT_MESSAGES: 20,
    PAYMENT_EVENTS: 10,
    ACHIEVEMENT_EVENTS: 10,
    EMAIL_SEND: 20,
}

DLQ_SUFFIX: Final = ".dlq"


def dead_letter(topic: str) -> str:
    """Where a consumer sends a message it could not process after its retries."""
    return f"{topic}{DLQ_SUFFIX}"
