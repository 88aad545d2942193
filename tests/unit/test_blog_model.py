"""The rules of posts and publishing (typogram/blog/model.py)."""

from __future__ import annotations

import msgspec
import pytest

from typogram.blog.model import (
    MAX_TIME_MS,
    PostFields,
    PostPatch,
    is_public,
    post_problems,
    publication_time,
    set_fields,
)


def test_public_means_published_and_time_come() -> None:
    assert is_public(True, 100, 100) and is_public(True, 50, 100)
    assert not is_public(True, 101, 100)  # scheduled
    assert not is_public(False, 50, 100)  # draft (unpublished)
    assert not is_public(True, None, 100)


def test_publication_time() -> None:
    assert publication_time(500, 10, 100) == 500  # a time given: scheduled
    assert publication_time(None, 10, 100) == 10  # re-publish keeps its place
    assert publication_time(None, 200, 100) == 100  # a future time left over: now
    assert publication_time(None, None, 100) == 100


def test_problems_name_each_bad_field() -> None:
    fields = {"title": "   ", "slug": "Bad Slug", "tags": ["ok", "Not OK"], "language": "xx",
              "cover_url": "javascript:alert(1)"}  # fmt: skip
    assert set(post_problems(fields)) == {"title", "slug", "tags", "language", "cover_url"}
    good = {"title": "T", "slug": "a-post", "tags": ["x"], "language": "en",
            "cover_url": "https://cdn.example.com/a.png"}  # fmt: skip
    assert post_problems(good) == {}
    assert post_problems({"cover_url": None, "slug": None}) == {}
    assert "cover_url" in post_problems({"cover_url": "https://a b"})
    assert "cover_url" in post_problems({"cover_url": "http://plain.example"})


def test_bodies_decode_strictly() -> None:
    decoded = msgspec.json.decode(b'{"title": "T", "body_markdown": "x"}', type=PostFields)
    assert decoded.publish_at is None and decoded.tags == [] and decoded.language == "en"
    base = {"title": "T", "body_markdown": "x"}
    for bad in (
        {"title": ""},
        {"extra": 1},
        {"publish_at": -1},
        {"publish_at": MAX_TIME_MS + 1},
        {"body_markdown": "x" * 60_001},
        {"tags": [str(n) for n in range(11)]},
        {"title": "t" * 201},
    ):
        with pytest.raises(msgspec.ValidationError):
            msgspec.json.decode(msgspec.json.encode(base | bad), type=PostFields)
    patch = msgspec.json.decode(b'{"excerpt": null, "slug": "x-y"}', type=PostPatch)
    assert set_fields(patch) == {"excerpt": None, "slug": "x-y"}
