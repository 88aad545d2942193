"""Race results, ratings, tournaments and their participants.

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "race_results",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("race_id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("place", sa.Integer, nullable=False),
        sa.Column("wpm", sa.Double, nullable=False),
        sa.Column("raw_wpm", sa.Double, nullable=False),
        sa.Column("accuracy", sa.Double, nullable=False),
        sa.Column("consistency", sa.Double, nullable=False),
        sa.Column("time_ms", sa.Integer, nullable=False),
        sa.Column("guest", sa.SmallInteger, nullable=False, server_default="0"),
        sa.Column("difficulty", sa.String(8), nullable=False),
        sa.Column("lang", sa.String(8), nullable=False),
        sa.Column("seed", sa.BigInteger, nullable=False),
        sa.Column("flags", sa.String(255), nullable=False, server_default=""),
        sa.Column("tournament_id", sa.String(32), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        mysql_charset="utf8mb4",
    )
    op.create_index("ix_race_results_race_id", "race_results", ["race_id"])
    op.create_index("ix_race_results_user_id", "race_results", ["user_id"])
    op.create_index("ix_race_results_created_at", "race_results", ["created_at"])
    op.create_table(
        "user_ratings",
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("mu", sa.Double, nullable=False),
        sa.Column("sigma", sa.Double, nullable=False),
        sa.Column("races", sa.Integer, nullable=False, server_default="0"),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        mysql_charset="utf8mb4",
    )
    op.create_table(
        "rated_races",
        sa.Column("race_id", sa.String(32), primary_key=True),
        sa.Column("rated_at", sa.BigInteger, nullable=False),
        mysql_charset="utf8mb4",
    )
    op.create_table(
        "tournaments",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("title", sa.String(120), nullable=False),
        sa.Column("opens_at", sa.BigInteger, nullable=False),
        sa.Column("starts_at", sa.BigInteger, nullable=False),
        sa.Column("ends_at", sa.BigInteger, nullable=False),
        sa.Column("max_participants", sa.Integer, nullable=False),
        sa.Column("scoring", sa.String(16), nullable=False),
        sa.Column("points_by_place", sa.String(255), nullable=False),
        sa.Column("allow_guests", sa.SmallInteger, nullable=False, server_default="0"),
        sa.Column("min_rating", sa.Double, nullable=True),
        sa.Column("max_rating", sa.Double, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        mysql_charset="utf8mb4",
    )
    op.create_index("ix_tournaments_status", "tournaments", ["status"])
    op.create_table(
        "tournament_participants",
        sa.Column("tournament_id", sa.String(32), primary_key=True),
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="joined"),
        sa.Column("joined_at", sa.BigInteger, nullable=False),
        mysql_charset="utf8mb4",
    )
    op.create_index(
        "ix_tournament_participants_tournament_id", "tournament_participants", ["tournament_id"]
    )
    op.create_index("ix_tournament_participants_user_id", "tournament_participants", ["user_id"])
    op.create_index("ix_tournament_participants_status", "tournament_participants", ["status"])


def downgrade() -> None:
    op.drop_table("tournament_participants")
    op.drop_table("tournaments")
    op.drop_table("rated_races")
    op.drop_table("user_ratings")
    op.drop_table("race_results")
