"""Payments and coupons: payments (partitioned monthly on MySQL), stored webhook events,
checkout idempotency keys, coupons, per-user coupon counts and redemptions.

Revision ID: 0011
"""

import time

import sqlalchemy as sa
from alembic import op

from typogram.db.partitions import initial, partition_clause

revision = "0011"
down_revision = "0005"
branch_labels = None
depends_on = None

INITIAL_MONTHS_AHEAD = 3


def _money(name: str, nullable: bool = False) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger, nullable=nullable)


def _at(name: str, nullable: bool = True) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger, nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "payments",
        sa.Column("id", sa.String(32), nullable=False),
        # Part of the primary key: MySQL needs the partition column in every unique key.
        _at("created_at", nullable=False),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("order_id", sa.String(32), nullable=False),
        sa.Column("plan_id", sa.String(32), nullable=False),
        _money("list_amount"),
        sa.Column("discount", sa.BigInteger, nullable=False, server_default="0"),
        _money("amount"),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("coupon_id", sa.String(32), nullable=True),
        sa.Column("coupon_code", sa.String(32), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("provider_payment_id", sa.String(255), nullable=True),
        sa.Column("provider_intent_id", sa.String(255), nullable=True),
        sa.Column("redirect_url", sa.String(1000), nullable=False, server_default=""),
        sa.Column("failure_reason", sa.String(255), nullable=False, server_default=""),
        _at("credited_at"),
        _at("refund_requested_at"),
        _at("refund_settled_at"),
        sa.Column("announced", sa.String(16), nullable=True),
        _at("succeeded_at"),
        _at("failed_at"),
        _at("refunded_at"),
        _at("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("id", "created_at"),
        mysql_charset="utf8mb4",
    )
    op.create_index("ix_payments_user_created", "payments", ["user_id", "created_at"])
    op.create_index("ix_payments_order_id", "payments", ["order_id"])
    op.create_index("ix_payments_status", "payments", ["status", "updated_at"])
    op.create_index("ix_payments_provider_payment", "payments", ["provider", "provider_payment_id"])
    op.create_index("ix_payments_provider_intent", "payments", ["provider", "provider_intent_id"])
    if op.get_bind().dialect.name == "mysql":
        now_ms = int(time.time() * 1000)
        op.execute(
            "ALTER TABLE payments " + partition_clause(initial(now_ms, INITIAL_MONTHS_AHEAD))
        )

    op.create_table(
        "payment_webhook_events",
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("event_id", sa.String(255), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("payment_id", sa.String(32), nullable=False),
        _at("created", nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        _at("received_at", nullable=False),
        _at("published_at"),
        sa.PrimaryKeyConstraint("provider", "event_id"),
        mysql_charset="utf8mb4",
    )
    op.create_index("ix_payment_webhook_events_payment", "payment_webhook_events", ["payment_id"])
    op.create_index(
        "ix_payment_webhook_events_unpublished",
        "payment_webhook_events",
        ["published_at", "received_at"],
    )

    op.create_table(
        "checkout_requests",
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("idempotency_key", sa.String(64), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("payment_id", sa.String(32), nullable=False),
        _at("payment_created_at", nullable=False),
        sa.Column("response", sa.Text, nullable=True),
        _at("created_at", nullable=False),
        sa.PrimaryKeyConstraint("user_id", "idempotency_key"),
        mysql_charset="utf8mb4",
    )
    op.create_index("ix_checkout_requests_created_at", "checkout_requests", ["created_at"])

    op.create_table(
        "coupons",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("percent_off", sa.Integer, nullable=True),
        _money("amount_off", nullable=True),
        sa.Column("currency", sa.String(3), nullable=True),
        _at("valid_from"),
        _at("valid_until"),
        sa.Column("max_redemptions", sa.Integer, nullable=True),
        sa.Column("max_per_user", sa.Integer, nullable=True),
        sa.Column("plans", sa.String(400), nullable=False, server_default=""),
        sa.Column("active", sa.SmallInteger, nullable=False, server_default="1"),
        sa.Column("redeemed_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_by", sa.String(32), nullable=False, server_default=""),
        _at("created_at", nullable=False),
        _at("updated_at", nullable=False),
        mysql_charset="utf8mb4",
    )
    op.create_index("ux_coupons_code", "coupons", ["code"], unique=True)
    op.create_table(
        "coupon_user_counts",
        sa.Column("coupon_id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("count", sa.Integer, nullable=False, server_default="0"),
        _at("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("coupon_id", "user_id"),
        mysql_charset="utf8mb4",
    )
    op.create_table(
        "coupon_redemptions",
        sa.Column("payment_id", sa.String(32), primary_key=True),
        sa.Column("coupon_id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _at("created_at", nullable=False),
        _at("updated_at", nullable=False),
        mysql_charset="utf8mb4",
    )
    op.create_index("ix_coupon_redemptions_coupon", "coupon_redemptions", ["coupon_id", "status"])
    op.create_index("ix_coupon_redemptions_user", "coupon_redemptions", ["user_id"])


def downgrade() -> None:
    for table in (
        "coupon_redemptions",
        "coupon_user_counts",
        "coupons",
        "checkout_requests",
        "payment_webhook_events",
        "payments",
    ):
        op.drop_table(table)
