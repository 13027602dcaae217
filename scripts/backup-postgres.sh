#!/usr/bin/env bash
# PostgreSQL backup, as the runbook schedules it daily from cron:
#   pg_dump -Fc of the database into $BACKUP_DIR/aragora_YYYYmmdd_HHMMSS.dump, then the
#   dumps older than $RETENTION_DAYS days are deleted. pg_dump reads one consistent
#   snapshot, so the services keep running.
#
# Usage: scripts/backup-postgres.sh [DATABASE]
#   DATABASE   a name or postgresql:// URL; default $ARAGORA_DATABASE_URL, else "aragora"
#              (libpq's PGHOST, PGUSER, PGPASSWORD... apply to a bare name)
#   BACKUP_DIR default /backups/postgres      RETENTION_DAYS default 30
# Prints the path of the new dump. cron (as a user that may read the database):
#   15 3 * * *  /opt/aragora/current/scripts/backup-postgres.sh >>/var/log/aragora/backup.log 2>&1
set -euo pipefail

database=${1:-${ARAGORA_DATABASE_URL:-aragora}}
backup_dir=${BACKUP_DIR:-/backups/postgres}
retention_days=${RETENTION_DAYS:-30}

mkdir -p "$backup_dir"
target="$backup_dir/aragora_$(date +%Y%m%d_%H%M%S).dump"
partial="$target.partial"
trap 'rm -f "$partial"' EXIT

pg_dump --format=custom --dbname="$database" --file="$partial"
pg_restore --list "$partial" >/dev/null # the archive is readable end to end
mv "$partial" "$target"

find "$backup_dir" -maxdepth 1 -name 'aragora_*.dump' -type f -mtime "+$retention_days" -delete
echo "$target"
