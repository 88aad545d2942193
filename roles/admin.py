"""``typogram admin``: roles and the first admin from the command line, with no SQL.

* ``typogram admin create-admin USERNAME --email E [--password-stdin]`` makes
  a new account with the ``admin`` role (the password is asked for twice on
  a terminal, or read from the first line of standard input).
* ``typogram admin grant USER ROLE`` gives an existing user (id or username)
  a role; ``typogram admin revoke USER`` makes them a plain user again.

Every change is audited with ``cli`` as the actor and follows the rules of
``typogram.staff`` (the last admin is never demoted). Exit codes: 0 done,
1 refused or a backend unreachable, 2 bad input.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TYPE_CHECKING

import msgspec
import uvloop

from typogram.errors import AppError, BackendUnavailable
from typogram.passwords import require_strong_password
from typogram.platform import open_platform
from typogram.roles import Role
from typogram.staff import CLI, desk_of

if TYPE_CHECKING:
    from typogram.platform import Platform
    from typogram.settings import Settings


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    admin = commands.add_parser("admin", help="roles and the first admin (see docs/operations.md)")
    actions = admin.add_subparsers(dest="admin_command", required=True)
    grant = actions.add_parser("grant", help="give a user a role")
    grant.add_argument("user", help="a username or user id")
    grant.add_argument("role", choices=[role.value for role in Role])
    revoke = actions.add_parser("revoke", help="make a user a plain user again")
    revoke.add_argument("user", help="a username or user id")
    create = actions.add_parser("create-admin", help="a new account with the admin role")
    create.add_argument("username")
    create.add_argument("--email", required=True)
    create.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )


def _password(from_stdin: bool) -> str | None:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        print("typogram: no terminal to ask for a password: use --password-stdin", file=sys.stderr)
        return None
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Again: "):
        print("typogram: the passwords differ", file=sys.stderr)
        return None
    return first


async def _create_admin(platform: Platform, username: str, email: str, password: str) -> str:
    from rest.auth import RegisterBody  # the same rules as signing up

    body = msgspec.convert(
        {"username": username, "email": email, "password": password}, RegisterBody
    )
    await require_strong_password(
        body.password,
        user_inputs=(body.username, body.email.partition("@")[0]),
        min_score=platform.settings.password_min_score,
    )
    password_hash = await platform.passwords.hash(body.password)
    user = await platform.accounts.create_user(body.username, body.email, password_hash)
    await platform.accounts.audit(
        "register", "success", user_id=user.id, detail={"via": "cli"}, actor_id=CLI.id
    )
    await desk_of(platform).set_role(CLI, user.id, Role.ADMIN)
    return user.id


def run(settings: Settings, args: argparse.Namespace) -> int:
    password = None
    if args.admin_command == "create-admin":
        password = _password(args.password_stdin)
        if password is None:
            return 2

    async def main() -> str:
        async with open_platform(settings, migrate=True) as platform:
            desk = desk_of(platform)
            if args.admin_command == "create-admin":
                assert password is not None
                user_id = await _create_admin(platform, args.username, args.email, password)
                return f"created admin {args.username} ({user_id})"
            role = Role(args.role) if args.admin_command == "grant" else Role.USER
            user = await desk.set_role(CLI, args.user, role)
            return f"{user['username']} ({user['id']}) is now {user['role']}"

    try:
        print(uvloop.run(main()))
    except msgspec.ValidationError as exc:
        print(f"typogram: {exc}", file=sys.stderr)
        return 2
    except AppError as exc:
        fields = f" ({', '.join(f'{k}: {v}' for k, v in exc.fields.items())})" if exc.fields else ""
        print(f"typogram: {exc.message}{fields}", file=sys.stderr)
        return 2 if exc.code == "bad_request" else 1
    except (BackendUnavailable, OSError) as exc:
        print(f"typogram: {exc}", file=sys.stderr)
        return 1
    return 0
