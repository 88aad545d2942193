"""Results pipeline: user stats, keystroke analytics, daily challenges, achievements.

``challenge_attempts`` is partitioned monthly on MySQL (like ``test_results``);
``user_achievements`` by ``KEY(user_id)`` into 4 partitions.

Revision ID: 0004
"""

import time

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from typogram.db.partitions import initial, partition_clause

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

INITIAL_MONTHS_AHEAD = 3
ACHIEVEMENT_PARTITIONS = 4


def _char() -> sa.types.TypeEngine[str]:
    # Typed characters compare byte for byte on MySQL: "a" and "A" are two keys.
    return sa.String(8).with_variant(mysql.VARCHAR(8, collation="utf8mb4_bin"), "mysql")


def _times() -> list[sa.Column[int]]:
    return [
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    ]


def upgrade() -> None:
    is_mysql = op.get_bind().dialect.name == "mysql"
    op.create_table(
        "user_stats",
        sa.Column("user_id", sa.String(32), primary_key=True),
        sa.Column("tests", sa.Integer, nullable=False, server_default="0"),
        sa.Column("flagged", sa.Integer, nullable=False, server_default="0"),
        sa.Column("total_time_ms", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("total_chars", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("best_wpm", sa.Double, nullable=False, server_default="0"),
        sa.Column("wpm_sum", sa.Double, nullable=False, server_default="0"),
        sa.Column("accuracy_sum", sa.Double, nullable=False, server_default="0"),
        sa.Column("last_test_at", sa.BigInteger, nullable=False, server_default="0"),
        *_times(),
        mysql_charset="utf8mb4",
    )
    op.create_table(
        "applied_results",
        sa.Column("result_id", sa.String(32), primary_key=True),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        mysql_charset="utf8mb4",
    )
    op.create_index("ix_applied_results_created_at", "applied_results", ["created_at"])
    op.create_table(
        "user_key_stats",
        sa.Column("user_id", sa.String(32), primary_key=True),
        sa.Column("key", _char(), primary_key=True),
        sa.Column("hits", sa.Integer, nullable=False),
        sa.Column("misses", sa.Integer, nullable=False),
        sa.Column("samples", sa.Integer, nullable=False),
        sa.Column("latency_ms", sa.Double, nullable=False),
        *_times(),
        mysql_charset="utf8mb4",
    )
    op.create_table(
        "user_bigram_stats",
        sa.Column("user_id", sa.String(32), primary_key=True),
        sa.Column("bigram", _char(), primary_key=True),
        sa.Column("samples", sa.Integer, nullable=False),
        sa.Column("latency_ms", sa.Double, nullable=False),
        *_times(),
        mysql_charset="utf8mb4",
    )
    op.create_table(
        "user_confusions",
        sa.Column("user_id", sa.String(32), primary_key=True),
        sa.Column("expected", _char(), primary_key=True),
        sa.Column("pressed", _char(), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
        *_times(),
        mysql_charset="utf8mb4",
    )
    op.create_table(
        "user_trend",
        sa.Column("user_id", sa.String(32), primary_key=True),
        sa.Column("result_id", sa.String(32), primary_key=True),
        sa.Column("wpm", sa.Double, nullable=False),
        sa.Column("accuracy", sa.Double, nullable=False),
        sa.Column("consistency", sa.Double, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        mysql_charset="utf8mb4",
    )
    op.create_index("ix_user_trend_user_created", "user_trend", ["user_id", "created_at"])

    op.create_table(
        "challenge_attempts",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("challenge_id", sa.String(10), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("wpm", sa.Double, nullable=False),
        sa.Column("raw_wpm", sa.Double, nullable=False),
        sa.Column("accuracy", sa.Double, nullable=False),
        sa.Column("consistency", sa.Double, nullable=False),
        sa.Column("duration_ms", sa.Integer, nullable=False),
        sa.Column("flagged", sa.SmallInteger, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("id", "created_at"),
        mysql_charset="utf8mb4",
    )
    op.create_index(
        "ix_challenge_attempts_user_created", "challenge_attempts", ["user_id", "created_at"]
    )
    op.create_index("ix_challenge_attempts_challenge", "challenge_attempts", ["challenge_id"])
    if is_mysql:
        now_ms = int(time.time() * 1000)
        op.execute(
            "ALTER TABLE challenge_attempts "
            + partition_clause(initial(now_ms, INITIAL_MONTHS_AHEAD))
        )
    op.create_table(
        "challenge_streaks",
        sa.Column("user_id", sa.String(32), primary_key=True),
        sa.Column("last_date", sa.String(10), nullable=False),
        sa.Column("current", sa.Integer, nullable=False),
        sa.Column("best", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        mysql_charset="utf8mb4",
    )

    op.create_table(
        "user_achievements",
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("achievement_id", sa.String(32), nullable=False),
        sa.Column("unlocked_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("user_id", "achievement_id"),
        mysql_charset="utf8mb4",
    )
    if is_mysql:
        op.execute(
            "ALTER TABLE user_achievements "
            f"PARTITION BY KEY(user_id) PARTITIONS {ACHIEVEMENT_PARTITIONS}"
        )
    op.create_table(
        "achievement_progress",
        sa.Column("user_id", sa.String(32), primary_key=True),
        sa.Column("facts", sa.Text, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        mysql_charset="utf8mb4",
    )
    op.create_table(
        "achievement_events_seen",
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        mysql_charset="utf8mb4",
    )


def downgrade() -> None:
    for table in (
        "achievement_events_seen",
        "achievement_progress",
        "user_achievements",
        "challenge_streaks",
        "challenge_attempts",
        "user_trend",
        "user_confusions",
        "user_bigram_stats",
        "user_key_stats",
        "applied_results",
        "user_stats",
    ):
        op.drop_table(table)
