"""Revoked login sessions: every token of a session refused, the others kept.

* ``revoked_sessions``: one row per login session (refresh family) revoked
  alone, e.g. after a refresh token was replayed, kept until no token of it
  can still be alive.

Revision ID: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "revoked_sessions",
        sa.Column("sid", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("revoked_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        mysql_charset="utf8mb4",
    )
    op.create_index(
        "ix_revoked_sessions_user_expires", "revoked_sessions", ["user_id", "expires_at"]
    )


def downgrade() -> None:
    op.drop_table("revoked_sessions")
