"""``aragora projections rebuild [debates|ratings|all]`` and ``aragora projections status``.

Works on the gateway's read model where the settings point (``ARAGORA_DATABASE_URL`` and
``ARAGORA_DATABASE_SCHEMA``, or SQLite under ``ARAGORA_DATA_DIR``) from the
``ARAGORA_EVENTS`` stream on ``ARAGORA_NATS_URL`` (default: the embedded server's port).
A rebuild is safe while the gateway runs (see :mod:`aragora.gateway.rebuild`).
Exit code: 0 done, 1 the rebuild was refused (nothing changed), 2 unreachable or
misconfigured.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys

from aragora.runtime.settings import Settings, SettingsError, load_settings

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_UNAVAILABLE = 2
NAMES = ("debates", "ratings", "all")  # aragora.gateway.rebuild.NAMES


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``projections`` sub-command and its ``rebuild`` and ``status`` actions."""
    parser = subparsers.add_parser(
        "projections",
        help="rebuild the gateway's read models from the event stream, or show their position",
        description=(
            "The gateway's projections: `debates` (debate views, their events and turn "
            "usage) and `ratings` (the leaderboard), built from the ARAGORA_EVENTS stream."
        ),
    )
    actions = parser.add_subparsers(dest="projections_command", required=True)
    rebuild = actions.add_parser(
        "rebuild",
        help="rebuild a projection from the first event (safe while the gateway runs)",
        description=(
            "Re-read the ARAGORA_EVENTS stream from its first message and replace the "
            "projection in one transaction: readers see the old one or the new one."
        ),
    )
    rebuild.add_argument(
        "name", nargs="?", default="all", choices=NAMES, help="which projection (default: all)"
    )
    rebuild.set_defaults(func=run_rebuild)
    status = actions.add_parser(
        "status", help="each projection's stream position against the stream's last event"
    )
    status.set_defaults(func=run_status)


def _settings(command: str) -> Settings | None:
    try:
        return load_settings(None)
    except SettingsError as exc:
        print(f"aragora projections {command}: configuration error: {exc}", file=sys.stderr)
        return None


def _unavailable(command: str, settings: Settings, exc: BaseException) -> int:
    database = "PostgreSQL" if settings.uses_postgres else f"SQLite under {settings.data_dir}"
    print(
        f"aragora projections {command}: cannot reach NATS at {','.join(settings.nats_servers)}"
        f" or the database ({database}): {type(exc).__name__}: {exc or 'timed out'}",
        file=sys.stderr,
    )
    return EXIT_UNAVAILABLE


def _outage_errors() -> tuple[type[BaseException], ...]:
    import nats.errors
    import psycopg
    import psycopg_pool

    return (
        OSError,
        TimeoutError,
        nats.errors.Error,
        psycopg.OperationalError,
        psycopg_pool.PoolTimeout,
        sqlite3.OperationalError,
    )


def run_rebuild(args: argparse.Namespace) -> int:
    """Run ``aragora projections rebuild`` with parsed ``args``; return the exit code."""
    from aragora.gateway import rebuild

    settings = _settings("rebuild")
    if settings is None:
        return EXIT_UNAVAILABLE
    try:
        result = asyncio.run(rebuild.rebuild(settings, rebuild.projection_names(args.name)))
    except rebuild.RebuildError as exc:
        print(f"aragora projections rebuild: refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except _outage_errors() as exc:
        return _unavailable("rebuild", settings, exc)
    print(
        f"rebuilt {', '.join(result.names)} up to stream sequence {result.position}: "
        f"{result.messages} messages read, {result.events} events applied, "
        f"{result.debates} debates, {result.ratings} rated debates"
    )
    if result.undecodable or result.unapplied:
        print(
            f"note: {result.undecodable} undecodable messages skipped, {result.unapplied} "
            "debates with events that cannot be applied (the live projector cannot either)"
        )
    return EXIT_OK


def run_status(args: argparse.Namespace) -> int:
    """Run ``aragora projections status``; return the exit code."""
    from aragora.gateway import rebuild

    settings = _settings("status")
    if settings is None:
        return EXIT_UNAVAILABLE
    try:
        status = asyncio.run(rebuild.status(settings))
    except rebuild.RebuildError as exc:
        print(f"aragora projections status: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except _outage_errors() as exc:
        return _unavailable("status", settings, exc)
    last = status.projections[0].last if status.projections else 0
    print(f"stream ARAGORA_EVENTS: last sequence {status.stream_last}, last debate event {last}")
    print(f"{'projection':<12}{'position':>10}  state")
    for p in status.projections:
        state = "up to date" if p.behind == 0 else f"{p.behind} debate events behind"
        print(f"{p.name:<12}{p.position:>10}  {state}")
    if status.consumer_pending is None:
        print("live projector (gateway-projection): not created yet")
    else:
        print(f"live projector (gateway-projection): {status.consumer_pending} messages pending")
    return EXIT_OK
