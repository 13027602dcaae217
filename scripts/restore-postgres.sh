#!/usr/bin/env bash
# Full PostgreSQL restore (runbook "Full PostgreSQL Restore"): drops the database,
# recreates it and restores a dump made by backup-postgres.sh. Stop Aragora first
# (systemctl stop aragora / kubectl scale ... --replicas=0) and start it afterwards.
#
# Usage: scripts/restore-postgres.sh --yes DUMP [DATABASE_URL]
#   DATABASE_URL  postgresql://user@host:5432/aragora; default $ARAGORA_DATABASE_URL,
#                 else postgresql:///aragora (local socket). The user must be allowed to
#                 create databases; DROP/CREATE run on the server's `postgres` database.
# Selective restore of one table instead: pg_restore -d aragora -t <table> DUMP
set -euo pipefail

if [[ "${1:-}" != "--yes" ]]; then
    echo "usage: $0 --yes DUMP [DATABASE_URL]   (drops and recreates the database)" >&2
    exit 2
fi
dump=${2:?usage: $0 --yes DUMP [DATABASE_URL]}
url=${3:-${ARAGORA_DATABASE_URL:-postgresql:///aragora}}
[[ -r "$dump" ]] || { echo "cannot read $dump" >&2; exit 2; }
pg_restore --list "$dump" >/dev/null

# The database name, and the same URL pointing at the maintenance database `postgres`.
read -r name admin_url < <(python3 - "$url" <<'PY'
import sys
from urllib.parse import urlsplit, urlunsplit
parts = urlsplit(sys.argv[1])
name = parts.path.lstrip("/") or "aragora"
print(name, urlunsplit(parts._replace(path="/postgres")))
PY
)
quoted="\"${name//\"/\"\"}\""

psql --dbname="$admin_url" --quiet --no-psqlrc -v ON_ERROR_STOP=1 \
    --set=name="$name" <<SQL
SELECT pg_terminate_backend(pid) FROM pg_stat_activity
 WHERE datname = :'name' AND pid <> pg_backend_pid();
DROP DATABASE IF EXISTS $quoted;
CREATE DATABASE $quoted;
SQL
pg_restore --exit-on-error --no-owner --dbname="$url" "$dump"
echo "restored $dump into $name"
