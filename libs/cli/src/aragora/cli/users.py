"""``aragora users create --email … --role owner``: accounts, from the operator's shell.

Writes straight to the gateway's database (ARAGORA_DATABASE_URL, or SQLite under
ARAGORA_DATA_DIR) — the way to make the first owner before anyone can log in. The
password is read from ``--password-stdin`` or asked for without echo; never from argv
(it would sit in the shell history and in ``ps``).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys

from aragora.runtime.settings import SettingsError, load_settings

ROLES = ("owner", "admin", "member", "viewer")
EXIT_OK, EXIT_REFUSED, EXIT_UNAVAILABLE = 0, 1, 2


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("users", help="manage accounts (the first owner, roles)")
    actions = parser.add_subparsers(dest="users_command", required=True)
    create = actions.add_parser("create", help="create an account")
    create.add_argument("--email", required=True)
    create.add_argument("--role", choices=ROLES, default="member")
    create.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input (else it is asked for, not echoed)",
    )
    create.set_defaults(func=run_create)
    listing = actions.add_parser("list", help="list accounts (email, role, created)")
    listing.set_defaults(func=run_list)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise ValueError("the passwords differ")
    return first


def run_create(args: argparse.Namespace) -> int:
    from aragora.gateway import accounts
    from aragora.gateway.readmodel import ReadModel

    try:
        settings = load_settings(None)
        email = accounts.normalize_email(args.email)
        password = _password(args.password_stdin)
        accounts.check_password(password)
    except (SettingsError, ValueError) as exc:
        print(f"aragora users create: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    password_hash = accounts.hash_password(password)

    async def create() -> accounts.User:
        store = ReadModel(settings)
        await store.open()
        try:
            return await store.run(
                lambda cur: accounts.create_user(cur, email, password_hash, args.role)
            )
        finally:
            await store.close()

    try:
        user = asyncio.run(create())
    except accounts.AccountError as exc:
        print(f"aragora users create: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except Exception as exc:  # the database is unreachable or misconfigured
        print(f"aragora users create: cannot open the database: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    print(f"created {user.role} {user.email} (id {user.id})")
    return EXIT_OK


def run_list(args: argparse.Namespace) -> int:
    from aragora.gateway.readmodel import ReadModel

    try:
        settings = load_settings(None)
    except SettingsError as exc:
        print(f"aragora users list: {exc}", file=sys.stderr)
        return EXIT_REFUSED

    async def rows() -> list[tuple[str, str, str]]:
        store = ReadModel(settings)
        await store.open()
        try:

            def work(cur: object) -> list[tuple[str, str, str]]:
                cur.execute(  # type: ignore[attr-defined]
                    "SELECT email, role, created_at FROM gw_users ORDER BY created_at"
                )
                return [tuple(r) for r in cur.fetchall()]  # type: ignore[attr-defined]

            return await store.run(work)
        finally:
            await store.close()

    for email, role, created in asyncio.run(rows()):
        print(f"{email}\t{role}\t{created}")
    return EXIT_OK
