"""Payments and coupons (issue 17), registered in ``rest.app.FEATURES``."""

from __future__ import annotations

from rest import admin_payments, payments
from rest.routing import Api

APIS: tuple[Api, ...] = (payments.api, admin_payments.api)
