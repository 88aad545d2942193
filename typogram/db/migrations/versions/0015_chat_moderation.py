"""Chat moderation and presence: the report queue, the "appear offline" setting.

* ``chat_reports``: one row per reported chat message and reporter (the id is
  derived from both), ``open`` until staff resolve or dismiss it; it keeps a
  copy of the message, so a report outlives the message's deletion.
* ``users.appear_offline``: the user appears offline to everyone.

Revision ID: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "users",
        sa.Column("appear_offline", sa.SmallInteger, nullable=False, server_default="0"),
    )
    op.create_table(
        "chat_reports",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("room_id", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("author_id", sa.String(64), nullable=False),
        sa.Column("author_name", sa.String(64), nullable=False, server_default=""),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("sent_at", sa.BigInteger, nullable=False),
        sa.Column("reporter_id", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False, server_default=""),
        sa.Column("status", sa.String(16), nullable=False, server_default="open"),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("reviewed_by", sa.String(32), nullable=True),
        sa.Column("reviewed_at", sa.BigInteger, nullable=True),
        sa.Column("note", sa.String(500), nullable=False, server_default=""),
        mysql_charset="utf8mb4",
    )
    op.create_index(
        "ix_chat_reports_status_created", "chat_reports", ["status", "created_at", "id"]
    )
    op.create_index("ix_chat_reports_message_id", "chat_reports", ["message_id"])


def downgrade() -> None:
    op.drop_table("chat_reports")
    op.drop_column("users", "appear_offline")
