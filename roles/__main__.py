"""``python -m roles``: the ``typogram`` command without the installed script."""

from roles.cli import main

raise SystemExit(main())
