"""Typogram's shared kernel: settings, ports and adapters, security, protocol types."""

__version__ = "0.1.0"
