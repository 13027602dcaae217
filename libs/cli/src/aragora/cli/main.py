"""The ``aragora`` command: ``serve`` the stack, ``ask`` a question, show ``config``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from aragora.cli import ask
from aragora.runtime.settings import SettingsError, load_settings, settings_fields


def _serve(args: argparse.Namespace) -> int:
    from aragora.cli.supervisor import serve

    overrides: dict[str, object] = {}
    if args.api_port is not None:
        overrides["api_port"] = args.api_port
    if args.ws_port is not None:
        overrides["ws_port"] = args.ws_port
    if args.host is not None:
        overrides["api_host"] = args.host
    if args.data_dir is not None:
        overrides["data_dir"] = Path(args.data_dir)
    try:
        settings = load_settings(None, **overrides)
    except SettingsError as exc:
        print(f"aragora serve: configuration error: {exc}", file=sys.stderr)
        return 2
    return serve(settings, runners=args.runners)


def _config(args: argparse.Namespace) -> int:
    for env, doc, default in settings_fields():
        print(f"{env}={default}\n    {doc}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aragora", description="AI agents debate; Aragora turns it into a decision."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the whole stack on this host")
    serve.add_argument("--api-port", type=int, help="HTTP port (ARAGORA_API_PORT, 8080)")
    serve.add_argument("--ws-port", type=int, help="WebSocket port (ARAGORA_WS_PORT, 8766)")
    serve.add_argument("--host", help="bind address (ARAGORA_API_HOST, 127.0.0.1)")
    serve.add_argument("--data-dir", help="data directory (ARAGORA_DATA_DIR, .aragora)")
    serve.add_argument("--runners", type=int, default=1, help="agent-runner processes (1)")
    serve.set_defaults(func=_serve)
    ask.add_parser(sub)
    config = sub.add_parser("config", help="list every setting with its default")
    config.set_defaults(func=_config)
    return parser


def main(argv: list[str] | None = None) -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    sys.exit(args.func(args))
