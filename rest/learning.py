"""Courses, lessons and subscriptions (issue 16), registered in ``rest.app.FEATURES``."""

from __future__ import annotations

from rest import admin_courses, courses, subscriptions
from rest.routing import Api

APIS: tuple[Api, ...] = (courses.api, subscriptions.api, admin_courses.api)
