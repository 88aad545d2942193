"""Adapters for the ports in ``typogram.ports``: embedded and distributed."""
