"""Shared fixtures: a real nats-server per test, a PostgreSQL schema per test, settings."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from aragora.runtime.natsserver import EmbeddedNats, free_port
from aragora.runtime.settings import Settings, load_settings

pytest_plugins = ["tests.plugins.fake_provider"]

PG_URL = os.environ.get("ARAGORA_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[EmbeddedNats]:
    """A nats-server from the wheel with JetStream, on a free port, data under tmp_path."""
    server = EmbeddedNats(free_port(), tmp_path / "nats")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A PostgreSQL schema of this test's own, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(PG_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {PG_URL} is required for this test: {exc}")
    yield schema
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


TEST_TOKEN = "aro_test-service-token-0123456789abcdef"


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "demo_latency_ms": 0,
        "api_token": TEST_TOKEN,
    }
    base.update(overrides)
    return load_settings({}, **base)


@pytest.fixture(params=["sqlite", "postgres"])
def db_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for each storage backend (runs the test once per backend)."""
    if request.param == "sqlite":
        return make_settings(tmp_path)
    schema = request.getfixturevalue("pg_schema")
    return make_settings(tmp_path, database_url=PG_URL, database_schema=schema)
