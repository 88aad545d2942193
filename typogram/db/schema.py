"""The relational schema as SQLAlchemy Core tables (no ORM).

Migrations in ``typogram/db/migrations`` create these; queries use them.
Times are epoch milliseconds (BIGINT) so SQLite and MySQL agree exactly.
Ids are 32-character hex UUIDs; guests (``guest:…``) never get a row.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("username", String(32), nullable=False),
    # Lower-cased copies carry the unique indexes: one rule on SQLite and MySQL.
    Column("username_key", String(32), nullable=False),
    Column("email", String(254), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("display_name", String(64), nullable=False, server_default=""),
    Column("bio", String(500), nullable=False, server_default=""),
    Column("keyboard_layout", String(32), nullable=False, server_default="qwerty"),
    Column("country", String(2), nullable=False, server_default=""),
    Column("role", String(16), nullable=False, server_default="user"),
    Column("token_version", Integer, nullable=False, server_default="0"),
    Column("referral_code", String(12), nullable=False),
    Column("referred_by", String(32), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ux_users_username_key", "username_key", unique=True),
    Index("ux_users_email", "email", unique=True),
    Index("ux_users_referral_code", "referral_code", unique=True),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("jti", String(32), primary_key=True),
    Column("user_id", String(32), nullable=False),
    # A family is one login's chain of rotations; reuse of a spent token revokes it.
    Column("family", String(32), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("used_at", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_refresh_tokens_user_id", "user_id"),
    Index("ix_refresh_tokens_family", "family"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("user_id", String(32), nullable=True),
    Column("action", String(32), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("ip", String(45), nullable=False, server_default=""),
    Column("detail", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_audit_log_user_created", "user_id", "created_at"),
    Index("ix_audit_log_action_created", "action", "created_at"),
)

chat_messages = Table(
    "chat_messages",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("room_id", String(64), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("user_name", String(64), nullable=False),
    Column("text", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_chat_messages_room_created", "room_id", "created_at"),
    Index("ix_chat_messages_user_id", "user_id"),
    Index("ix_chat_messages_created_at", "created_at"),
)
