"""The payments services built from a platform's backends and settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from typogram.courses.services import subscriptions_of
from typogram.payments.checkout import Checkout
from typogram.payments.coupons import Coupons
from typogram.payments.intake import Intake
from typogram.payments.ledger import Ledger
from typogram.payments.records import PaymentRecords

if TYPE_CHECKING:
    from typogram.platform import Platform


def coupons_of(platform: Platform) -> Coupons:
    settings = platform.settings
    return Coupons(
        platform.db,
        platform.cache,
        cache_ttl_s=settings.coupon_cache_ttl_s,
        min_amount=settings.payments_min_amount,
    )


def records_of(platform: Platform) -> PaymentRecords:
    settings = platform.settings
    return PaymentRecords(
        platform.db,
        platform.cache,
        ttl_s=settings.payments_recent_cache_ttl_s,
        max_page=settings.payments_max_page,
    )


def checkout_of(platform: Platform) -> Checkout:
    return Checkout(platform.db, platform.payments, coupons_of(platform), records_of(platform))


def intake_of(platform: Platform) -> Intake:
    settings = platform.settings
    return Intake(
        platform.db,
        platform.events,
        secret=settings.payments_webhook_secret,
        tolerance_s=settings.payments_webhook_tolerance_s,
    )


def ledger_of(platform: Platform) -> Ledger:
    return Ledger(
        platform.db,
        platform.events,
        platform.payments,
        subscriptions_of(platform),
        coupons_of(platform),
        records_of(platform),
    )
