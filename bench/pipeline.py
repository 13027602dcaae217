"""3. Event pipeline: debate events per second end to end (stored, relayed to JetStream,
projected by the gateway, delivered to a WebSocket firehose client) with the fake
provider at 0 ms, vs raw JetStream async publishing of same-size messages on a NATS of the
same settings; and store appends per second vs a bare eventsourcing save loop on the same
PostgreSQL database.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import nats
import psycopg
import websockets
from nats.js.api import StorageType, StreamConfig

from bench import infra
from bench.client import post_debate
from bench.report import Figure, Result


async def _firehose(stack: infra.Stack, expect_terminal: int, out: dict[str, Any]) -> None:
    async with websockets.connect(
        f"{stack.ws_url}/ws", additional_headers=stack.headers, max_size=2**24
    ) as ws:
        out["ready"].set()
        terminal = 0
        async for frame in ws:
            event = json.loads(frame)
            kind = str(event.get("type", ""))
            if not kind.startswith("debate."):
                continue
            out["events"] += 1
            out["bytes"] += len(frame)
            if kind in ("debate.completed", "debate.failed"):
                terminal += 1
                if terminal >= expect_terminal:
                    out["t_end"] = time.monotonic()
                    return


def _stored_events(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_name LIKE '%%events' AND table_schema = 'public'"
            ).fetchall()
        ]
        total = 0
        for table in tables:
            row = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()
            total += int(row[0]) if row else 0
        return total


async def _end_to_end(workdir: Path, db: str, debates: int) -> dict[str, Any]:
    with (
        infra.fake_provider(0) as provider,
        infra.stack(workdir, db, env=provider.env()) as stack,
    ):
        out: dict[str, Any] = {"events": 0, "bytes": 0, "ready": asyncio.Event()}
        hose = asyncio.create_task(_firehose(stack, debates, out))
        await asyncio.wait_for(out["ready"].wait(), 30)
        stored0 = await asyncio.to_thread(_stored_events, db)
        procs = stack.services()
        sampler = infra.Sampler(procs).start()
        t0 = time.monotonic()
        async with httpx.AsyncClient(headers=stack.headers, timeout=60) as http:
            await asyncio.gather(
                *(post_debate(http, stack, f"Pipeline debate {i}") for i in range(debates))
            )
        await asyncio.wait_for(hose, 600)
        usage = sampler.stop()
        elapsed = out["t_end"] - t0
        stored = await asyncio.to_thread(_stored_events, db) - stored0
    return {
        "debates": debates,
        "elapsed_s": round(elapsed, 3),
        "events_delivered": out["events"],
        "avg_event_bytes": round(out["bytes"] / max(out["events"], 1)),
        "events_per_s": out["events"] / elapsed,
        "stored_rows": stored,
        "stored_per_s": stored / elapsed,
        "services": usage,
    }


async def _jetstream_publish(workdir: Path, size: int, count: int) -> dict[str, Any]:
    """Raw publish_async of ``count`` messages of ``size`` bytes, with Nats-Msg-Id like the
    relay, on a nats-server with the stack's fsync setting (always)."""
    with infra.nats(workdir) as server:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        await js.add_stream(
            StreamConfig(
                name="BENCH", subjects=["bench.>"], storage=StorageType.FILE, duplicate_window=600
            )
        )
        payload = b"x" * size
        t0 = time.monotonic()
        batch = 500  # the relay also publishes in batches and awaits each batch's acks
        for start in range(0, count, batch):
            futures = [
                await js.publish_async(
                    f"bench.evt.{i % 100}", payload, headers={"Nats-Msg-Id": uuid.uuid4().hex}
                )
                for i in range(start, min(start + batch, count))
            ]
            await asyncio.gather(*futures)
        elapsed = time.monotonic() - t0
        await nc.close()
    return {
        "messages": count,
        "bytes": size,
        "elapsed_s": round(elapsed, 3),
        "per_s": count / elapsed,
    }


def _bare_save_loop(database_url: str, size: int, seconds: float, batch: int) -> dict[str, Any]:
    """eventsourcing's PostgreSQL recorder, ``insert_events`` of ``batch`` events per call."""
    from eventsourcing.persistence import InfrastructureFactory, StoredEvent
    from eventsourcing.utils import Environment

    from aragora.orchestrator.store import eventsourcing_env
    from aragora.runtime.settings import load_settings

    schema = f"bare_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    settings = load_settings({}, database_url=database_url, database_schema=schema)
    factory: Any = InfrastructureFactory.construct(
        Environment(name="bare", env=eventsourcing_env(settings))
    )
    recorder = factory.process_recorder()
    payload = b"x" * size
    events = 0
    calls = 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        originator = uuid.uuid4()
        recorder.insert_events(
            [
                StoredEvent(
                    originator_id=originator, originator_version=v + 1, topic="bench", state=payload
                )
                for v in range(batch)
            ]
        )
        events += batch
        calls += 1
    elapsed = time.monotonic() - t0
    factory.close()
    return {
        "batch": batch,
        "events": events,
        "calls": calls,
        "elapsed_s": round(elapsed, 3),
        "events_per_s": events / elapsed,
        "calls_per_s": calls / elapsed,
    }


def run(workdir: Path, full: bool = False) -> Result:
    debates = int(os.environ.get("ARAGORA_BENCH_PIPELINE_DEBATES", "60"))
    result = Result(
        "pipeline",
        params={"debates": debates, "latency_ms": 0, "agents": infra.AGENTS, "rounds": 3},
    )
    with infra.database() as db:
        e2e = asyncio.run(_end_to_end(workdir, db, debates))
        size = int(e2e["avg_event_bytes"])
        raw = asyncio.run(_jetstream_publish(workdir, size, 10_000))
        bare1 = _bare_save_loop(db, size, 3.0, 1)
        bare4 = _bare_save_loop(db, size, 3.0, 4)
    result.add(
        Figure(
            "debate events/s end to end",
            e2e["events_per_s"],
            "ev/s",
            baseline=raw["per_s"],
            baseline_name="raw JetStream publish_async",
            target=0.25,
            better="higher",
        )
    )
    result.add(
        Figure(
            "store rows appended/s end to end",
            e2e["stored_per_s"],
            "rows/s",
            baseline=bare1["events_per_s"],
            baseline_name="bare save loop, 1/call",
            better="higher",
        )
    )
    result.add(
        Figure(
            "bare save loop, 4 events/call",
            bare4["events_per_s"],
            "rows/s",
            baseline=bare1["events_per_s"],
            baseline_name="bare save loop, 1/call",
            better="higher",
        )
    )
    result.details = {
        "end_to_end": e2e,
        "jetstream_publish": raw,
        "bare_save_1": bare1,
        "bare_save_4": bare4,
    }
    return result
