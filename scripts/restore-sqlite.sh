#!/usr/bin/env bash
# Restore a backup made by backup-sqlite.sh into the data directory. Stop Aragora first
# (systemctl stop aragora, or Ctrl-C `aragora serve`); start it afterwards: the
# projections catch up from NATS by themselves.
#
# Usage: scripts/restore-sqlite.sh --yes BACKUP_DIR [DATA_DIR]
#   DATA_DIR default $ARAGORA_DATA_DIR, else /var/lib/aragora
set -euo pipefail

if [[ "${1:-}" != "--yes" ]]; then
    echo "usage: $0 --yes BACKUP_DIR [DATA_DIR]   (replaces the databases)" >&2
    exit 2
fi
backup=${2:?usage: $0 --yes BACKUP_DIR [DATA_DIR]}
data_dir=${3:-${ARAGORA_DATA_DIR:-/var/lib/aragora}}
[[ -d "$backup" ]] || { echo "no backup directory $backup" >&2; exit 2; }
mkdir -p "$data_dir"

python3 - "$backup" "$data_dir" <<'PY'
import os, shutil, sys
from pathlib import Path

def holders(path: Path) -> list[str]:
    """Pids that have ``path`` open (Linux /proc): a running service."""
    target, pids = str(path.resolve()), []
    for fds in Path("/proc").glob("[0-9]*/fd"):
        try:
            if any(os.readlink(fd) == target for fd in fds.iterdir()):
                pids.append(fds.parent.name)
        except OSError:
            continue
    return pids


backup, data = Path(sys.argv[1]), Path(sys.argv[2])
databases = sorted(backup.glob("*.db"))
if not databases:
    sys.exit(f"no *.db in {backup}")
for path in databases:
    live = data / path.name
    if live.exists() and (pids := holders(live)):
        sys.exit(f"{live} is open in process(es) {', '.join(pids)}: stop Aragora first")
for path in databases:
    for stale in (data / path.name, data / f"{path.name}-wal", data / f"{path.name}-shm"):
        stale.unlink(missing_ok=True)
    tmp = data / f"{path.name}.restoring"
    shutil.copy2(path, tmp)
    tmp.replace(data / path.name)
for path in sorted(backup.iterdir()):  # the signing key, local credentials
    if path.is_file() and not path.name.endswith(".db"):
        shutil.copy2(path, data / path.name)
print(f"restored {len(databases)} database(s) from {backup} into {data}")
PY
