"""The courses and subscriptions services built from a platform's backends and settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from typogram.courses.catalog import Catalog
from typogram.courses.editing import CourseEditor
from typogram.courses.learning import Learning
from typogram.subscriptions.service import Subscriptions

if TYPE_CHECKING:
    from typogram.platform import Platform


def catalog_of(platform: Platform) -> Catalog:
    settings = platform.settings
    return Catalog(
        platform.db,
        platform.cache,
        platform.search,
        ttl_s=settings.course_catalog_cache_ttl_s,
        max_hits=settings.course_search_max_hits,
    )


def editor_of(platform: Platform) -> CourseEditor:
    settings = platform.settings
    return CourseEditor(
        platform.db,
        platform.cache,
        catalog_ttl_s=settings.course_catalog_cache_ttl_s,
        max_lessons=settings.course_max_lessons,
    )


def learning_of(platform: Platform) -> Learning:
    return Learning(platform.db)


def subscriptions_of(platform: Platform) -> Subscriptions:
    settings = platform.settings
    return Subscriptions(
        platform.db,
        platform.cache,
        platform.events,
        cache_ttl_s=settings.subscription_cache_ttl_s,
        grace_s=settings.subscription_grace_s,
    )
