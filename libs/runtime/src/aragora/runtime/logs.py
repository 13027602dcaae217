"""JSON-lines logging in the runbook's shape.

Each line: ``timestamp``, ``level``, ``logger``, ``message`` plus context fields
(``service``, ``debate_id``, ``correlation_id`` and whatever ``extra=`` carries). The
message also ends with ``key=value`` pairs for ``debate_id``/``correlation_id`` so the
runbook's ``grep "debate_id=abc123"`` works on raw files.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

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
        line.update(extra)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Third-party chatter stays at WARNING unless we debug.
    for noisy in ("nats", "uvicorn.access", "httpx", "httpcore", "eventsourcing"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
