#!/usr/bin/env bash
# SQLite backup of the embedded default (local mode), safe while Aragora runs: each
# database is copied with SQLite's online backup API (a consistent snapshot; WAL
# included), checked with PRAGMA integrity_check, into
# $BACKUP_DIR/aragora_YYYYmmdd_HHMMSS/, with the other files at the top of the data
# directory (the receipt signing key, local credentials; not nats/, which the bus
# rebuilds). Backups older than $RETENTION_DAYS days are deleted.
#
# The read models (gateway.db, ...) are copied before the event store (events.db), so a
# backup's store is never behind its read models: after a restore the projections catch
# up from the NATS stream instead of showing events the store no longer has.
#
# Usage: scripts/backup-sqlite.sh [DATA_DIR]
#   DATA_DIR   default $ARAGORA_DATA_DIR, else /var/lib/aragora
#   BACKUP_DIR default /backups/sqlite        RETENTION_DAYS default 30
# Prints the path of the new backup directory.
set -euo pipefail

data_dir=${1:-${ARAGORA_DATA_DIR:-/var/lib/aragora}}
backup_dir=${BACKUP_DIR:-/backups/sqlite}
retention_days=${RETENTION_DAYS:-30}
[[ -d "$data_dir" ]] || { echo "no data directory $data_dir" >&2; exit 2; }

mkdir -p "$backup_dir"
target="$backup_dir/aragora_$(date +%Y%m%d_%H%M%S)"
partial="$target.partial"
trap 'rm -rf "$partial"' EXIT
mkdir -m 0700 "$partial"

python3 - "$data_dir" "$partial" <<'PY'
import shutil, sqlite3, sys
from pathlib import Path

data, out = Path(sys.argv[1]), Path(sys.argv[2])
databases = sorted(data.glob("*.db"), key=lambda p: (p.name == "events.db", p.name))
if not databases:
    sys.exit(f"no *.db in {data}")
for path in databases:
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    copy = sqlite3.connect(out / path.name)
    with copy:
        source.backup(copy)
    source.close()
    (ok,) = copy.execute("PRAGMA integrity_check").fetchone()
    copy.close()
    if ok != "ok":
        sys.exit(f"{path.name}: integrity check failed: {ok}")
for path in sorted(data.iterdir()):  # keys and tokens, not the databases' WAL files
    if path.is_file() and not path.name.endswith((".db", ".db-wal", ".db-shm")):
        shutil.copy2(path, out / path.name)
PY
mv "$partial" "$target"

find "$backup_dir" -maxdepth 1 -name 'aragora_*' -type d -mtime "+$retention_days" \
    -exec rm -rf {} +
echo "$target"
