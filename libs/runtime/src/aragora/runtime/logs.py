"""JSON-lines logging in the runbook's shape.

Each line: ``timestamp``, ``level``, ``logger``, ``message`` plus context fields
(``service``, ``debate_id``, ``correlation_id`` and whatever ``extra=`` carries). The
message also ends with ``key=value`` pairs for ``debate_id``/``correlation_id`` so the
runbook's ``grep "debate_id=abc123"`` works on raw files. With tracing on, ``trace_id``
links a line to its trace.

Lines go to stdout and, when ``ARAGORA_LOG_DIR`` is set, to the runbook's files there
(:data:`LOG_FILES`): the gateway (and the ratelimit service it asks) to ``api.log``, except
the gateway's WebSocket loggers (:data:`WEBSOCKET_LOGGERS`) to ``websocket.log``; the
orchestrator to ``debate.log``; agent-runners to ``agent.log``. Files are opened in append
mode by every process that writes them and reopened when logrotate moves them.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime
from logging.handlers import WatchedFileHandler
from pathlib import Path
from typing import Any

from aragora.runtime.tracing import current_trace_id

debate_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "debate_id", default=None
)
correlation_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "correlation_id", default=None
)

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's terminal-coloured copy of the message
}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        extra = {k: v for k, v in record.__dict__.items() if k not in _RESERVED}
        debate_id = extra.pop("debate_id", None) or debate_id_var.get()
        correlation_id = extra.pop("correlation_id", None) or correlation_id_var.get()
        message = record.getMessage()
        searchable = [f"{k}={v}" for k, v in extra.items() if isinstance(v, int | float | str)]
        if debate_id:
            searchable.append(f"debate_id={debate_id}")
        if correlation_id:
            searchable.append(f"correlation_id={correlation_id}")
        line: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": " ".join([message, *searchable]) if searchable else message,
            "service": self.service,
        }
        if debate_id:
            line["debate_id"] = debate_id
        if correlation_id:
            line["correlation_id"] = correlation_id
        trace_id = current_trace_id()
        if trace_id:
            line["trace_id"] = trace_id
        line.update(extra)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


LOG_FILES = {
    "gateway": "api.log",
    "ratelimit": "api.log",
    "orchestrator": "debate.log",
    "agent-runner": "agent.log",
}
"""The runbook's file of each service's lines (under ARAGORA_LOG_DIR)."""
WEBSOCKET_FILE = "websocket.log"
WEBSOCKET_LOGGERS = ("aragora.gateway.websocket", "aragora.gateway.live")
"""The gateway's loggers whose lines go to websocket.log instead of api.log."""


class _ByLogger(logging.Filter):
    """Passes records of the ``names`` loggers (and their children), or all others."""

    def __init__(self, names: tuple[str, ...], *, keep: bool) -> None:
        super().__init__()
        self.names = names
        self.keep = keep

    def filter(self, record: logging.LogRecord) -> bool:
        inside = any(record.name == n or record.name.startswith(n + ".") for n in self.names)
        return inside == self.keep


def file_handlers(service: str, log_dir: str | Path) -> list[logging.Handler]:
    """The runbook's log files of ``service`` under ``log_dir`` (created if missing)."""
    directory = Path(log_dir)
    directory.mkdir(parents=True, exist_ok=True)
    main = WatchedFileHandler(directory / LOG_FILES.get(service, f"{service}.log"))
    if service != "gateway":
        return [main]
    main.addFilter(_ByLogger(WEBSOCKET_LOGGERS, keep=False))
    websocket = WatchedFileHandler(directory / WEBSOCKET_FILE)
    websocket.addFilter(_ByLogger(WEBSOCKET_LOGGERS, keep=True))
    return [main, websocket]


def configure_logging(service: str, level: str = "INFO", log_dir: str | Path = "") -> None:
    formatter = JsonFormatter(service)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    if log_dir:
        handlers += file_handlers(service, log_dir)
    for handler in handlers:
        handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in root.handlers:
        if isinstance(old, logging.FileHandler):
            old.close()
    root.handlers[:] = handlers
    root.setLevel(level.upper())
    # Third-party chatter stays at WARNING unless we debug.
    for noisy in ("nats", "uvicorn.access", "httpx", "httpcore", "eventsourcing"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
