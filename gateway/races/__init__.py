"""Races, matchmaking and tournament watching on a gateway node.

Read ``service`` first (``Races``: the entry point the dispatcher calls, and
how the pieces fit), then ``engine`` (the races this node owns) with
``commands`` (race commands, typed in ``messages``, as ``rooms.race`` events),
``finish`` (replaying a keystroke log), ``inbox`` (messages between nodes, typed
in ``messages`` too),
``store`` (write-behind and leases), ``ticker`` (the tick loop) and ``pushes``
(where an owned race's pushes go); then ``members`` (local watchers of race
and tournament channels) and ``matcher`` (matchmaking over the kernel's match
queues, ``typogram.match_queues``). The rules themselves live in ``rooms.race``
and ``matchmaking``.
"""
