"""The solo side's read APIs (issue 4), registered in ``rest.app.FEATURES``."""

from __future__ import annotations

from rest import achievements, challenges, insights, leaderboards
from rest.routing import Api

APIS: tuple[Api, ...] = (leaderboards.api, insights.api, challenges.api, achievements.api)
