"""The ``typogram`` command: ``serve`` (everything, embedded) or one role each.

Parses the command line, loads the settings and hands over: the
long-running roles to ``serve.run``, the other commands to their module.
Exit codes: 0 done, 1 a backend or socket failed, 2 bad input.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import uvloop

from roles import admin, backup, dlq, serve
from typogram import logs
from typogram.errors import BackendUnavailable
from typogram.settings import SettingsError, load


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="typogram", description=__doc__)
    parser.add_argument(
        "--config", help="TOML settings file (default: TYPOGRAM_CONFIG or built-ins)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="gateway, REST and workers in one process, embedded backends")
    commands.add_parser("rest", help="the REST API")
    commands.add_parser("gateway", help="the WebSocket gateway")
    worker = commands.add_parser("worker", help="one consumer group, or all of them")
    worker.add_argument("group", help="a group name or 'all'")
    commands.add_parser("migrate", help="create the database if missing and apply migrations")
    partitions = commands.add_parser(
        "partitions",
        help="archive months past retention, add upcoming and drop emptied partitions, "
        "archive analytics rows untouched for 90 days",
    )
    partitions.add_argument("--dry-run", action="store_true", help="print, change nothing")
    seed = commands.add_parser(
        "seed-courses", help="add the starter courses and plans that are missing"
    )
    seed.add_argument(
        "--replace", action="store_true", help="rewrite the starter courses and their lessons"
    )
    subscriptions = commands.add_parser("subscriptions", help="subscription maintenance")
    subscriptions.add_argument(
        "action", choices=["expire"], help="expire subscriptions whose period has ended"
    )
    dlq.add_commands(commands)
    backup.add_commands(commands)
    admin.add_commands(commands)
    return parser


def _default_config(command: str) -> str | None:
    """``serve`` reads configs/default.toml when it is there and nothing else is named."""
    candidate = Path("configs/default.toml")
    return str(candidate) if command == "serve" and candidate.is_file() else None


def _startup_failure(exc: BaseException) -> BaseException | None:
    """The backend or socket failure inside ``exc`` (possibly an exception group)."""
    if isinstance(exc, BackendUnavailable | OSError | SettingsError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            if (found := _startup_failure(inner)) is not None:
                return found
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load(args.config or _default_config(args.command))
    except SettingsError as exc:
        print(f"typogram: configuration error: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, settings.log_json)
    if args.command == "dlq":
        return dlq.run(settings, args)
    if args.command in ("backup", "restore"):
        return backup.run(settings, args)
    if args.command == "admin":
        return admin.run(settings, args)
    from workers.groups import GROUPS

    groups: list[str] = []
    if args.command == "serve":
        groups = list(GROUPS)
    elif args.command == "worker":
        if args.group != "all" and args.group not in GROUPS:
            print(
                f"typogram: unknown worker group {args.group!r}; known: {', '.join(GROUPS)}, all",
                file=sys.stderr,
            )
            return 2
        groups = list(GROUPS) if args.group == "all" else [args.group]
    try:
        role = "partitions-dry-run" if getattr(args, "dry_run", False) else args.command
        if args.command == "seed-courses" and args.replace:
            role = "seed-courses-replace"
        elif args.command == "subscriptions":
            role = f"subscriptions-{args.action}"
        uvloop.run(serve.run(settings, [role], groups))
    except BaseException as exc:
        failure = _startup_failure(exc)
        if failure is None:
            raise
        print(f"typogram: {failure}", file=sys.stderr)
        return 1
    return 0
