"""The WebSocket gateway: connections, hello/auth, fan-out, presence, resume, drain.

Sub-packages, by concern (read in this order; ``docs/architecture.md`` walks them):

* ``gateway.server`` -- the composition root of a node: builds every service
  once, serves ``/ws``, runs the node-wide loops, drains on stop.
* ``gateway.connection`` -- one socket: framing, the bounded outbox, the rate
  limit and the connection caps; the ``Connection`` that reads frames and hands
  them to ``gateway.dispatch``.
* ``gateway.hub`` / ``gateway.dispatch`` -- what a connection is given (the
  ``Hub``) and where a decoded client frame goes.
* ``gateway.sessions`` -- what outlives a socket: sessions, their replay
  buffers, their records in the cache and resuming them on another node.
* ``gateway.chat`` -- chat rooms on this node, local fan-out, the room state
  shared by every node, presence.
* ``gateway.races`` -- races, matchmaking and tournament watching.
* ``gateway.metrics`` -- the gateway's metric names.
"""
