"""Payments and coupons: the pure rules (``machine``, ``pricing``, ``signature``), the
provider port and its adapters (``provider``, ``sandbox``, ``stripe``) and the services
(``checkout``, ``intake``, ``ledger``, ``coupons``, ``records``), built by ``services``."""
