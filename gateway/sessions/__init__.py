"""Sessions: what outlives one socket.

Owns ``session`` (``Session``, its numbering watermarks, the node's
``SessionRegistry``), ``replay`` (the frames a session may need again after a
reconnect), ``store`` (session records and node leases in the cache, so any node
can resume them) and ``resume`` (taking over, on this node, a session another
node held). Knows nothing of sockets: a session is attached to a connection
through its ``link``.
"""
