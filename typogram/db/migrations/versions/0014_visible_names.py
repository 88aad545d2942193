"""Names that cannot hide: rename the users whose names the new rules refuse.

Usernames must now match ``[A-Za-z0-9_]{3,32}`` as a whole (a trailing newline
was let through before) and are unique by their NFKC_Casefold key
(``typogram.text_rules``). A username that fails is renamed to its allowed
characters plus a numeric suffix that makes it unique; a display name with
an invisible or control character loses those characters (or becomes the
username when nothing is left). Every change is written to ``audit_log``
(``username_renamed`` / ``display_name_cleaned``, the old and new value in
``detail``), so staff can tell a user what happened.

No schema change; the downgrade keeps the new names.

Revision ID: 0014
"""

import json
import re
import time
from typing import Any

import sqlalchemy as sa
from alembic import op

from typogram.text_rules import hidden_character, username_key

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

USERNAME = re.compile(r"[A-Za-z0-9_]{3,32}")
NOT_USERNAME = re.compile(r"[^A-Za-z0-9_]+")

_users = sa.table(
    "users",
    sa.column("id", sa.String),
    sa.column("username", sa.String),
    sa.column("username_key", sa.String),
    sa.column("display_name", sa.String),
    sa.column("updated_at", sa.BigInteger),
)
_audit = sa.table(
    "audit_log",
    sa.column("user_id", sa.String),
    sa.column("action", sa.String),
    sa.column("outcome", sa.String),
    sa.column("ip", sa.String),
    sa.column("detail", sa.Text),
    sa.column("created_at", sa.BigInteger),
)


def _free_name(base: str, taken: set[str]) -> str:
    """``base`` (allowed characters only) with the first suffix whose key is not taken."""
    stem = (NOT_USERNAME.sub("", base) or "user")[:24]
    for number in range(1, 1_000_000):
        candidate = f"{stem}_{number}"
        if username_key(candidate) not in taken:
            return candidate
    raise RuntimeError(f"no free username for {base!r}")


def _visible(text: str) -> str:
    return "".join(char for char in text if hidden_character(char) is None).strip()


def _audit_row(user_id: str, action: str, before: str, after: str, now: int) -> dict[str, Any]:
    detail = {"from": before, "to": after, "reason": "migration 0014"}
    return {
        "user_id": user_id,
        "action": action,
        "outcome": "success",
        "ip": "",
        "detail": json.dumps(detail),
        "created_at": now,
    }


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(_users.c.id, _users.c.username, _users.c.display_name).order_by(_users.c.id)
    ).all()
    now = int(time.time() * 1000)
    # Keys of the names that stay; a renamed user takes a key outside this set.
    keep = [row for row in rows if USERNAME.fullmatch(row.username)]
    taken: set[str] = set()
    renamed: dict[str, str] = {}
    for row in keep:
        key = username_key(row.username)
        if key in taken:
            renamed[row.id] = ""  # a second name on one key: renamed below
        else:
            taken.add(key)
    for row in rows:
        if USERNAME.fullmatch(row.username) and row.id not in renamed:
            continue
        new = _free_name(row.username, taken)
        taken.add(username_key(new))
        renamed[row.id] = new
        bind.execute(
            sa.update(_users)
            .where(_users.c.id == row.id)
            .values(username=new, username_key=username_key(new), updated_at=now)
        )
        bind.execute(
            sa.insert(_audit).values(
                **_audit_row(row.id, "username_renamed", row.username, new, now)
            )
        )
    for row in rows:
        if hidden_character(row.display_name) is None:
            continue
        cleaned = _visible(row.display_name) or renamed.get(row.id) or row.username
        bind.execute(
            sa.update(_users)
            .where(_users.c.id == row.id)
            .values(display_name=cleaned[:64], updated_at=now)
        )
        bind.execute(
            sa.insert(_audit).values(
                **_audit_row(row.id, "display_name_cleaned", row.display_name, cleaned, now)
            )
        )


def downgrade() -> None:
    """The renamed users keep their new names: the old ones are in the audit log."""
