"""Chat on a gateway node.

Owns ``rooms`` (``ChatRooms``: runs the pure ``rooms.chat`` core and carries out
its effects), ``fanout`` (which local sessions are in which room and which
users this node watches; the room and user channels on pub/sub), ``roomstate``
(a room's members, moderation and history shared by every node in the cache),
``presence`` (a user's status with a TTL, for roommates only) and ``control``
(the typed control messages between nodes on a user's channel). The rules
themselves live in ``rooms.chat``.
"""
