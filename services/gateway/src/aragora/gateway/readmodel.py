"""The gateway's read model: debate views and their events, in SQLite or PostgreSQL.

Written only by the projector (plus the provisional row a POST creates, so a client can
GET its debate at once). Applying an event is idempotent and ordered: an event at or
below the stored ``last_seq`` is a duplicate; one beyond ``last_seq + 1`` is a gap and
is refused until the missing one arrives. Blocking DB-API calls run in worker threads.

Each projection stores its position (the JetStream stream sequence of the last message it
handled) in ``gw_projection_positions``, in the same transaction as the event's writes, so
``aragora projections rebuild`` (:mod:`aragora.gateway.rebuild`) can tell how far it is and
replace it, from the stream, without losing what the live projector wrote meanwhile.
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
from aragora.contracts.messages import (
    DebateCompleted,
    DebateEvent,
    DebateFailed,
    TurnCompleted,
    TurnFailed,
    tag_of,
)
from aragora.gateway import accounts, errors, leaderboard, projection, usage
from aragora.gateway.projection import View
from aragora.runtime.pgpool import open_pool, sqlite_transaction
from aragora.runtime.settings import Settings

T = TypeVar("T")

DEBATES = "debates"
"""The debate views, their events and turn usage (``gw_debates``, ``gw_debate_events``,
``gw_usage``)."""
RATINGS = "ratings"
"""The leaderboard (``gw_ratings``, ``gw_rating_history``), fed by ``debate.completed``."""
PROJECTIONS = (DEBATES, RATINGS)

_DDL = [
    """CREATE TABLE IF NOT EXISTS gw_debates (
        id TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        topic TEXT NOT NULL,
        created_at TEXT NOT NULL,
        completed_at TEXT,
        last_seq INTEGER NOT NULL DEFAULT 0,
        view TEXT NOT NULL,
        owner TEXT NOT NULL DEFAULT '',
        public INTEGER NOT NULL DEFAULT 0)""",
    "CREATE INDEX IF NOT EXISTS gw_debates_status ON gw_debates (status, created_at)",
    """CREATE TABLE IF NOT EXISTS gw_debate_events (
        debate_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        type TEXT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (debate_id, seq))""",
    """CREATE TABLE IF NOT EXISTS gw_projection_positions (
        name TEXT PRIMARY KEY,
        stream_seq INTEGER NOT NULL)""",
    *(
        "INSERT INTO gw_projection_positions (name, stream_seq) "
        f"VALUES ('{name}', 0) ON CONFLICT (name) DO NOTHING"
        for name in PROJECTIONS
    ),
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
        self.priced = usage.pricer_for(settings)  # for the usage rows' ``priced`` flag

    # --- plumbing ----------------------------------------------------------------------

    def _open(self) -> None:
        s = self._settings
        if self.postgres:
            self._pool = open_pool(
                s, max_size=s.db_pool_size + s.db_max_overflow, timeout=3, autocommit=True
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
        ddl = (*_DDL, *leaderboard.DDL, *usage.DDL, *accounts.DDL, *errors.DDL)
        self._tx(lambda cur: [cur.execute(stmt) for stmt in ddl])
        self._tx(lambda cur: add_ownership(cur, self.postgres))

    def _tx(self, work: Callable[[Any], T]) -> T:
        """Run ``work(cursor)`` in one transaction (worker thread only)."""
        if self._pool is not None:
            with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                return work(_PgCursor(cur))
        assert self._sqlite is not None
        return sqlite_transaction(self._sqlite, work)

    def _read_now(self, work: Callable[[Any], T]) -> T:
        """Run read-only ``work(cursor)`` without a transaction (worker thread only):
        on PostgreSQL one round trip per query instead of BEGIN, query, COMMIT."""
        if self._pool is not None:
            with self._pool.connection() as conn, conn.cursor() as cur:
                return work(_PgCursor(cur))
        assert self._sqlite is not None
        return work(self._sqlite.cursor())

    async def _read(self, work: Callable[[Any], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._read_now, work)

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
                "INSERT INTO gw_debates "
                "(id, status, topic, created_at, last_seq, view, owner, public) "
                "VALUES (?, ?, ?, ?, 0, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                (
                    view["id"],
                    view["status"],
                    view["topic"],
                    view["created_at"],
                    json.dumps(view),
                    view.get("requested_by") or "",
                    int(bool(view.get("public"))),
                ),
            )

        await self._run(work)

    async def apply(
        self, event: DebateEvent, stream_seq: int | None = None
    ) -> tuple[Applied, View | None]:
        """Fold ``event`` in; ``stream_seq`` (its JetStream sequence) moves the position."""
        body = codec.encode(event).decode()

        def work(cur: Any) -> tuple[Applied, View | None]:
            lock = " FOR UPDATE" if self.postgres else ""
            if self.postgres:  # wait for a rebuild holding them (SQLite: BEGIN IMMEDIATE)
                lock_positions(cur, postgres=True)
            cur.execute(
                f"SELECT last_seq, view FROM gw_debates WHERE id = ?{lock}", (event.debate_id,)
            )
            row = cur.fetchone()
            last_seq, view = (row[0], json.loads(row[1])) if row else (0, None)
            if event.seq <= last_seq:
                advance_positions(cur, stream_seq)
                return Applied.DUPLICATE, view  # the stored view (owner, public) as it is
            if event.seq != last_seq + 1:
                return Applied.GAP, None
            new = projection.apply(view, event)
            store_event(cur, event, body)
            store_view(cur, new)
            if isinstance(event, DebateCompleted):
                leaderboard.project(cur, event)
            elif isinstance(event, TurnCompleted):
                usage.project(cur, event, self.priced)
            elif isinstance(event, TurnFailed | DebateFailed):
                errors.record(cur, errors.from_event(event))
            advance_positions(cur, stream_seq)
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

        return await self._read(work)

    async def forget_provisional(self, debate_id: str) -> None:
        """Drop the provisional row of a debate whose start command never reached the bus."""
        await self._run(
            lambda cur: cur.execute(
                "DELETE FROM gw_debates WHERE id = ? AND last_seq = 0", (debate_id,)
            )
        )

    async def list_views(
        self, status: str | None, limit: int, visible_to: str | None = None
    ) -> list[View]:
        """Newest first; ``visible_to`` (an owner key): only its debates and public ones."""

        def work(cur: Any) -> list[View]:
            clauses: list[str] = []
            params: list[Any] = []
            if status:
                clauses.append("status = ?")
                params.append(status)
            if visible_to is not None:
                clauses.append("(owner = ? OR public = 1)")
                params.append(visible_to)
            where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
            cur.execute(
                f"SELECT view FROM gw_debates{where} ORDER BY created_at DESC LIMIT ?",
                (*params, limit),
            )
            return [json.loads(r[0]) for r in cur.fetchall()]

        return await self._read(work)

    async def events(self, debate_id: str, after: int, limit: int) -> list[str]:
        """Raw JSON bodies of the debate's events with seq > ``after``, in order."""

        def work(cur: Any) -> list[str]:
            cur.execute(
                "SELECT body FROM gw_debate_events WHERE debate_id = ? AND seq > ? "
                "ORDER BY seq LIMIT ?",
                (debate_id, after, limit),
            )
            return [r[0] for r in cur.fetchall()]

        return await self._read(work)

    async def positions(self) -> dict[str, int]:
        """Each projection's position: the stream sequence of the last message handled."""

        def work(cur: Any) -> dict[str, int]:
            cur.execute("SELECT name, stream_seq FROM gw_projection_positions ORDER BY name")
            return {str(r[0]): int(r[1]) for r in cur.fetchall()}

        return await self._read(work)

    async def count_running(self) -> int:
        def work(cur: Any) -> int:
            cur.execute(
                "SELECT count(*) FROM gw_debates WHERE status IN (?, ?)",
                (projection.RUNNING, "queued"),
            )
            return int(cur.fetchone()[0])

        return await self._read(work)

    async def ping(self) -> float:
        """Round-trip latency of a trivial query, in ms (raises if the database is down)."""
        started = time.perf_counter()
        await self._read(lambda cur: cur.execute("SELECT 1"))
        return (time.perf_counter() - started) * 1000


def lock_positions(cur: Any, postgres: bool) -> dict[str, int]:
    """Read (and on PostgreSQL lock, in name order) every projection's position row."""
    lock = " FOR UPDATE" if postgres else ""
    cur.execute(f"SELECT name, stream_seq FROM gw_projection_positions ORDER BY name{lock}")
    return {str(r[0]): int(r[1]) for r in cur.fetchall()}


def advance_positions(
    cur: Any, stream_seq: int | None, names: tuple[str, ...] = PROJECTIONS
) -> None:
    """Move the positions forward to ``stream_seq`` (never back: a redelivered gap is older)."""
    if stream_seq is None:
        return
    marks = ", ".join("?" for _ in names)
    cur.execute(
        "UPDATE gw_projection_positions SET stream_seq = ? "
        f"WHERE stream_seq < ? AND name IN ({marks})",
        (stream_seq, stream_seq, *names),
    )


def set_positions(cur: Any, stream_seq: int, names: tuple[str, ...]) -> None:
    """Set the positions to ``stream_seq`` (a rebuild; same transaction as its writes)."""
    marks = ", ".join("?" for _ in names)
    cur.execute(
        f"UPDATE gw_projection_positions SET stream_seq = ? WHERE name IN ({marks})",
        (stream_seq, *names),
    )


def store_event(cur: Any, event: DebateEvent, body: str) -> None:
    cur.execute(
        "INSERT INTO gw_debate_events (debate_id, seq, type, body) VALUES (?, ?, ?, ?)",
        (event.debate_id, event.seq, tag_of(type(event)), body),
    )


def store_view(cur: Any, view: View) -> None:
    cur.execute(
        "INSERT INTO gw_debates "
        "(id, status, topic, created_at, completed_at, last_seq, view, owner, public) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
        "status = excluded.status, topic = excluded.topic, "
        "created_at = excluded.created_at, completed_at = excluded.completed_at, "
        "last_seq = excluded.last_seq, view = excluded.view, "
        "owner = excluded.owner, public = excluded.public",
        (
            view["id"],
            view["status"],
            view["topic"],
            view["created_at"],
            view["completed_at"],
            view["last_seq"],
            json.dumps(view),
            view.get("requested_by") or "",
            int(bool(view.get("public"))),
        ),
    )


def add_ownership(cur: Any, postgres: bool) -> None:
    """Add ``owner``/``public`` to a ``gw_debates`` made before debates had owners, filled
    from the stored views (an upgrade in place; a no-op on a current table)."""
    if postgres:
        cur.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'gw_debates' AND table_schema = current_schema()"
        )
    else:
        cur.execute("SELECT name FROM pragma_table_info('gw_debates')")
    columns = {r[0] for r in cur.fetchall()}
    if "owner" not in columns:
        cur.execute("ALTER TABLE gw_debates ADD COLUMN owner TEXT NOT NULL DEFAULT ''")
        cur.execute("ALTER TABLE gw_debates ADD COLUMN public INTEGER NOT NULL DEFAULT 0")
        cur.execute("SELECT id, view FROM gw_debates")
        for debate_id, body in cur.fetchall():
            owner = json.loads(body).get("requested_by") or ""
            cur.execute("UPDATE gw_debates SET owner = ? WHERE id = ?", (owner, debate_id))
    cur.execute("CREATE INDEX IF NOT EXISTS gw_debates_owner ON gw_debates (owner, created_at)")


class _PgCursor:
    """psycopg cursor speaking the qmark placeholders the SQL above is written in."""

    def __init__(self, cur: Any) -> None:
        self._cur = cur

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        self._cur.execute(sql.replace("?", "%s"), params)

    def executemany(self, sql: str, params: list[tuple[Any, ...]]) -> None:
        self._cur.executemany(sql.replace("?", "%s"), params)

    def fetchone(self) -> Any:
        return self._cur.fetchone()

    def fetchall(self) -> Any:
        return self._cur.fetchall()
