"""The WebSocket gateway: connections, hello/auth, fan-out, presence, resume, drain."""
