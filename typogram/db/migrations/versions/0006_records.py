"""Records that last: race details and rating history, ratings ranked, tournaments in SQL.

* ``races``: one row per recorded race (its text, whether custom, when).
* ``race_results``: a row for every registered racer of a finished race,
  finisher or not (``finished``); the scores of a racer who did not finish
  are NULL. Indexed for a user's history, newest first.
* ``rating_history``: each rated race's rating before and after, per user.
* ``user_ratings.display`` (mu - 3 sigma, at least 0), indexed: a rank is a
  count of the rows above.
* Tournaments keep their live state in SQL too: ``seq`` (optimistic
  concurrency), ``grace_ms``, ``top_n``, ``updated_at``, ``finished_at``;
  participants their score, races, when the score was reached and their
  final rank; ``tournament_races`` the races counted. ``status`` is the
  phase (``scheduled``, ``open``, ``running``, ``finished``); the old
  ``active`` becomes ``scheduled`` and the sweeper moves it on by the clock.

Revision ID: 0006
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0009"
branch_labels = None
depends_on = None

_NULLABLE_SCORES: tuple[tuple[str, sa.types.TypeEngine[Any]], ...] = (
    ("raw_wpm", sa.Double()),
    ("accuracy", sa.Double()),
    ("consistency", sa.Double()),
    ("time_ms", sa.Integer()),
)


def upgrade() -> None:
    op.create_table(
        "races",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("text", sa.Text, nullable=True),  # NULL: recorded before texts were kept
        sa.Column("custom", sa.SmallInteger, nullable=False, server_default="0"),
        sa.Column("difficulty", sa.String(8), nullable=False),
        sa.Column("lang", sa.String(8), nullable=False),
        sa.Column("seed", sa.BigInteger, nullable=False),
        sa.Column("tournament_id", sa.String(32), nullable=True),
        sa.Column("players", sa.Integer, nullable=False),
        sa.Column("started_at", sa.BigInteger, nullable=True),
        sa.Column("ended_at", sa.BigInteger, nullable=False),
        sa.Column("recorded_at", sa.BigInteger, nullable=False),
        mysql_charset="utf8mb4",
    )
    with op.batch_alter_table("race_results") as batch:
        batch.add_column(sa.Column("finished", sa.SmallInteger, nullable=False, server_default="1"))
        for name, kind in _NULLABLE_SCORES:
            batch.alter_column(name, existing_type=kind, nullable=True)
    op.create_index("ix_race_results_user_created", "race_results", ["user_id", "created_at", "id"])
    op.create_table(
        "rating_history",
        sa.Column("user_id", sa.String(32), primary_key=True),
        sa.Column("race_id", sa.String(32), primary_key=True),
        sa.Column("mu_before", sa.Double, nullable=False),
        sa.Column("sigma_before", sa.Double, nullable=False),
        sa.Column("display_before", sa.Double, nullable=False),
        sa.Column("mu_after", sa.Double, nullable=False),
        sa.Column("sigma_after", sa.Double, nullable=False),
        sa.Column("display_after", sa.Double, nullable=False),
        sa.Column("races", sa.Integer, nullable=False),
        sa.Column("place", sa.Integer, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        mysql_charset="utf8mb4",
    )
    op.create_index("ix_rating_history_user_created", "rating_history", ["user_id", "created_at"])
    op.add_column(
        "user_ratings", sa.Column("display", sa.Double, nullable=False, server_default="0")
    )
    op.execute(
        "UPDATE user_ratings SET display = "
        "CASE WHEN mu - 3 * sigma > 0 THEN mu - 3 * sigma ELSE 0 END"
    )
    op.create_index("ix_user_ratings_display", "user_ratings", ["display"])

    with op.batch_alter_table("tournaments") as batch:
        batch.add_column(sa.Column("seq", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("grace_ms", sa.Integer, nullable=False, server_default="180000"))
        batch.add_column(sa.Column("top_n", sa.Integer, nullable=False, server_default="10"))
        batch.add_column(sa.Column("updated_at", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("finished_at", sa.BigInteger, nullable=True))
    op.execute("UPDATE tournaments SET status = 'scheduled' WHERE status = 'active'")
    op.create_index("ix_tournaments_starts_at", "tournaments", ["starts_at"])
    with op.batch_alter_table("tournament_participants") as batch:
        batch.add_column(sa.Column("guest", sa.SmallInteger, nullable=False, server_default="0"))
        batch.add_column(sa.Column("score", sa.Double, nullable=False, server_default="0"))
        batch.add_column(sa.Column("races", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("achieved_at", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("final_rank", sa.Integer, nullable=True))
    op.create_table(
        "tournament_races",
        sa.Column("tournament_id", sa.String(32), primary_key=True),
        sa.Column("race_id", sa.String(32), primary_key=True),
        sa.Column("counted_at", sa.BigInteger, nullable=False),
        mysql_charset="utf8mb4",
    )


def downgrade() -> None:
    op.drop_table("tournament_races")
    with op.batch_alter_table("tournament_participants") as batch:
        for name in ("final_rank", "achieved_at", "races", "score", "guest"):
            batch.drop_column(name)
    op.drop_index("ix_tournaments_starts_at", table_name="tournaments")
    op.execute("UPDATE tournaments SET status = 'active' WHERE status <> 'finished'")
    with op.batch_alter_table("tournaments") as batch:
        for name in ("finished_at", "updated_at", "top_n", "grace_ms", "seq"):
            batch.drop_column(name)
    op.drop_index("ix_user_ratings_display", table_name="user_ratings")
    op.drop_column("user_ratings", "display")
    op.drop_table("rating_history")
    op.drop_index("ix_race_results_user_created", table_name="race_results")
    op.execute("DELETE FROM race_results WHERE finished = 0")
    with op.batch_alter_table("race_results") as batch:
        for name, kind in _NULLABLE_SCORES:
            batch.alter_column(name, existing_type=kind, nullable=False)
        batch.drop_column("finished")
    op.drop_table("races")
