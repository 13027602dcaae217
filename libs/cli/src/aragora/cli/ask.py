"""``aragora ask "<question>"``: start a debate on the gateway and follow it live.

Output: a live view (header, rounds, phases, turns, votes, a progress bar, the outcome panel)
on a terminal; plain lines when stdout is not a terminal; one JSON event per line with
``--json``. Exit code: 0 when the debate completes (consensus or not), 1 when it fails,
2 on usage or connection errors.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from typing import Any, Protocol

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from aragora.cli import render
from aragora.cli.client import (
    Backoff,
    BadRequest,
    GatewayError,
    GatewayUnreachable,
    Received,
    create_debate,
    follow_debate,
)
from aragora.contracts.messages import DebateCompleted, DebateCreated, DebateFailed
from aragora.runtime.credentials import find_token
from aragora.runtime.settings import load_settings

DEFAULT_URL = "http://localhost:8080"
URL_ENV = "ARAGORA_URL"

EXIT_COMPLETED = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

RECONNECT_BACKOFF = Backoff()
"""How the event stream is re-opened after a drop (0.2 s doubling to 5 s, for 30 s)."""


def _agent_list(value: str) -> list[str]:
    agents = [name.strip() for name in value.split(",") if name.strip()]
    if not agents:
        raise argparse.ArgumentTypeError("expected comma-separated agent names, e.g. a,b,c")
    return agents


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``ask`` sub-command."""
    parser = subparsers.add_parser(
        "ask",
        help="start a debate on a question and follow it live",
        description="Start a debate on QUESTION and stream it until the agents decide.",
    )
    parser.add_argument("question", help="the question the agents debate")
    parser.add_argument(
        "--agents",
        type=_agent_list,
        default=None,
        metavar="A,B,C",
        help="comma-separated agent names (default: the gateway's default agents)",
    )
    parser.add_argument(
        "--rounds",
        type=_positive_int,
        default=None,
        metavar="N",
        help="debate rounds (default: the gateway's default)",
    )
    parser.add_argument(
        "--consensus",
        choices=["majority", "supermajority", "unanimous", "judge", "any", "none"],
        help="how the debate decides (default: majority)",
    )
    parser.add_argument(
        "--preset", choices=["light", "standard", "thorough"], help="2, 3 or 6 rounds"
    )
    parser.add_argument(
        "--topology",
        choices=["all-to-all", "ring", "round-robin", "star"],
        help="who critiques whom (default: all-to-all)",
    )
    parser.add_argument("--domain", help="rating domain of the debate (default: general)")
    parser.add_argument(
        "--max-cost-usd",
        type=float,
        default=None,
        metavar="USD",
        dest="max_cost_usd",
        help="budget: past it the debate ends budget_exceeded (default: no limit)",
    )
    parser.add_argument(
        "--url",
        default=None,
        help=f"gateway base URL (default: ${URL_ENV} or {DEFAULT_URL})",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        dest="json",
        help="print each debate event as one JSON line instead of the live view",
    )
    parser.set_defaults(func=run)


def resolve_url(explicit: str | None) -> str:
    """The gateway URL: ``--url``, else ``$ARAGORA_URL``, else the local default."""
    return (explicit or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")


def _error(message: str) -> None:
    print(f"aragora: {message}", file=sys.stderr, flush=True)


# --- output sinks ----------------------------------------------------------------------------


class _Sink(Protocol):
    def started(self, debate_id: str) -> None: ...
    def show(self, received: Received) -> None: ...
    def reconnecting(self, last_seq: int, delay: float) -> None: ...
    def close(self) -> None: ...


class _JsonSink:
    """One JSON object per line on stdout: each debate event, exactly as received."""

    def started(self, debate_id: str) -> None:
        pass

    def show(self, received: Received) -> None:
        try:
            line = json.dumps(json.loads(received.raw), ensure_ascii=False)
        except ValueError:
            line = received.raw
        print(line, flush=True)

    def reconnecting(self, last_seq: int, delay: float) -> None:
        _error(f"event stream interrupted after seq {last_seq}; reconnecting in {delay:.1f}s")

    def close(self) -> None:
        pass


class _PlainSink:
    """Plain text lines, for pipes and logs."""

    def started(self, debate_id: str) -> None:
        pass

    def show(self, received: Received) -> None:
        for line in render.plain_lines(received.event):
            print(line, flush=True)

    def reconnecting(self, last_seq: int, delay: float) -> None:
        _error(f"event stream interrupted after seq {last_seq}; reconnecting in {delay:.1f}s")

    def close(self) -> None:
        pass


class _RichSink:
    """The live terminal view: lines scroll above a progress bar; the outcome in a panel."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._task: TaskID | None = None
        self._total: int | None = None

    def started(self, debate_id: str) -> None:
        self._progress.start()
        self._task = self._progress.add_task("waiting for the debate to start", total=None)

    def show(self, received: Received) -> None:
        event = received.event
        if isinstance(event, DebateCompleted | DebateFailed):
            self.close()
            self._console.print(render.outcome_panel(event))
            return
        for line in render.event_lines(event):
            self._progress.console.print(line)
        if self._task is None:
            return
        if isinstance(event, DebateCreated):
            self._total = render.expected_turns(len(event.agents), event.rounds, event.consensus)
        advance = 1 if render.counts_as_turn(event) else 0
        self._progress.update(
            self._task, total=self._total, description="turns", advance=advance, refresh=True
        )

    def reconnecting(self, last_seq: int, delay: float) -> None:
        if self._task is not None:
            description = f"reconnecting in {delay:.1f}s"
            self._progress.update(self._task, description=description, refresh=True)

    def close(self) -> None:
        if self._task is not None:
            self._progress.stop()
            self._task = None


def _make_sink(as_json: bool, console: Console) -> _Sink:
    if as_json:
        return _JsonSink()
    if console.is_terminal:
        return _RichSink(console)
    return _PlainSink()


# --- the command ------------------------------------------------------------------------------


def _bad_request_message(exc: BadRequest) -> str:
    if exc.status_code == 401:
        return (
            f"the gateway wants a token ({exc.detail}): set ARAGORA_API_TOKEN, or run from "
            "the directory `make serve` runs in (the CLI reads ARAGORA_DATA_DIR/api-token)"
        )
    if exc.status_code == 403:
        return f"the gateway refused: {exc.detail}"
    message = f"the gateway rejected the request (HTTP {exc.status_code}): {exc.detail}"
    if exc.extra:
        message += "\n  " + json.dumps(exc.extra, ensure_ascii=False, default=str)
    return message


async def ask(
    url: str,
    question: str,
    *,
    agents: list[str] | None,
    rounds: int | None,
    sink: _Sink,
    backoff: Backoff | None = None,
    protocol: dict[str, Any] | None = None,
    domain: str | None = None,
    token: str = "",
) -> int:
    """Create the debate, stream it to ``sink``; return the exit code."""
    try:
        debate_id = await create_debate(
            url,
            question,
            agents=agents,
            rounds=rounds,
            protocol=protocol,
            domain=domain,
            token=token,
        )
    except GatewayUnreachable:
        _error(f"cannot reach the Aragora gateway at {url} - is `make serve` running?")
        return EXIT_USAGE
    except BadRequest as exc:
        _error(_bad_request_message(exc))
        return EXIT_USAGE
    except GatewayError as exc:
        _error(str(exc))
        return EXIT_USAGE
    sink.started(debate_id)
    try:
        stream = follow_debate(
            url, debate_id, backoff=backoff, on_reconnect=sink.reconnecting, token=token
        )
        async with contextlib.aclosing(stream) as events:
            async for received in events:
                sink.show(received)
                code = render.exit_code(received.event)
                if code is not None:
                    return code
    except GatewayError as exc:
        _error(str(exc))
        return EXIT_USAGE
    finally:
        sink.close()
    _error(f"the event stream of debate {debate_id} ended before the debate did")
    return EXIT_USAGE


def run(args: argparse.Namespace) -> int:
    """Run ``aragora ask`` with parsed ``args``; return the exit code."""
    question = str(args.question).strip()
    if not question:
        _error("the question must not be empty")
        return EXIT_USAGE
    url = resolve_url(args.url)
    try:
        scheme = httpx.URL(url).scheme if "://" in url else ""
    except httpx.InvalidURL:
        scheme = ""
    if scheme not in ("http", "https"):
        _error(f"the gateway URL (--url or ${URL_ENV}) must be http(s)://..., got {url!r}")
        return EXIT_USAGE
    sink = _make_sink(bool(args.json), Console())
    try:
        return asyncio.run(
            ask(
                url,
                question,
                agents=args.agents,
                rounds=args.rounds,
                sink=sink,
                backoff=RECONNECT_BACKOFF,
                protocol={
                    key: value
                    for key in ("consensus", "preset", "topology", "max_cost_usd")
                    if (value := getattr(args, key, None)) is not None
                },
                domain=args.domain,
                token=find_token(load_settings()),
            )
        )
    except KeyboardInterrupt:
        sink.close()
        _error("interrupted (the debate goes on on the gateway)")
        return EXIT_INTERRUPTED
