"""Integrity: results too short for a board.

``test_results.ranked`` (0 when a result had too little typing to reach a
board; ``ALTER TABLE ... ADD COLUMN`` keeps the monthly partitions on MySQL).

Revision ID: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "test_results",
        sa.Column("ranked", sa.SmallInteger, nullable=False, server_default="1"),
    )


def downgrade() -> None:
    op.drop_column("test_results", "ranked")
