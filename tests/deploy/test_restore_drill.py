"""The restore drill of docs/deploy.md, on a real stack, for both storage backends.

`aragora serve` runs two debates; the backup script runs while the stack is up; the stack
stops; the data is destroyed (the PostgreSQL database dropped, or the SQLite files
deleted); the restore script brings the backup back; the stack starts again and every
debate reads back exactly as before (view and event record), and a new debate completes.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import PG_URL
from tests.deploy.conftest import ROOT
from tests.e2e.stack import Stack

pytestmark = pytest.mark.e2e

SCRIPTS = ROOT / "scripts"
TOPICS = ("Should we adopt a 4-day work week?", "Is remote work better for productivity?")


def script(name: str, *args: str | Path, env: dict[str, str]) -> str:
    """Run a backup/restore script; its last line of output (the backup's path)."""
    result = subprocess.run(
        ["bash", str(SCRIPTS / name), *map(str, args)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"{name}:\n{result.stdout}\n{result.stderr}"
    return result.stdout.strip().splitlines()[-1]


def record(stack: Stack, ids: list[str]) -> dict[str, dict[str, Any]]:
    return {i: {"view": stack.debate(i), "events": stack.events(i)} for i in ids}


@pytest.fixture
def drill_database() -> Iterator[str]:
    """A PostgreSQL database of the drill's own, as in production; dropped afterwards."""
    name = f"aragora_drill_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_URL, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield name
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_exists(name: str) -> bool:
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return found is not None


def drill(stack: Stack, backup: Any, destroy: Any, restore: Any) -> None:
    stack.start()
    try:
        ids = [stack.post_debate(topic=topic, rounds=1) for topic in TOPICS]
        for debate_id in ids:
            assert stack.wait_finished(debate_id)["status"] in ("consensus", "no_consensus")
        before = record(stack, ids)
        taken = backup()  # while the stack runs
    finally:
        assert stack.stop() == 0, stack.log()

    destroy()
    restore(taken)

    stack.start()
    try:
        assert record(stack, ids) == before
        listed = stack.http.get(f"{stack.url}/api/debates", params={"limit": 50}, timeout=10).json()
        assert set(ids) <= {d["id"] for d in listed["debates"]}
        # The restored stack keeps working: a new debate runs to its end.
        fresh = stack.post_debate(topic="Should the drill pass?", rounds=1)
        assert stack.wait_finished(fresh)["status"] in ("consensus", "no_consensus")
        assert "aragora_debates_total" in stack.http.get(f"{stack.url}/metrics", timeout=10).text
    finally:
        assert stack.stop() == 0, stack.log()


def test_postgres_restore_drill(drill_database: str, tmp_path: Path) -> None:
    url = PG_URL.rsplit("/", 1)[0] + f"/{drill_database}"
    env = {"ARAGORA_DATABASE_URL": url, "BACKUP_DIR": str(tmp_path / "backups")}
    stack = Stack(tmp_path, env={"ARAGORA_DATABASE_URL": url})

    def destroy() -> None:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{drill_database}" WITH (FORCE)')
        assert not database_exists(drill_database)

    drill(
        stack,
        backup=lambda: script("backup-postgres.sh", env=env),
        destroy=destroy,
        restore=lambda dump: script("restore-postgres.sh", "--yes", dump, env=env),
    )


def test_sqlite_restore_drill(tmp_path: Path) -> None:
    stack = Stack(tmp_path)
    env = {"ARAGORA_DATA_DIR": str(stack.data_dir), "BACKUP_DIR": str(tmp_path / "backups")}

    def destroy() -> None:
        doomed = [p for p in stack.data_dir.iterdir() if ".db" in p.name]
        assert {"events.db", "gateway.db"} <= {p.name for p in doomed}
        for path in doomed:
            path.unlink()

    drill(
        stack,
        backup=lambda: script("backup-sqlite.sh", env=env),
        destroy=destroy,
        restore=lambda saved: script("restore-sqlite.sh", "--yes", saved, env=env),
    )
