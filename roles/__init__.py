"""The process roles: the composition root, where each process is put together.

The ``typogram`` command (``python -m roles``) loads the settings, opens the
platform (``typogram.platform``: one adapter per port) and builds what one
role needs from it: the REST app, the gateway, the worker groups, or all of
them in one process (``serve``); or it runs one operator command and exits.

This is the only package that imports the servers (``gateway``, ``rest``,
``workers``) together, and nothing imports it: it sits at the top of the
import contracts in ``pyproject.toml``.

Reading order: ``cli.py`` (the commands and exit codes), ``serve.py`` (the
long-running roles), ``jobs.py`` (one-shot maintenance: catalog, expiry,
retention), then the operator commands ``admin.py``, ``dlq.py`` and
``backup.py``.
"""
