"""``aragora audit export --since … [--out FILE]``: the audit log as JSON lines (evidence).

Pages through ``GET /api/admin/audit-log`` oldest first (``order=asc``, cursor by cursor)
and writes one JSON object per line, each with its ``seq``, ``prev_hash`` and ``hash`` so
the export can be checked against the chain later. ``aragora audit verify`` asks the
gateway to recompute the chain. Both need an admin credential: ARAGORA_API_TOKEN, else the
owner token ``aragora serve`` keeps in the data dir (as ``aragora ask`` finds it).

Exit codes: 0 done (verify: chain intact), 1 refused or chain broken, 2 unreachable.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import httpx

from aragora.cli.ask import resolve_url
from aragora.cli.client import auth_headers
from aragora.runtime.credentials import find_token
from aragora.runtime.settings import SettingsError, load_settings

EXIT_OK, EXIT_FAILED, EXIT_UNREACHABLE = 0, 1, 2
PAGE = 1000


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("audit", help="export or verify the security audit log")
    actions = parser.add_subparsers(dest="audit_command", required=True)
    export = actions.add_parser(
        "export",
        help="write audit entries as JSON lines (oldest first)",
        description="Write the audit log's entries as JSON lines, oldest first, for "
        "evidence preservation (the runbook's 'Preserve Evidence' step).",
    )
    export.add_argument(
        "--since",
        required=True,
        help="ISO time (2026-01-15T10:00:00Z) or a duration back from now (24h, 7d, 30m)",
    )
    export.add_argument("--until", default=None, help="ISO time: entries before it only")
    export.add_argument("--actor", default="", help="only this actor (email or user id)")
    export.add_argument("--action", default="", help="only this action (or a prefix: token.*)")
    export.add_argument("--out", default=None, help="file to write (default: standard output)")
    export.add_argument("--url", default=None, help="gateway base URL ($ARAGORA_URL)")
    export.set_defaults(func=run_export)
    verify = actions.add_parser("verify", help="recompute the audit log's hash chain")
    verify.add_argument("--url", default=None, help="gateway base URL ($ARAGORA_URL)")
    verify.set_defaults(func=run_verify)


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """An ISO time, or ``<n>m|h|d`` back from ``now``; ValueError otherwise."""
    now = now or datetime.now(UTC)
    units = {"m": "minutes", "h": "hours", "d": "days"}
    if value[-1:] in units and value[:-1].isdigit():
        return now - timedelta(**{units[value[-1]]: int(value[:-1])})
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _client(url: str | None) -> httpx.Client:
    try:
        token = find_token(load_settings())
    except SettingsError:
        token = ""
    return httpx.Client(base_url=resolve_url(url), headers=auth_headers(token), timeout=60)


def _refused(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail", "")
    except ValueError:
        detail = response.text[:300]
    return f"the gateway answered HTTP {response.status_code}: {detail}"


def export(http: httpx.Client, params: dict[str, Any], out: IO[str]) -> int:
    """Write every matching entry to ``out``; returns how many."""
    written, cursor = 0, ""
    while True:
        query = {**params, "order": "asc", "limit": PAGE, **({"cursor": cursor} if cursor else {})}
        response = http.get("/api/admin/audit-log", params=query)
        if response.status_code != 200:
            raise RuntimeError(_refused(response))
        body = response.json()
        for entry in body["entries"]:
            out.write(json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n")
            written += 1
        cursor = body.get("next_cursor") or ""
        if not cursor:
            return written


def run_export(args: argparse.Namespace) -> int:
    try:
        since = parse_since(args.since)
        until = parse_since(args.until) if args.until else None
    except ValueError:
        print("aragora audit export: --since/--until: ISO time or 30m/24h/7d", file=sys.stderr)
        return EXIT_FAILED
    params = {"since": since.isoformat(), "actor": args.actor, "action": args.action}
    if until is not None:
        params["until"] = until.isoformat()
    params = {k: v for k, v in params.items() if v}
    target = Path(args.out).open("w") if args.out else sys.stdout  # noqa: SIM115
    try:
        with _client(args.url) as http:
            count = export(http, params, target)
    except httpx.TransportError as exc:
        print(f"aragora audit export: cannot reach the gateway: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except RuntimeError as exc:
        print(f"aragora audit export: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        if args.out:
            target.close()
    print(
        f"exported {count} audit entries" + (f" to {args.out}" if args.out else ""), file=sys.stderr
    )
    return EXIT_OK


def run_verify(args: argparse.Namespace) -> int:
    try:
        with _client(args.url) as http:
            response = http.get("/api/admin/audit-log/verify")
    except httpx.TransportError as exc:
        print(f"aragora audit verify: cannot reach the gateway: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    if response.status_code != 200:
        print(f"aragora audit verify: {_refused(response)}", file=sys.stderr)
        return EXIT_FAILED
    body = response.json()
    if body["ok"]:
        print(f"OK  {body['checked']} entries, head {body['head_hash'][:16]}")
        return EXIT_OK
    found = body["first_break"]
    print(f"BROKEN at seq {found['seq']} (event {found['event_id']}): {found['problem']}")
    return EXIT_FAILED
