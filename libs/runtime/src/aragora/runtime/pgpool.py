"""The services' own tables: a psycopg pool on ``ARAGORA_DATABASE_URL``, and the SQLite
transaction of the embedded default."""

from __future__ import annotations

import sqlite3
import time
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from aragora.runtime.settings import Settings

T = TypeVar("T")
IDLE_CHECK_SECONDS = 2.0
_returned: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()


def _check_if_idle(conn: Any) -> None:
    """Check (one round trip) only a connection idle for a while: one just returned was
    fine a moment ago, and checking it on every checkout doubled the cost of a read."""
    from psycopg_pool import ConnectionPool

    if time.monotonic() - _returned.get(conn, 0.0) > IDLE_CHECK_SECONDS:
        ConnectionPool.check_connection(conn)


def _mark_returned(conn: Any) -> None:
    _returned[conn] = time.monotonic()


def open_pool(
    settings: Settings, *, max_size: int, timeout: float, autocommit: bool = False
) -> Any:
    """An open ``psycopg_pool.ConnectionPool`` in ``ARAGORA_DATABASE_SCHEMA`` (created when
    missing), failing fast when the database is unreachable (3 s to connect, ``timeout`` to
    wait for a free connection) and replacing a connection that broke while idle (a
    database restart, a partition) on checkout instead of failing the next request.

    ``autocommit``: a lone read is one round trip; writes then open ``conn.transaction()``.
    """
    import psycopg
    from psycopg_pool import ConnectionPool

    kwargs: dict[str, Any] = {"connect_timeout": 3, "autocommit": autocommit}
    if settings.database_schema:
        with psycopg.connect(settings.database_url, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{settings.database_schema}"')
        kwargs["options"] = f"-c search_path={settings.database_schema}"
    return ConnectionPool(
        settings.database_url,
        min_size=1,
        max_size=max_size,
        kwargs=kwargs,
        open=True,
        timeout=timeout,
        check=_check_if_idle,
        reset=_mark_returned,
    )


def sqlite_transaction(conn: sqlite3.Connection, work: Callable[[Any], T]) -> T:
    """``work(cursor)`` in one ``BEGIN IMMEDIATE`` transaction (the writer lock up front, so
    two writers queue instead of failing on upgrade); rolled back if it raises."""
    cur = conn.cursor()
    cur.execute("BEGIN IMMEDIATE")
    try:
        result = work(cur)
    except BaseException:
        cur.execute("ROLLBACK")
        raise
    cur.execute("COMMIT")
    return result
