# syntax=docker/dockerfile:1
# One image for every Aragora service; the command chooses the service:
#   aragora serve --host 0.0.0.0         the whole stack in one container (the default)
#   python -m aragora.gateway            REST :8080 and WebSocket :8766
#   python -m aragora.orchestrator       debate rules, event store, outbox relay
#   python -m aragora.agent_runner       provider calls (run N replicas)
#   python -m aragora.ratelimit          rate-limit decisions over NATS request/reply
#   python -m aragora.audit              security events into the append-only audit_log
# Settings come from the environment (docs/configuration.md). Build: docker build -t aragora .
# The services without an API serve /metrics, /healthz and /readyz on their
# ARAGORA_<SERVICE>_METRICS_PORT (docs/deploy.md); there is no curl in the image, so
# container healthchecks use `python -c "import urllib.request; urllib.request.urlopen(...)"`.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9

FROM ${UV_IMAGE} AS uv

FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# Third-party dependencies first, from the lockfile alone: this layer is rebuilt only when
# uv.lock or the root pyproject.toml change, not on every source edit.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --all-packages --no-dev --no-install-workspace
# Then the workspace packages, installed as wheels (not editable) so that the runtime
# stage needs only /app/.venv.
COPY libs ./libs
COPY services ./services
COPY tools ./tools
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --all-packages --no-dev --no-editable

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="aragora" \
      org.opencontainers.image.description="Aragora: AI agents debate; every service in one image"
RUN groupadd --system --gid 10001 aragora \
    && useradd --system --uid 10001 --gid aragora --home-dir /var/lib/aragora \
        --shell /usr/sbin/nologin aragora \
    && install -d -o aragora -g aragora -m 0750 /var/lib/aragora
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ARAGORA_DATA_DIR=/var/lib/aragora \
    ARAGORA_API_HOST=0.0.0.0
USER 10001:10001
WORKDIR /var/lib/aragora
VOLUME ["/var/lib/aragora"]
EXPOSE 8080 8766
# Every service stops gracefully on SIGTERM (in-flight work finished, outbox drained).
STOPSIGNAL SIGTERM
CMD ["aragora", "serve", "--host", "0.0.0.0"]
