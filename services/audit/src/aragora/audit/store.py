"""``audit_log`` in PostgreSQL (ARAGORA_DATABASE_URL) or SQLite (``<data dir>/audit.db``).

Append-only twice over: the application only ever INSERTs, and the database refuses
UPDATE, DELETE (and TRUNCATE on PostgreSQL) on the table with a trigger, so a bug or a
stolen application credential cannot rewrite history. Tampering by someone who can drop
the trigger (a superuser) is what the hash chain (:mod:`aragora.audit.chain`) reveals.

Appends are serialised (``LOCK TABLE … SHARE ROW EXCLUSIVE`` on PostgreSQL, ``BEGIN
IMMEDIATE`` on SQLite) so replicas never fork the chain, and idempotent by ``event_id``
(a redelivered event is recognised and not recorded twice). Every call blocks: the
service runs them in worker threads.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from aragora.audit import chain
from aragora.contracts.security import AuditEntry, AuditQuery, SecurityEvent
from aragora.runtime.pgpool import open_pool, sqlite_transaction
from aragora.runtime.settings import Settings

T = TypeVar("T")
TABLE = "audit_log"
_TEXT_COLUMNS = [c for c in chain.COLUMNS if c != "seq"]
_CREATE = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (seq BIGINT PRIMARY KEY, "
    + ", ".join(f"{c} TEXT NOT NULL" for c in _TEXT_COLUMNS)
    + ", UNIQUE (event_id))"
)
_INDEXES = [
    f"CREATE INDEX IF NOT EXISTS {TABLE}_occurred ON {TABLE} (occurred_at)",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_actor ON {TABLE} (actor)",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_action ON {TABLE} (action)",
]
REFUSAL = "audit_log is append-only"
_SQLITE_TRIGGERS = [
    f"CREATE TRIGGER IF NOT EXISTS {TABLE}_no_{op.lower()} BEFORE {op} ON {TABLE} "
    f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
    for op in ("UPDATE", "DELETE")
]
_PG_TRIGGERS = [
    f"""CREATE OR REPLACE FUNCTION {TABLE}_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION '{REFUSAL}' USING ERRCODE = 'insufficient_privilege'; END $$""",
    f"CREATE OR REPLACE TRIGGER {TABLE}_no_change BEFORE UPDATE OR DELETE ON {TABLE} "
    f"FOR EACH ROW EXECUTE FUNCTION {TABLE}_refuse()",
    f"CREATE OR REPLACE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE} "
    f"FOR EACH STATEMENT EXECUTE FUNCTION {TABLE}_refuse()",
]
VERIFY_BATCH = 1000


class AuditStore:
    """The table and the three things done with it: append, query, verify."""

    def __init__(self, settings: Settings) -> None:
        self.postgres = settings.uses_postgres
        self._settings = settings
        self._pool: Any = None
        self._sqlite: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # one SQLite connection, many worker threads

    def open(self) -> None:
        s = self._settings
        if self.postgres:
            self._pool = open_pool(s, max_size=4, timeout=5)
            ddl = [_CREATE, *_INDEXES, *_PG_TRIGGERS]
        else:
            path = self.sqlite_path(s)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._sqlite = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._sqlite.execute("PRAGMA journal_mode=WAL")
            self._sqlite.execute("PRAGMA synchronous=FULL")  # an acked event is on disk
            ddl = [_CREATE, *_INDEXES, *_SQLITE_TRIGGERS]
        self._tx(lambda cur: [cur.execute(stmt) for stmt in ddl])

    @staticmethod
    def sqlite_path(settings: Settings) -> Path:
        if settings.database_url.startswith("sqlite:///"):
            return Path(settings.database_url.removeprefix("sqlite:///")).with_name("audit.db")
        return settings.data_dir / "audit.db"

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
        if self._sqlite is not None:
            self._sqlite.close()

    def _tx(self, work: Callable[[Any], T]) -> T:
        if self._pool is not None:
            with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                return work(cur)
        assert self._sqlite is not None
        with self._lock:
            return sqlite_transaction(self._sqlite, work)

    def _q(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.postgres else sql

    # --- append --------------------------------------------------------------------------

    def append(self, event: SecurityEvent) -> int | None:
        """Record ``event``; its ``seq``, or None if it was recorded before (a redelivery)."""

        def work(cur: Any) -> int | None:
            if self.postgres:
                cur.execute(f"LOCK TABLE {TABLE} IN SHARE ROW EXCLUSIVE MODE")
            cur.execute(self._q(f"SELECT 1 FROM {TABLE} WHERE event_id = ?"), (event.event_id,))
            if cur.fetchone() is not None:
                return None
            cur.execute(f"SELECT seq, hash FROM {TABLE} ORDER BY seq DESC LIMIT 1")
            last = cur.fetchone()
            seq, prev = (int(last[0]) + 1, str(last[1])) if last else (1, chain.GENESIS)
            row = chain.new_row(event, seq, prev, datetime.now(UTC))
            columns = ", ".join(chain.COLUMNS)
            marks = ", ".join("?" for _ in chain.COLUMNS)
            cur.execute(
                self._q(f"INSERT INTO {TABLE} ({columns}) VALUES ({marks})"),
                tuple(row[c] for c in chain.COLUMNS),
            )
            return seq

        return self._tx(work)

    # --- query ---------------------------------------------------------------------------

    def query(self, q: AuditQuery) -> tuple[list[AuditEntry], str]:
        """A page of entries and the cursor of the next page ('' on the last one)."""
        where: list[str] = []
        args: list[Any] = []
        if q.actor:
            where.append("(actor = ? OR actor_id = ?)")
            args += [q.actor, q.actor]
        if q.action.endswith("*"):
            prefix = q.action[:-1]
            where.append("substr(action, 1, ?) = ?")
            args += [len(prefix), prefix]
        elif q.action:
            where.append("action = ?")
            args.append(q.action)
        if q.outcome:
            where.append("outcome = ?")
            args.append(q.outcome)
        if q.since is not None:
            where.append("occurred_at >= ?")
            args.append(chain._iso(q.since))
        if q.until is not None:
            where.append("occurred_at < ?")
            args.append(chain._iso(q.until))
        if q.cursor:
            if not q.cursor.isdigit():
                raise ValueError("cursor: the next_cursor of a previous page")
            where.append("seq < ?" if q.order == "desc" else "seq > ?")
            args.append(int(q.cursor))
        sql = f"SELECT {', '.join(chain.COLUMNS)} FROM {TABLE}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY seq {'DESC' if q.order == 'desc' else 'ASC'} LIMIT ?"
        args.append(q.limit + 1)

        def work(cur: Any) -> list[dict[str, Any]]:
            cur.execute(self._q(sql), tuple(args))
            return [dict(zip(chain.COLUMNS, r, strict=True)) for r in cur.fetchall()]

        rows = self._tx(work)
        more = len(rows) > q.limit
        rows = rows[: q.limit]
        return [chain.entry(r) for r in rows], (str(rows[-1]["seq"]) if more and rows else "")

    # --- verify --------------------------------------------------------------------------

    def verify(self) -> chain.Verifier:
        """Walk the whole chain in batches (each its own short transaction)."""
        verifier = chain.Verifier()
        for batch in self._batches():
            if not verifier.feed(batch):
                break
        return verifier

    def _batches(self) -> Iterator[list[dict[str, Any]]]:
        after = 0
        sql = self._q(
            f"SELECT {', '.join(chain.COLUMNS)} FROM {TABLE} WHERE seq > ? ORDER BY seq LIMIT ?"
        )
        while True:

            def work(cur: Any, after: int = after) -> list[dict[str, Any]]:
                cur.execute(sql, (after, VERIFY_BATCH))
                return [dict(zip(chain.COLUMNS, r, strict=True)) for r in cur.fetchall()]

            rows = self._tx(work)
            if not rows:
                return
            yield rows
            after = int(rows[-1]["seq"])

    def last_seq(self) -> int:
        """The newest row's ``seq`` (0: empty); one index lookup, the readiness probe."""

        def work(cur: Any) -> int:
            cur.execute(f"SELECT max(seq) FROM {TABLE}")
            return int(cur.fetchone()[0] or 0)

        return self._tx(work)

    def count(self) -> int:
        def work(cur: Any) -> int:
            cur.execute(f"SELECT count(*) FROM {TABLE}")
            return int(cur.fetchone()[0])

        return self._tx(work)
