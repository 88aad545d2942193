"""The blog's reader and editor built from a platform's backends and settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from typogram.blog.editing import BlogEditor
from typogram.blog.posts import BlogReader

if TYPE_CHECKING:
    from typogram.platform import Platform


def reader_of(platform: Platform) -> BlogReader:
    settings = platform.settings
    return BlogReader(
        platform.db,
        platform.cache,
        platform.search,
        ttl_s=settings.blog_cache_ttl_s,
        max_hits=settings.blog_search_max_hits,
        feed_entries=settings.blog_feed_entries,
        sitemap_max=settings.blog_sitemap_max_urls,
    )


def editor_of(platform: Platform) -> BlogEditor:
    settings = platform.settings
    return BlogEditor(
        platform.db,
        platform.cache,
        platform.search,
        ttl_s=settings.blog_cache_ttl_s,
        max_hits=settings.blog_search_max_hits,
    )
