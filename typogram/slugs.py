"""Slugs and tags: the URL-safe names that content (courses, posts) carries. Pure.

Rules:

1. A slug is 3-64 of ``a-z 0-9 -``, starting and ending with a letter or
   digit (``SLUG``); it names a page in a URL, so nothing else is allowed.
2. A tag is 1-32 of the same characters (``TAG``); a document has at most
   ``MAX_TAGS``. Tags hold no ``%`` or ``_``, so ``LIKE '%,tag,%'`` over the
   stored form (``encode_tags``) matches exactly one tag.
3. ``slugify`` turns a title into a slug when staff give none: accents are
   dropped, any other run of characters becomes one dash, and the result is
   cut at a dash to fit; a title with nothing usable gives ``""``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Final

SLUG: Final = re.compile(r"\A[a-z0-9](?:[a-z0-9-]{1,62}[a-z0-9])\Z")
TAG: Final = re.compile(r"\A[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?\Z")
MAX_SLUG_CHARS: Final = 64
MAX_TAGS: Final = 10
SLUG_RULE: Final = "3-64 of a-z 0-9 -, starting and ending with a letter or digit"
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def slug_problem(slug: str) -> str | None:
    return None if SLUG.match(slug) else SLUG_RULE


def tags_problem(tags: Sequence[str]) -> str | None:
    if len(tags) > MAX_TAGS:
        return f"at most {MAX_TAGS} tags"
    bad = [tag for tag in tags if not TAG.match(tag)]
    return f"tags are 1-32 of a-z 0-9 -: {bad[0]!r}" if bad else None


def encode_tags(tags: Sequence[str]) -> str:
    """Stored as ``,a,b,``: one tag filters with ``LIKE '%,tag,%'`` (rule 2)."""
    return "," + ",".join(dict.fromkeys(tags)) + "," if tags else ""


def decode_tags(stored: str) -> list[str]:
    return [tag for tag in stored.split(",") if tag]


def slugify(title: str, *, max_chars: int = MAX_SLUG_CHARS) -> str:
    """Rule 3: a slug for ``title``, or ``""`` when it has no letter or digit of a-z 0-9."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = _NOT_SLUG.sub("-", ascii_title.lower()).strip("-")
    if len(slug) > max_chars:
        cut = slug[: max_chars + 1].rfind("-")
        slug = slug[:cut] if cut >= 3 else slug[:max_chars]
        slug = slug.strip("-")
    return slug if SLUG.match(slug) else ""
