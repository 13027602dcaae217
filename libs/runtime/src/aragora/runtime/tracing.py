"""Distributed tracing (OpenTelemetry): off unless an exporter is configured.

One trace per debate: the gateway's request span publishes ``StartDebate`` with a W3C
``traceparent`` header; :mod:`aragora.runtime.bus` injects the current context into every
publish and opens a consumer span from the header on every delivery. The orchestrator's
commands and events reach NATS through the outbox relay long after the handler that
decided them, so the orchestrator remembers, per debate, the context of the last message
it handled for that debate (:func:`remember`) and the relay publishes with it
(:func:`headers_for`). Nothing about tracing is stored in the event store: after an
orchestrator restart the first result that arrives (it carries its own ``traceparent``)
puts the debate back on its trace.

Off (the default) every helper returns at once: no tracer provider, no span objects, no
headers. On: ``OTEL_TRACES_EXPORTER=otlp`` (OTLP over HTTP/protobuf to
``OTEL_EXPORTER_OTLP_ENDPOINT``/v1/traces) or ``console``; ``OTEL_SERVICE_NAME`` names the
service. Only W3C trace context is propagated.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from aragora.runtime.settings import Settings

# OpenTelemetry (the SDK pulls in psutil and the semantic conventions: ~10 MB and a few
# hundred ms per process) is imported only when tracing is configured, never when it is off.
if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, SpanContext, SpanKind, Tracer
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger("aragora.tracing")

_PROPAGATOR: TraceContextTextMapPropagator | None = None  # set with the provider
_DEBATES_KEPT = 10_000
_provider: TracerProvider | None = None
_tracer: Tracer | None = None
_debates: OrderedDict[str, SpanContext] = OrderedDict()


def exporter_kind(settings: Settings) -> str:
    """``otlp``, ``console`` or ``none``, from OTEL_TRACES_EXPORTER and the endpoint."""
    kind = settings.otel_traces_exporter.strip().lower()
    if not kind:
        return "otlp" if settings.otel_exporter_otlp_endpoint else "none"
    return "otlp" if kind in ("otlp", "otlp_proto_http") else kind


def configure_tracing(
    service: str, settings: Settings, exporter: SpanExporter | None = None
) -> bool:
    """Start tracing if configured (or with ``exporter``, synchronously: for tests).

    Returns whether tracing is on. Calling it again replaces the previous provider."""
    kind = exporter_kind(settings)
    if exporter is None and kind == "none":
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SimpleSpanProcessor,
    )

    if exporter is None:
        if kind == "console":
            exporter = ConsoleSpanExporter()
        elif kind == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            endpoint = settings.otel_exporter_otlp_endpoint.rstrip("/")
            exporter = OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces" if endpoint else None)
        else:
            log.warning("OTEL_TRACES_EXPORTER=%s is not supported; tracing is off", kind)
            return False
        processor: Any = BatchSpanProcessor(exporter)
    else:
        processor = SimpleSpanProcessor(exporter)
    shutdown_tracing()
    name = settings.otel_service_name or f"aragora-{service}"
    provider = TracerProvider(
        resource=Resource.create(
            {
                "service.name": name,
                "service.instance.id": settings.instance_id or f"{service}-{os.getpid()}",
            }
        )
    )
    provider.add_span_processor(processor)
    _set(provider)
    log.info("tracing on", extra={"exporter": kind, "service_name": name})
    return True


def _set(provider: TracerProvider | None) -> None:
    global _provider, _tracer, _PROPAGATOR
    if provider is not None and _PROPAGATOR is None:
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        _PROPAGATOR = TraceContextTextMapPropagator()
    _provider = provider
    _tracer = provider.get_tracer("aragora") if provider is not None else None
    _debates.clear()


def _kind(kind: SpanKind | None, default: str) -> SpanKind:
    from opentelemetry.trace import SpanKind

    return kind if kind is not None else SpanKind[default]


def shutdown_tracing() -> None:
    """Flush and stop the exporter (process exit); tracing is off afterwards."""
    provider = _provider
    _set(None)
    if provider is not None:
        provider.shutdown()


def enabled() -> bool:
    return _tracer is not None


def inject(headers: dict[str, str]) -> dict[str, str]:
    """Add ``traceparent`` (and ``tracestate``) of the current span to ``headers``."""
    if _tracer is not None and _PROPAGATOR is not None:
        _PROPAGATOR.inject(headers)
    return headers


@contextlib.contextmanager
def span(
    name: str,
    kind: SpanKind | None = None,
    attributes: Mapping[str, str | int | float | bool] | None = None,
) -> Iterator[Span | None]:
    """A span around the block (the current span's child); ``None`` when tracing is off."""
    if _tracer is None:
        yield None
        return
    with _tracer.start_as_current_span(
        name, kind=_kind(kind, "INTERNAL"), attributes=attributes
    ) as current:
        yield current


def start_span(
    name: str,
    kind: SpanKind | None = None,
    attributes: Mapping[str, str | int | float | bool] | None = None,
) -> Span | None:
    """A child of the current span that the caller ends (``span.end()``); None when off."""
    if _tracer is None:
        return None
    return _tracer.start_span(name, kind=_kind(kind, "INTERNAL"), attributes=attributes)


@contextlib.contextmanager
def consumer_span(
    name: str, headers: Mapping[str, Any] | None, subject: str, consumer: str, deliveries: int
) -> Iterator[Span | None]:
    """The span of handling one message, child of the ``traceparent`` it carries."""
    if _tracer is None or _PROPAGATOR is None:
        yield None
        return
    parent = _PROPAGATOR.extract(dict(headers or {}))
    attributes: dict[str, str | int] = {
        "messaging.system": "nats",
        "messaging.destination.name": subject,
        "messaging.consumer.group.name": consumer,
        "messaging.nats.delivery_count": deliveries,
    }
    with _tracer.start_as_current_span(
        name, context=parent, kind=_kind(None, "CONSUMER"), attributes=attributes
    ) as current:
        yield current


@contextlib.contextmanager
def server_span(
    name: str, headers: Mapping[str, str], method: str, route: str
) -> Iterator[Span | None]:
    """The span of serving one HTTP request, child of the caller's ``traceparent``."""
    if _tracer is None or _PROPAGATOR is None:
        yield None
        return
    parent = _PROPAGATOR.extract(headers)
    attributes = {"http.request.method": method, "http.route": route}
    with _tracer.start_as_current_span(
        name, context=parent, kind=_kind(None, "SERVER"), attributes=attributes
    ) as current:
        yield current


def annotate(**attributes: str | int | float | bool) -> None:
    """Set attributes on the current span (no-op when tracing is off)."""
    if _tracer is not None:
        from opentelemetry import trace

        trace.get_current_span().set_attributes(attributes)


def remember(debate_id: str) -> None:
    """Record the current span as the debate's trace context (see :func:`headers_for`)."""
    if _tracer is None:
        return
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return
    _debates[debate_id] = context
    _debates.move_to_end(debate_id)
    while len(_debates) > _DEBATES_KEPT:
        _debates.popitem(last=False)


def headers_for(debate_id: str) -> dict[str, str]:
    """``traceparent`` of the debate's remembered context; empty if none (or tracing off)."""
    if _tracer is None or _PROPAGATOR is None:
        return {}
    context = _debates.get(debate_id)
    if context is None:
        return {}
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan

    headers: dict[str, str] = {}
    _PROPAGATOR.inject(headers, context=trace.set_span_in_context(NonRecordingSpan(context)))
    return headers


def current_trace_id() -> str | None:
    """Hex trace id of the current span, for log lines; None when off or outside a span."""
    if _tracer is None:
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None
