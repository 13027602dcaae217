"""The gateway's read model: debate views and their events, in SQLite or PostgreSQL.

Written only by the projector (plus the provisional row a POST creates, so a client can
GET its debate at once). Applying an event is idempotent and ordered: an event at or
below the stored ``last_seq`` is a duplicate; one beyond ``last_seq + 1`` is a gap and
is refused until the missing one arrives. Blocking DB-API calls run in worker threads.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from aragora.contracts import codec
from aragora.contracts.messages import DebateCompleted, DebateEvent, tag_of
from aragora.gateway import leaderboard, projection
from aragora.gateway.projection import View
from aragora.runtime.settings import Settings

T = TypeVar("T")

_DDL = [
    """CREATE TABLE IF NOT EXISTS gw_debates (
        id TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        topic TEXT NOT NULL,
        created_at TEXT NOT NULL,
        completed_at TEXT,
        last_seq INTEGER NOT NULL DEFAULT 0,
        view TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS gw_debates_status ON gw_debates (status, created_at)",
    """CREATE TABLE IF NOT EXISTS gw_debate_events (
        debate_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        type TEXT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (debate_id, seq))""",
]


class Applied(Enum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    GAP = "gap"


class ReadModel:
    def __init__(self, settings: Settings) -> None:
        self.postgres = settings.uses_postgres
        self._settings = settings
        self._executor = ThreadPoolExecutor(
            max_workers=settings.db_pool_size if self.postgres else 1,
            thread_name_prefix="readmodel",
        )
        self._pool: Any = None
        self._sqlite: sqlite3.Connection | None = None

    # --- plumbing ----------------------------------------------------------------------

    def _open(self) -> None:
        s = self._settings
        if self.postgres:
            import psycopg
            from psycopg_pool import ConnectionPool

            # Fail fast when the database is unreachable: the API answers 503 in seconds
            # instead of holding requests for the pool's default 30 s.
            kwargs: dict[str, Any] = {"connect_timeout": 3}
            if s.database_schema:
                with psycopg.connect(s.database_url, autocommit=True) as conn:
                    conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{s.database_schema}"')
                kwargs["options"] = f"-c search_path={s.database_schema}"
            self._pool = ConnectionPool(
                s.database_url,
                min_size=1,
                max_size=s.db_pool_size + s.db_max_overflow,
                kwargs=kwargs,
                open=True,
                timeout=3,
            )
        else:
            path = (
                Path(s.database_url.removeprefix("sqlite:///")).with_name("gateway.db")
                if s.database_url
                else s.data_dir / "gateway.db"
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            self._sqlite = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._sqlite.execute("PRAGMA journal_mode=WAL")
            self._sqlite.execute("PRAGMA synchronous=NORMAL")
        self._tx(lambda cur: [cur.execute(stmt) for stmt in (*_DDL, *leaderboard.DDL)])

    def _tx(self, work: Callable[[Any], T]) -> T:
        """Run ``work(cursor)`` in one transaction (worker thread only)."""
        if self._pool is not None:
            with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                return work(_PgCursor(cur))
        assert self._sqlite is not None
        cur = self._sqlite.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            result = work(cur)
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")
        return result

    async def run(self, work: Callable[[Any], T]) -> T:
        """Run ``work(cursor)`` in one transaction on the read model's worker thread."""
        return await self._run(work)

    async def _run(self, work: Callable[[Any], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._tx, work)

    async def open(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._open)

    async def close(self) -> None:
        def _close() -> None:
            if self._pool is not None:
                self._pool.close()
            if self._sqlite is not None:
                self._sqlite.close()

        await asyncio.get_running_loop().run_in_executor(self._executor, _close)
        self._executor.shutdown(wait=True)

    # --- writes ------------------------------------------------------------------------

    async def accept(self, view: View) -> None:
        """The provisional row for a debate just requested (replaced by the projection)."""

        def work(cur: Any) -> None:
            cur.execute(
                "INSERT INTO gw_debates (id, status, topic, created_at, last_seq, view) "
                "VALUES (?, ?, ?, ?, 0, ?) ON CONFLICT (id) DO NOTHING",
                (view["id"], view["status"], view["topic"], view["created_at"], json.dumps(view)),
            )

        await self._run(work)

    async def apply(self, event: DebateEvent) -> tuple[Applied, View | None]:
        body = codec.encode(event).decode()

        def work(cur: Any) -> tuple[Applied, View | None]:
            lock = " FOR UPDATE" if self.postgres else ""
            cur.execute(
                f"SELECT last_seq, view FROM gw_debates WHERE id = ?{lock}", (event.debate_id,)
            )
            row = cur.fetchone()
            last_seq, view = (row[0], json.loads(row[1])) if row else (0, None)
            if event.seq <= last_seq:
                return Applied.DUPLICATE, None
            if event.seq != last_seq + 1:
                return Applied.GAP, None
            new = projection.apply(view, event)
            cur.execute(
                "INSERT INTO gw_debate_events (debate_id, seq, type, body) VALUES (?, ?, ?, ?)",
                (event.debate_id, event.seq, tag_of(type(event)), body),
            )
            cur.execute(
                "INSERT INTO gw_debates "
                "(id, status, topic, created_at, completed_at, last_seq, view) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                "status = excluded.status, topic = excluded.topic, "
                "created_at = excluded.created_at, completed_at = excluded.completed_at, "
                "last_seq = excluded.last_seq, view = excluded.view",
                (
                    new["id"],
                    new["status"],
                    new["topic"],
                    new["created_at"],
                    new["completed_at"],
                    new["last_seq"],
                    json.dumps(new),
                ),
            )
            if isinstance(event, DebateCompleted):
                leaderboard.project(cur, event)
            return Applied.APPLIED, new

        return await self._run(work)

    # --- reads -------------------------------------------------------------------------

    async def get(self, debate_id: str) -> View | None:
        def work(cur: Any) -> View | None:
            cur.execute("SELECT view FROM gw_debates WHERE id = ?", (debate_id,))
            row = cur.fetchone()
            if not row:
                return None
            view: View = json.loads(row[0])
            if view["status"] == "queued":  # live position: queued debates created earlier
                cur.execute(
                    "SELECT count(*) FROM gw_debates WHERE status = ? AND created_at <= ?",
                    ("queued", view["created_at"]),
                )
                view["queue_position"] = int(cur.fetchone()[0])
            return view

        return await self._run(work)

    async def list_views(self, status: str | None, limit: int) -> list[View]:
        def work(cur: Any) -> list[View]:
            sql = "SELECT view FROM gw_debates"
            params: tuple[Any, ...] = ()
            if status:
                sql += " WHERE status = ?"
                params = (status,)
            cur.execute(sql + " ORDER BY created_at DESC LIMIT ?", (*params, limit))
            return [json.loads(r[0]) for r in cur.fetchall()]

        return await self._run(work)

    async def events(self, debate_id: str, after: int, limit: int) -> list[str]:
        """Raw JSON bodies of the debate's events with seq > ``after``, in order."""

        def work(cur: Any) -> list[str]:
            cur.execute(
                "SELECT body FROM gw_debate_events WHERE debate_id = ? AND seq > ? "
                "ORDER BY seq LIMIT ?",
                (debate_id, after, limit),
            )
            return [r[0] for r in cur.fetchall()]

        return await self._run(work)

    async def count_running(self) -> int:
        def work(cur: Any) -> int:
            cur.execute(
                "SELECT count(*) FROM gw_debates WHERE status IN (?, ?)",
                (projection.RUNNING, "queued"),
            )
            return int(cur.fetchone()[0])

        return await self._run(work)

    async def ping(self) -> float:
        """Round-trip latency of a trivial query, in ms (raises if the database is down)."""
        started = time.perf_counter()
        await self._run(lambda cur: cur.execute("SELECT 1"))
        return (time.perf_counter() - started) * 1000


class _PgCursor:
    """psycopg cursor speaking the qmark placeholders the SQL above is written in."""

    def __init__(self, cur: Any) -> None:
        self._cur = cur

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        self._cur.execute(sql.replace("?", "%s"), params)

    def fetchone(self) -> Any:
        return self._cur.fetchone()

    def fetchall(self) -> Any:
        return self._cur.fetchall()
