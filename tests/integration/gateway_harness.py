"""A real gateway app for tests: Litestar's AsyncTestClient over a real nats-server.

The app runs its lifespan: it connects to the fixture's nats-server, creates the streams,
opens the read model and projects ``aragora.evt.debate.>`` from JetStream.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from httpx import Response
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY

from aragora.contracts import codec
from aragora.contracts.messages import DebateEvent
from aragora.contracts.subjects import (
    debate_event_subject,
)
from aragora.gateway.app import create_app
from aragora.gateway.deps import Deps
from aragora.gateway.live import LiveHub
from aragora.gateway.readmodel import ReadModel
from aragora.runtime import bus
from aragora.runtime.agents import load_registry
from aragora.runtime.natsserver import EmbeddedNats
from aragora.runtime.settings import Settings
from tests.conftest import make_settings

T = TypeVar("T")
DEMO_AGENTS = ["demo-1", "demo-2", "demo-3", "demo-4", "demo-5"]


@dataclass
class Gateway:
    client: AsyncTestClient[Any]
    deps: Deps
    nats: bus.Connection  # the test's own connection, publishing like the outbox relay

    async def publish(self, events: list[DebateEvent], *, fresh_msg_ids: bool = False) -> None:
        for event in events:
            msg_id = str(uuid.uuid4()) if fresh_msg_ids else event.event_id
            await bus.publish(
                self.nats.js, debate_event_subject(event), codec.encode(event), msg_id
            )

    async def view(self, debate_id: str) -> dict[str, Any] | None:
        response = await self.client.get(f"/api/debates/{debate_id}")
        return response.json() if response.status_code == 200 else None

    async def wait_for_seq(self, debate_id: str, seq: int, timeout: float = 5.0) -> dict[str, Any]:
        view = await eventually(
            lambda: self.view(debate_id),
            lambda v: v is not None and v["last_seq"] >= seq,
            timeout,
        )
        assert view is not None
        return view

    async def event_seqs(self, debate_id: str, query: str = "") -> list[int]:
        response = await self.client.get(f"/api/debates/{debate_id}/events{query}")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["debate_id"] == debate_id
        return [e["seq"] for e in body["events"]]

    async def stream_messages(self, stream: str, subjects: str = "") -> int:
        """Messages in ``stream`` (only those on ``subjects`` when given)."""
        if not subjects:
            info = await self.nats.js.stream_info(stream)
            return int(info.state.messages)
        info = await self.nats.js.stream_info(stream, subjects_filter=subjects)
        return sum((info.state.subjects or {}).values())


async def eventually(
    fetch: Callable[[], Awaitable[T]], done: Callable[[T], bool], timeout: float = 5.0
) -> T:
    """Poll ``fetch`` until ``done(value)``; fail with the last value at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await fetch()
        if done(value):
            return value
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {value!r}")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def open_gateway(settings: Settings) -> AsyncIterator[Gateway]:
    # Built like aragora.gateway.app.run builds it; the lifespan runs `running(deps)`.
    deps = Deps(
        settings=settings,
        registry=load_registry(settings),
        readmodel=ReadModel(settings),
        hub=LiveHub(),
    )
    async with AsyncTestClient(create_app(deps, own_lifecycle=True)) as client:
        # The service token (owner): tests of routes act as an operator would.
        client.headers["Authorization"] = f"Bearer {settings.api_token}"
        conn = await bus.connect(settings.nats_servers, name="test-publisher", connect_timeout=5)
        try:
            yield Gateway(client=client, deps=deps, nats=conn)
        finally:
            await conn.nc.close()  # close, not drain: the server may be stopped by now


@pytest.fixture
async def gateway(nats_server: EmbeddedNats, tmp_path: Path) -> AsyncIterator[Gateway]:
    async with open_gateway(make_settings(tmp_path, nats_url=nats_server.url)) as gw:
        yield gw


def error_text(response: Response) -> str:
    """The error's detail plus every ``extra`` entry as ``key: message``."""
    body = response.json()
    extra = body.get("extra") or []
    return " | ".join([body["detail"], *(f"{e['key']}: {e['message']}" for e in extra)])


def metric(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


# --- POST /api/debates ---------------------------------------------------------------------
