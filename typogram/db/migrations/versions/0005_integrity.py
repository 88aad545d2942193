"""Integrity: results too short for a board, and the review queue of flagged results.

``test_results.ranked`` (0 when a result had too little typing to reach a
board; ``ALTER TABLE ... ADD COLUMN`` keeps the monthly partitions on MySQL)
and ``flag_reviews``, keyset-paged by ``(status, created_at, id)``.

Revision ID: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "test_results",
        sa.Column("ranked", sa.SmallInteger, nullable=False, server_default="1"),
    )
    op.create_table(
        "flag_reviews",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject_id", sa.String(100), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="open"),
        sa.Column("reasons", sa.String(255), nullable=False, server_default=""),
        sa.Column("message", sa.String(500), nullable=False, server_default=""),
        sa.Column("evidence", sa.Text, nullable=False),
        sa.Column("boards", sa.Text, nullable=False),
        sa.Column("wpm", sa.Double, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("reviewed_by", sa.String(32), nullable=True),
        sa.Column("reviewed_at", sa.BigInteger, nullable=True),
        sa.Column("note", sa.String(500), nullable=False, server_default=""),
        mysql_charset="utf8mb4",
    )
    op.create_index(
        "ix_flag_reviews_status_created", "flag_reviews", ["status", "created_at", "id"]
    )
    op.create_index("ix_flag_reviews_user_id", "flag_reviews", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_flag_reviews_user_id", "flag_reviews")
    op.drop_index("ix_flag_reviews_status_created", "flag_reviews")
    op.drop_table("flag_reviews")
    op.drop_column("test_results", "ranked")
