"""Kafka topics, their partition counts (from the scaling strategy) and the event types
each carries (fields and versions in ``docs/events.md``).

An event type is named once, here; producers and consumers import the name.
"""

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

# Event types, by the topic that carries them.


def payment_announced(status: str) -> str:
    """The type announcing that a payment reached ``status`` (``payment.succeeded``, …)."""
    return f"payment.{status}"


def subscription_changed(past_tense: str) -> str:
    """The type of a subscription change (``subscription.renewed``, …)."""
    return f"subscription.{past_tense}"


# test-results
RESULT_ACCEPTED: Final = "result.accepted"
# keystroke-analytics
ANALYTICS_RESULT: Final = "analytics.result"
# leaderboard-updates
LEADERBOARD_SCORE: Final = "leaderboard.score"
# tournament-scores
TOURNAMENT_RACE: Final = "tournament.race"
# race-events: the names mean what they mean on the WebSocket (docs/protocol.md) from
# ``RACE_EVENTS_VERSION`` 2 on; version 1 events had them the other way round
# (``typogram.race_events`` reads both).
RACE_FINISHED: Final = "race.finished"  # one racer's accepted finish
RACE_RESULT: Final = "race.result"  # a race's final standings
RACE_EVENTS_VERSION: Final = 2
# challenge-attempts
CHALLENGE_ATTEMPT: Final = "challenge.attempt"
# chat-messages
CHAT_MESSAGE: Final = "chat.message"
CHAT_DELETED: Final = "chat.deleted"
CHAT_REPORT: Final = "chat.report"
# payment-events
PAYMENT_WEBHOOK: Final = "payment.webhook"
PAYMENT_SUCCEEDED: Final = payment_announced("succeeded")
SUBSCRIPTION_RENEWED: Final = subscription_changed("renewed")
SUBSCRIPTION_EXPIRED: Final = subscription_changed("expired")
# achievement-events
ACHIEVEMENT_TEST: Final = "achievement.test"
ACHIEVEMENT_CHALLENGE_STREAK: Final = "achievement.challenge_streak"
ACHIEVEMENT_COURSE: Final = "achievement.course"
# email-send
EMAIL_MESSAGE: Final = "email.send"
PASSWORD_RESET_REQUESTED: Final = "email.password_reset_requested"


DLQ_SUFFIX: Final = ".dlq"


def dead_letter(topic: str) -> str:
    """Where a consumer sends a message it could not process after its retries."""
    return f"{topic}{DLQ_SUFFIX}"
