"""Accounts: users, refresh tokens, the audit log, chat messages.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _id() -> sa.Column[str]:
    return sa.Column("id", sa.String(32), primary_key=True)


def upgrade() -> None:
    op.create_table(
        "users",
        _id(),
        sa.Column("username", sa.String(32), nullable=False),
        sa.Column("username_key", sa.String(32), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("display_name", sa.String(64), nullable=False, server_default=""),
        sa.Column("bio", sa.String(500), nullable=False, server_default=""),
        sa.Column("keyboard_layout", sa.String(32), nullable=False, server_default="qwerty"),
        sa.Column("country", sa.String(2), nullable=False, server_default=""),
        sa.Column("role", sa.String(16), nullable=False, server_default="user"),
        sa.Column("token_version", sa.Integer, nullable=False, server_default="0"),
        sa.Column("referral_code", sa.String(12), nullable=False),
        sa.Column("referred_by", sa.String(32), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        mysql_charset="utf8mb4",
    )
    op.create_index("ux_users_username_key", "users", ["username_key"], unique=True)
    op.create_index("ux_users_email", "users", ["email"], unique=True)
    op.create_index("ux_users_referral_code", "users", ["referral_code"], unique=True)

    op.create_table(
        "refresh_tokens",
        sa.Column("jti", sa.String(32), primary_key=True),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("family", sa.String(32), nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("used_at", sa.BigInteger, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        mysql_charset="utf8mb4",
    )
    op.create_index("ix_refresh_tokens_user_id", "refresh_tokens", ["user_id"])
    op.create_index("ix_refresh_tokens_family", "refresh_tokens", ["family"])

    op.create_table(
        "audit_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("user_id", sa.String(32), nullable=True),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("ip", sa.String(45), nullable=False, server_default=""),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        mysql_charset="utf8mb4",
    )
    op.create_index("ix_audit_log_user_created", "audit_log", ["user_id", "created_at"])
    op.create_index("ix_audit_log_action_created", "audit_log", ["action", "created_at"])

    op.create_table(
        "chat_messages",
        _id(),
        sa.Column("room_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("user_name", sa.String(64), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        mysql_charset="utf8mb4",
    )
    op.create_index("ix_chat_messages_room_created", "chat_messages", ["room_id", "created_at"])
    op.create_index("ix_chat_messages_user_id", "chat_messages", ["user_id"])
    op.create_index("ix_chat_messages_created_at", "chat_messages", ["created_at"])


def downgrade() -> None:
    for table in ("chat_messages", "audit_log", "refresh_tokens", "users"):
        op.drop_table(table)
