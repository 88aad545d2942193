"""Tournament storage: the one place that reads and writes a tournament's state.

``rooms.tournament`` holds the rules (a pure state machine); ``store.py``
keeps that state in the database (the record) and the cache, and is used
by REST (create, edit, join), the ``tournaments`` worker (race scores, the
sweep) and the gateway (``tournament.watch``, tournament races).

It sits between the servers and the rules: it imports ``rooms`` and the
kernel, and nothing above (the import contracts in ``pyproject.toml``).
"""
