"""4. Replay: rebuild every gateway projection from E stored debate events
(``aragora.gateway.rebuild``, the code behind ``aragora projections rebuild all``) vs a raw
JetStream ordered consume of the same stream in the same run; and the time to resume one
WebSocket client from ``since=0`` on a 10,000-event debate.

The events are clones of a real debate's events (new debate and event ids), published
straight to ``ARAGORA_EVENTS``. The rebuild's stream lives on a nats-server with
JetStream's default fsync interval, only to load it fast: reading does not fsync.
Default E = 100,000 (``--full`` or ``ARAGORA_BENCH_REPLAY_EVENTS``: 1,000,000).
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

from aragora.contracts.subjects import EVENTS_STREAM
from aragora.gateway.readmodel import ReadModel
from aragora.gateway.rebuild import rebuild_with
from aragora.runtime import bus
from aragora.runtime.settings import load_settings
from bench import infra
from bench.client import follow, post_debate
from bench.report import Figure, Result

SUBJECT = "aragora.evt.debate.{id}.{suffix}"


def _clone(template: list[dict[str, Any]], debate_id: str) -> list[tuple[str, bytes, str]]:
    out = []
    for event in template:
        copy = {**event, "debate_id": debate_id, "event_id": str(uuid.uuid4())}
        suffix = event["type"].removeprefix("debate.")
        subject = SUBJECT.format(id=debate_id, suffix=suffix)
        out.append((subject, json.dumps(copy).encode(), copy["event_id"]))
    return out


def _long_debate(template: list[dict[str, Any]], size: int) -> tuple[str, list[Any]]:
    """One debate of ``size`` events: created, turns, completed (the projection folds it)."""
    debate_id = str(uuid.uuid4())
    created = next(e for e in template if e["type"] == "debate.created")
    turn = next(e for e in template if e["type"] == "debate.turn_completed")
    done = next(e for e in template if e["type"] == "debate.completed")
    events = [{**created, "seq": 1}]
    events += [{**turn, "seq": s, "turn_id": str(uuid.uuid4())} for s in range(2, size)]
    events.append({**done, "seq": size})
    return debate_id, _clone(events, debate_id)


async def _publish(js: Any, messages: list[tuple[str, bytes, str]]) -> None:
    for start in range(0, len(messages), 1000):
        futures = [
            await js.publish_async(s, d, headers={"Nats-Msg-Id": i})
            for s, d, i in messages[start : start + 1000]
        ]
        await asyncio.gather(*futures)


async def _template_and_resume(
    workdir: Path, db: str, size: int
) -> tuple[list[Any], dict[str, Any]]:
    """A real debate's events (the clone template), then the WebSocket resume figure."""
    with (
        infra.fake_provider(0) as provider,
        infra.stack(workdir / "stack", db, env=provider.env()) as stack,
    ):
        async with httpx.AsyncClient(headers=stack.headers, timeout=60) as http:
            debate_id = await post_debate(http, stack, "A debate to clone")
            template = [e for _, e in await follow(stack, debate_id)]
            long_id, messages = _long_debate(template, size)
            nc = await nats.connect(stack.nats_url)
            await _publish(nc.jetstream(), messages)
            await nc.close()
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:  # until the gateway has projected all of it
                view = (await http.get(f"{stack.url}/api/debates/{long_id}")).json()
                if view.get("status") not in (None, "running", "queued"):
                    break
                await asyncio.sleep(0.5)
        times = []
        for _ in range(3):
            t0 = time.monotonic()
            received = await follow(stack, long_id, since=0)
            times.append(time.monotonic() - t0)
            assert len(received) == size, f"resume got {len(received)} of {size} events"
    return template, {"events": size, "resume_s": times}


async def _rebuild(workdir: Path, db: str, template: list[Any], total: int) -> dict[str, Any]:
    per = len(template)
    debates = max(1, total // per)
    with infra.nats(workdir, sync="default") as server:
        conn = await bus.connect([server.url], name="bench-replay")
        await bus.ensure_streams(conn.js)
        t0 = time.monotonic()
        for start in range(0, debates, 500):
            batch = [
                m
                for _ in range(min(500, debates - start))
                for m in _clone(template, str(uuid.uuid4()))
            ]
            await _publish(conn.js, batch)
        loaded = time.monotonic() - t0
        events = debates * per
        # Baseline: a raw ordered consumer over the same messages, nothing done with them.
        t0 = time.monotonic()
        sub = await conn.js.subscribe(
            "aragora.evt.debate.>", stream=EVENTS_STREAM.name, ordered_consumer=True
        )
        for _ in range(events):
            await sub.next_msg(timeout=30)
        raw_s = time.monotonic() - t0
        await sub.unsubscribe()
        settings = load_settings({}, database_url=db, data_dir=workdir / "data")
        readmodel = ReadModel(settings)
        await readmodel.open()
        t0 = time.monotonic()
        rebuilt = await rebuild_with(readmodel, conn.js)
        rebuild_s = time.monotonic() - t0
        await readmodel.close()
        await conn.close()
    return {
        "events": events,
        "debates": debates,
        "load_s": round(loaded, 2),
        "raw_consume_s": round(raw_s, 2),
        "raw_per_s": events / raw_s,
        "rebuild_s": round(rebuild_s, 2),
        "rebuild_per_s": events / rebuild_s,
        "rebuilt_events": rebuilt.events,
        "rebuilt_debates": rebuilt.debates,
    }


def run(workdir: Path, full: bool = False) -> Result:
    total = int(os.environ.get("ARAGORA_BENCH_REPLAY_EVENTS", 1_000_000 if full else 100_000))
    size = int(os.environ.get("ARAGORA_BENCH_RESUME_EVENTS", "10000"))
    result = Result("replay", params={"events": total, "resume_debate_events": size})
    with infra.database() as db:
        template, resume = asyncio.run(_template_and_resume(workdir, db, size))
    with infra.database() as db:
        replay = asyncio.run(_rebuild(workdir, db, template, total))
    result.add(
        Figure(
            f"rebuild all projections, {replay['events']:,} events",
            replay["rebuild_per_s"],
            "ev/s",
            baseline=replay["raw_per_s"],
            baseline_name="raw ordered consume",
            target=0.5,
            better="higher",
        )
    )
    result.add(Figure("rebuild wall time", replay["rebuild_s"], "s"))
    best = min(resume["resume_s"])
    result.add(
        Figure(
            f"WS resume since=0, {size:,}-event debate",
            best,
            "s",
            note="best of 3; median in details",
        )
    )
    result.details = {"rebuild": replay, "resume": resume}
    return result
