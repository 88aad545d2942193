"""E-mail: the history (partitioned monthly on MySQL), single-use tokens, preferences,
suppressions and each user's verified address.

* ``email_history``: one row per message, from ``queued`` to ``sent`` and
  then ``delivered``, ``bounced``, ``complained`` or ``failed``; indexed by
  user, type, send time and the provider's message id.
* ``email_tokens``: verification and password-reset tokens, stored hashed.
* ``email_preferences``: one row per (user, category) the user has chosen.
* ``email_suppressions``: addresses that bounced hard or complained.
* ``email_addresses``: which address a user verified, and one waiting for it.

Revision ID: 0016
"""

import time

import sqlalchemy as sa
from alembic import op

from typogram.db.partitions import initial, partition_clause

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

INITIAL_MONTHS_AHEAD = 3


def upgrade() -> None:
    op.create_table(
        "email_history",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("email_type", sa.String(32), nullable=False),
        sa.Column("address", sa.String(254), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("provider", sa.String(16), nullable=False, server_default=""),
        sa.Column("provider_message_id", sa.String(255), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error", sa.String(255), nullable=False, server_default=""),
        sa.Column("sent_at", sa.BigInteger, nullable=True),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", "created_at"),
        mysql_charset="utf8mb4",
    )
    op.create_index("ix_email_history_user_created", "email_history", ["user_id", "created_at"])
    op.create_index("ix_email_history_type_created", "email_history", ["email_type", "created_at"])
    op.create_index("ix_email_history_sent_at", "email_history", ["sent_at"])
    op.create_index("ix_email_history_provider_message", "email_history", ["provider_message_id"])
    if op.get_bind().dialect.name == "mysql":
        now_ms = int(time.time() * 1000)
        op.execute(
            "ALTER TABLE email_history " + partition_clause(initial(now_ms, INITIAL_MONTHS_AHEAD))
        )
    op.create_table(
        "email_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("used_at", sa.BigInteger, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        mysql_charset="utf8mb4",
    )
    op.create_index("ix_email_tokens_user_purpose", "email_tokens", ["user_id", "purpose"])
    op.create_index("ix_email_tokens_expires_at", "email_tokens", ["expires_at"])
    op.create_table(
        "email_preferences",
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("enabled", sa.SmallInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("user_id", "category"),
        mysql_charset="utf8mb4",
    )
    op.create_table(
        "email_suppressions",
        sa.Column("address", sa.String(254), primary_key=True),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("message_id", sa.String(32), nullable=False, server_default=""),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        mysql_charset="utf8mb4",
    )
    op.create_table(
        "email_addresses",
        sa.Column("user_id", sa.String(32), primary_key=True),
        sa.Column("verified_email", sa.String(254), nullable=True),
        sa.Column("verified_at", sa.BigInteger, nullable=True),
        sa.Column("pending_email", sa.String(254), nullable=True),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        mysql_charset="utf8mb4",
    )


def downgrade() -> None:
    for table in (
        "email_addresses",
        "email_suppressions",
        "email_preferences",
        "email_tokens",
        "email_history",
    ):
        op.drop_table(table)
