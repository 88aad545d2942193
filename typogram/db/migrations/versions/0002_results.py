"""Typing test results and personal bests; ``test_results`` partitioned monthly on MySQL.

Revision ID: 0002
"""

import time

import sqlalchemy as sa
from alembic import op

from typogram.db.partitions import initial, partition_clause

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Months created ahead of now; `typogram partitions` keeps the window moving.
INITIAL_MONTHS_AHEAD = 3


def upgrade() -> None:
    op.create_table(
        "test_results",
        sa.Column("id", sa.String(32), nullable=False),
        # Part of the primary key: MySQL needs the partition column in every unique key.
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("test_id", sa.String(32), nullable=False),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("lang", sa.String(8), nullable=False),
        sa.Column("word_count", sa.Integer, nullable=True),
        sa.Column("seconds", sa.Integer, nullable=True),
        sa.Column("punctuation", sa.SmallInteger, nullable=False, server_default="0"),
        sa.Column("numbers", sa.SmallInteger, nullable=False, server_default="0"),
        sa.Column("difficulty", sa.String(8), nullable=False, server_default="medium"),
        sa.Column("seed", sa.BigInteger, nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("wpm", sa.Double, nullable=False),
        sa.Column("raw_wpm", sa.Double, nullable=False),
        sa.Column("accuracy", sa.Double, nullable=False),
        sa.Column("consistency", sa.Double, nullable=False),
        sa.Column("duration_ms", sa.Integer, nullable=False),
        sa.Column("chars_correct", sa.Integer, nullable=False),
        sa.Column("chars_incorrect", sa.Integer, nullable=False),
        sa.Column("chars_extra", sa.Integer, nullable=False),
        sa.Column("chars_missed", sa.Integer, nullable=False),
        sa.Column("keystrokes", sa.Integer, nullable=False),
        sa.Column("flagged", sa.SmallInteger, nullable=False, server_default="0"),
        sa.Column("flag_reason", sa.String(255), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("id", "created_at"),
        mysql_charset="utf8mb4",
    )
    op.create_index("ix_test_results_user_created", "test_results", ["user_id", "created_at"])
    op.create_index("ix_test_results_test_id", "test_results", ["test_id"])
    if op.get_bind().dialect.name == "mysql":
        now_ms = int(time.time() * 1000)
        op.execute(
            "ALTER TABLE test_results " + partition_clause(initial(now_ms, INITIAL_MONTHS_AHEAD))
        )

    op.create_table(
        "personal_bests",
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("wpm", sa.Double, nullable=False),
        sa.Column("accuracy", sa.Double, nullable=False),
        sa.Column("result_id", sa.String(32), nullable=False),
        sa.Column("achieved_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("user_id", "category"),
        mysql_charset="utf8mb4",
    )


def downgrade() -> None:
    for table in ("personal_bests", "test_results"):
        op.drop_table(table)
