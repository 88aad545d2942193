"""Match queues and the pure matching policy."""
