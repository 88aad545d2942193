"""One WebSocket connection, from the handshake to the close.

Owns the socket and what is bound to it: ``connection`` (the ``Connection``:
hello, auth, reading frames, replies, keepalive, close), ``wsinternals`` (every
use of ``websockets`` internals, with its reason), ``wire`` (the direct write
path's framing), ``sendqueue`` (the bounded outbox), ``ratelimit`` (the
token bucket and strikes) and ``admission`` (connection caps per address and
per user). What a client asks for is handed on to ``gateway.dispatch``; what
outlives the socket is a ``gateway.sessions`` session.
"""
