"""Every cache key and pub/sub channel name, in one place.

Adapters add the deployment's prefix (``redis_prefix``); callers use these
functions and never spell a key themselves.
"""

from __future__ import annotations


def user_profile(user_id: str) -> str:
    return f"user:{user_id}:profile"


def user_presence(user_id: str) -> str:
    return f"user:{user_id}:presence"


def user_token_version(user_id: str) -> str:
    return f"user:{user_id}:token_version"


def rate_limit(scope: str, subject: str, window: int) -> str:
    """A fixed-window counter: ``scope`` is ``user``, ``ip`` or ``login``."""
    return f"ratelimit:{scope}:{subject}:{window}"


def event_done(group: str, event_id: str) -> str:
    """Marks an event a consumer group has processed (idempotency)."""
    return f"event:{group}:{event_id}:done"


def room_state(room_id: str) -> str:
    return f"room:{room_id}:state"


def room_history(room_id: str) -> str:
    return f"room:{room_id}:history"


def race_state(race_id: str) -> str:
    return f"race:{race_id}:state"


def race_matchmaking(difficulty: str) -> str:
    return f"race:matchmaking:{difficulty}"


def tournament_state(tournament_id: str) -> str:
    return f"tournament:{tournament_id}:state"


def tournament_rankings(tournament_id: str) -> str:
    return f"tournament:{tournament_id}:rankings"


def leaderboard(category: str, timeframe: str) -> str:
    return f"leaderboard:{category}:{timeframe}"


# -- pub/sub channels -------------------------------------------------------


def channel_room(room_id: str) -> str:
    return f"ch:room:{room_id}"


def channel_user(user_id: str) -> str:
    """Messages for every connection of one user (token revocation, unlocks)."""
    return f"ch:user:{user_id}"


def channel_race(race_id: str) -> str:
    return f"ch:race:{race_id}"
