"""A psycopg connection pool on ``ARAGORA_DATABASE_URL`` for the services' own tables."""

from __future__ import annotations

from typing import Any

from aragora.runtime.settings import Settings


def open_pool(settings: Settings, *, max_size: int, timeout: float) -> Any:
    """An open ``psycopg_pool.ConnectionPool`` in ``ARAGORA_DATABASE_SCHEMA`` (created when
    missing), failing fast when the database is unreachable (3 s to connect, ``timeout`` to
    wait for a free connection) and replacing a connection that broke while idle (a
    database restart, a partition) on checkout instead of failing the next request."""
    import psycopg
    from psycopg_pool import ConnectionPool

    kwargs: dict[str, Any] = {"connect_timeout": 3}
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
        check=ConnectionPool.check_connection,
    )
