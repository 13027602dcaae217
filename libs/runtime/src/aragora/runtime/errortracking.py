"""Errors to Sentry when ``SENTRY_DSN`` is set (sentry-sdk is not initialised otherwise).

What goes: ERROR log lines and unhandled exceptions, tagged with ``service``,
``debate_id`` and ``correlation_id`` (so the runbook's "search by correlation_id tag"
works). What never goes: request bodies, headers, cookies, user data, local variables
of stack frames (they may hold provider keys), performance traces (OpenTelemetry does
those). Values that look like secrets are masked in what is left.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

from aragora.runtime.logs import correlation_id_var, debate_id_var
from aragora.runtime.settings import Settings

log = logging.getLogger("aragora.errortracking")

_SECRET = re.compile(
    r"(sk-[A-Za-z0-9_\-]{8,}|ara_[A-Za-z0-9_\-]{8,}|AIza[0-9A-Za-z_\-]{20,}|"
    r"Bearer\s+[A-Za-z0-9._\-]+|(?:api[_-]?key|token|secret|password)=[^&\s\"']+)",
    re.IGNORECASE,
)


def scrub(text: str) -> str:
    return _SECRET.sub("[Filtered]", text)


def _scrub_value(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: _scrub_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub_value(v) for v in value]
    return value


def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    """Tag the event with the debate and correlation ids; drop what could hold secrets."""
    tags = event.setdefault("tags", {})
    debate_id, correlation_id = debate_id_var.get(), correlation_id_var.get()
    if debate_id:
        tags.setdefault("debate_id", debate_id)
    if correlation_id:
        tags.setdefault("correlation_id", correlation_id)
    request = event.get("request")
    if isinstance(request, dict):
        for key in ("headers", "cookies", "data", "env", "query_string"):
            request.pop(key, None)
    event.pop("user", None)
    for key in ("message", "logentry", "exception", "extra", "breadcrumbs"):
        if key in event:
            event[key] = _scrub_value(event[key])
    return event


def configure_sentry(service: str, settings: Settings, **options: Any) -> bool:
    """Initialise sentry-sdk if SENTRY_DSN is set; returns whether it is on.

    ``options`` go to ``sentry_sdk.init`` (tests pass a ``transport``)."""
    if not settings.sentry_dsn:
        return False
    import sentry_sdk

    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        include_local_variables=False,
        max_request_body_size="never",
        traces_sample_rate=None,
        auto_enabling_integrations=False,
        server_name=settings.instance_id or service,
        before_send=before_send,  # type: ignore[arg-type]
        **options,
    )
    sentry_sdk.set_tag("service", service)
    log.info("errors go to Sentry", extra={"service_name": service})
    return True


def flush_sentry(timeout: float = 2.0) -> None:
    """Send what is queued before the process exits (no-op when Sentry is off)."""
    sentry_sdk = sys.modules.get("sentry_sdk")  # imported by configure_sentry if it is on
    if sentry_sdk is not None and sentry_sdk.is_initialized():
        sentry_sdk.flush(timeout=timeout)
