"""The results pipeline's consumer groups (issue 4), registered in ``workers.groups``."""

from __future__ import annotations

from workers import achievements, analytics, challenges, leaderboards, results
from workers.runtime import Group

GROUPS: tuple[Group, ...] = (
    results.GROUP,
    leaderboards.GROUP,
    analytics.GROUP,
    challenges.GROUP,
    achievements.GROUP,
)
