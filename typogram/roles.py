"""Account roles, in one place.

A role travels in every access token (``Claims.role``); changing it bumps the
user's token version, so a token never carries a role the user lost.

* ``user`` — everyone who registered.
* ``moderator`` — chat moderation and the review queues (flagged results,
  reports) everywhere, system rooms included.
* ``editor`` — content: blog posts and courses.
* ``admin`` — everything staff can do, including granting roles.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    USER = "user"
    MODERATOR = "moderator"
    EDITOR = "editor"
    ADMIN = "admin"


# Who reviews and moderates (flags, reports, chat in system rooms).
STAFF: frozenset[str] = frozenset({Role.MODERATOR, Role.ADMIN})
# Who edits published content (posts, courses).
EDITORS: frozenset[str] = frozenset({Role.EDITOR, Role.ADMIN})
# Who grants roles, reads the audit log and manages subscriptions.
ADMINS: frozenset[str] = frozenset({Role.ADMIN})
