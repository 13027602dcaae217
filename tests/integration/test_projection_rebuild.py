"""Projections rebuilt from the stream equal the live ones, on SQLite and PostgreSQL.

The gateway runs (Litestar's test client, real nats-server) and projects debate events
published the way the outbox relay publishes them. Then the read model is rebuilt from
zero by :func:`aragora.gateway.rebuild.rebuild` and by ``aragora projections rebuild`` in
a subprocess pointed at the same NATS and database, while the gateway keeps running; what
the API serves (every view, every event, the leaderboards, every agent) and every table
row must not change.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from aragora.cli.main import build_parser
from aragora.contracts import codec
from aragora.contracts.messages import DebateEvent
from aragora.contracts.subjects import EVENTS_STREAM, debate_event_subject
from aragora.gateway import rebuild
from aragora.gateway.readmodel import ReadModel
from aragora.runtime import bus
from aragora.runtime.natsserver import EmbeddedNats, free_port
from aragora.runtime.settings import Settings
from tests.conftest import make_settings
from tests.integration.gateway_harness import Gateway, eventually, open_gateway
from tests.integration.test_readmodel import T0, debate_events

TABLES = {
    "gw_debates": "id",
    "gw_debate_events": "debate_id, seq",
    "gw_ratings": "domain, agent",
    "gw_rating_history": "debate_id, agent, domain",
    "gw_projection_positions": "name",
    "gw_usage": "turn_id",
}


def at(minute: int) -> datetime:
    # Distinct times: the agent history is ordered by time (ties have no defined order).
    return T0 + timedelta(minutes=minute)


async def tables(readmodel: ReadModel) -> dict[str, list[tuple[Any, ...]]]:
    def work(cur: Any) -> dict[str, list[tuple[Any, ...]]]:
        dump = {}
        for table, order in TABLES.items():
            cur.execute(f"SELECT * FROM {table} ORDER BY {order}")
            dump[table] = [tuple(row) for row in cur.fetchall()]
        return dump

    return await readmodel.run(work)


async def snapshot(gw: Gateway) -> dict[str, Any]:
    """Everything the API serves from the projections, plus every row behind it."""

    async def get(path: str) -> Any:
        response = await gw.client.get(path)
        assert response.status_code == 200, (path, response.text)
        return response.json()

    listed = await get("/api/debates?limit=500")
    ids = sorted(d["id"] for d in listed["debates"])
    agents = sorted({a for d in listed["debates"] for a in d["agents"]})
    return {
        "list": listed,
        "views": {i: await get(f"/api/debates/{i}") for i in ids},
        "events": {i: await get(f"/api/debates/{i}/events?limit=10000") for i in ids},
        "leaderboards": {
            d: await get(f"/api/agents/leaderboard?domain={d}") for d in ("all", "general")
        },
        "agents": {a: await get(f"/api/agents/{a}") for a in agents},
        "usage": await get("/api/billing/usage?limit=500"),
        "tables": await tables(gw.deps.readmodel),
    }


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Where two snapshots differ (a readable failure instead of two huge dicts)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [
            d
            for k in sorted(a.keys() | b.keys(), key=str)
            for d in differences(a.get(k), b.get(k), f"{path}/{k}")
        ]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in differences(x, y, f"{path}[{i}]")
        ]
    return [] if a == b else [f"{path}: {a!r:.300} != {b!r:.300}"]


async def assert_unchanged(gw: Gateway, expected: dict[str, Any]) -> None:
    assert differences(await snapshot(gw), expected) == []


def cli_env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "ARAGORA_NATS_URL": settings.nats_url,
        "ARAGORA_DATA_DIR": str(settings.data_dir),
        "ARAGORA_DATABASE_URL": settings.database_url,
        "ARAGORA_DATABASE_SCHEMA": settings.database_schema,
        "ARAGORA_LOG_LEVEL": "WARNING",
    }


async def aragora(settings: Settings, *args: str) -> tuple[int, str, str]:
    """Run the ``aragora`` command (without blocking the gateway in this event loop)."""
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "aragora"),
        *args,
        env=cli_env(settings),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def last_debate_seq(gw: Gateway) -> int:
    return await rebuild.last_debate_seq(gw.nats.js)


async def caught_up(gw: Gateway) -> dict[str, int]:
    """Wait until the live projector's position is the stream's last debate event."""
    last = await last_debate_seq(gw)
    return await eventually(
        gw.deps.readmodel.positions, lambda p: p == {"debates": last, "ratings": last}
    )


async def post(gw: Gateway, topic: str, agents: list[str]) -> str:
    response = await gw.client.post("/api/debates", json={"topic": topic, "agents": agents})
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def populate(gw: Gateway) -> dict[str, list[DebateEvent]]:
    """Debates of every shape, with duplicates and out-of-order events in the stream."""
    agents = ["demo-1", "demo-2", "demo-3"]
    won = await post(gw, "won", agents)
    failed = await post(gw, "failed", agents)
    partial = await post(gw, "partial", agents)
    await post(gw, "provisional only", agents)  # no event ever: the row must survive
    debates = {
        "won": debate_events(won, now=at(1)),
        "failed": debate_events(failed, votes={}, now=at(2)),
        "partial": debate_events(partial, now=at(3)),
        # started elsewhere (no POST), other agents and winner: the ratings move twice
        "elsewhere": debate_events(
            agents=["demo-2", "demo-4", "demo-5"],
            votes=dict.fromkeys(["demo-2", "demo-4"], "demo-4"),
            now=at(4),
        ),
    }
    won_events = debates["won"]
    await gw.publish([*won_events[:2], won_events[3], won_events[2], *won_events[4:]])
    await gw.publish(won_events[:4], fresh_msg_ids=True)  # redelivered copies
    await gw.publish(debates["failed"])
    await gw.publish(debates["partial"][:6])
    await gw.publish(debates["elsewhere"])
    # A fact on another subject of the stream: the projections ignore it.
    await bus.publish(gw.nats.js, f"aragora.evt.agent.{won}.noise", b"{}", str(uuid.uuid4()))
    for name, events in debates.items():
        last = 6 if name == "partial" else events[-1].seq
        await gw.wait_for_seq(events[0].debate_id, last)
    await caught_up(gw)
    return debates


async def test_a_rebuilt_projection_equals_the_live_one(
    nats_server: EmbeddedNats, db_settings: Settings
) -> None:
    settings = dataclasses.replace(db_settings, nats_url=nats_server.url)
    async with open_gateway(settings) as gw:
        debates = await populate(gw)
        live = await snapshot(gw)
        assert len(live["views"]) == 5
        assert live["leaderboards"]["all"]["agents"]  # the ratings were projected
        assert {v["status"] for v in live["views"].values()} == {"consensus", "failed", "running"}

        # In-process, while the gateway runs.
        result = await rebuild.rebuild(settings)
        assert result.names == ("debates", "ratings")
        assert result.position == await last_debate_seq(gw)
        assert (result.debates, result.ratings, result.unapplied) == (4, 2, 0)
        published = sum(len(e) for e in debates.values()) - len(debates["partial"]) + 6
        assert (result.events, result.messages) == (published, published + 4)  # 4 copies
        await assert_unchanged(gw, live)

        # Damage the read model, then rebuild through the CLI in another process.
        def damage(cur: Any) -> None:
            cur.execute("DELETE FROM gw_debate_events WHERE seq > 3")
            cur.execute(
                "UPDATE gw_debates SET view = ?, last_seq = 2 WHERE last_seq > 0",
                (json.dumps({}),),
            )
            cur.execute("UPDATE gw_ratings SET rating = rating + 100")
            cur.execute("DELETE FROM gw_rating_history")

        await gw.deps.readmodel.run(damage)
        assert await tables(gw.deps.readmodel) != live["tables"]
        code, out, err = await aragora(settings, "projections", "rebuild")
        assert code == 0, err
        assert f"rebuilt debates, ratings up to stream sequence {result.position}" in out
        await assert_unchanged(gw, live)

        # The live projector goes on from the rebuilt state: the rest of the partial
        # debate applies once, and its rating is counted once.
        partial = debates["partial"]
        await gw.publish(partial[3:])  # 3..6 again (duplicates), then the rest
        await gw.wait_for_seq(partial[0].debate_id, partial[-1].seq)
        await caught_up(gw)
        after = await snapshot(gw)
        assert after["views"][partial[0].debate_id]["status"] == "consensus"
        assert after["leaderboards"]["all"] != live["leaderboards"]["all"]
        games = {a["agent"]: a["games"] for a in after["leaderboards"]["all"]["agents"]}
        assert games == {"demo-1": 2, "demo-2": 3, "demo-3": 2, "demo-4": 1, "demo-5": 1}
        await rebuild.rebuild(settings)
        await assert_unchanged(gw, after)


async def test_rebuilding_one_projection_leaves_the_other_and_counts_each_rating_once(
    nats_server: EmbeddedNats,
    db_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = dataclasses.replace(db_settings, nats_url=nats_server.url)
    for name, value in cli_env(settings).items():
        monkeypatch.setenv(name, value)
    async with open_gateway(settings) as gw:
        await populate(gw)
        live = await snapshot(gw)

        # ratings alone: rebuilt from the completions the debate read model has applied
        await gw.deps.readmodel.run(lambda cur: cur.execute("DELETE FROM gw_ratings"))
        capsys.readouterr()
        assert await in_process("projections", "rebuild", "ratings") == 0
        out = capsys.readouterr().out
        assert out.startswith("rebuilt ratings up to") and "2 rated debates" in out
        await assert_unchanged(gw, live)

        # debates alone: the ratings already counted are not counted again
        result = await rebuild.rebuild(settings, rebuild.projection_names("debates"))
        assert (result.names, result.ratings) == (("debates",), 0)
        await assert_unchanged(gw, live)


async def test_rebuild_while_the_live_projector_is_busy_loses_nothing(
    nats_server: EmbeddedNats, db_settings: Settings
) -> None:
    settings = dataclasses.replace(db_settings, nats_url=nats_server.url)
    async with open_gateway(settings) as gw:
        streams = [debate_events(now=at(i)) for i in range(4)]

        async def publish_slowly() -> None:
            for i in range(max(len(s) for s in streams)):
                await gw.publish([s[i] for s in streams if i < len(s)])
                await asyncio.sleep(0.002)

        publishing = asyncio.create_task(publish_slowly())
        rebuilt = 0
        while not publishing.done():
            await rebuild.rebuild(settings)
            rebuilt += 1
        await publishing
        assert rebuilt >= 2
        for events in streams:
            # An event that met a rebuild's reset is redelivered with backoff (0.2 s,
            # 0.4 s, …): on a loaded machine that can take longer than the usual 5 s.
            view = await gw.wait_for_seq(events[0].debate_id, events[-1].seq, timeout=30)
            assert view["status"] == "consensus"
        await caught_up(gw)
        live = await snapshot(gw)
        games = {a["agent"]: a["games"] for a in live["leaderboards"]["all"]["agents"]}
        assert games == {"demo-1": 4, "demo-2": 4, "demo-3": 4}  # each debate counted once
        await rebuild.rebuild(settings)
        await assert_unchanged(gw, live)


async def publish_without_gateway(settings: Settings) -> list[DebateEvent]:
    """One debate's events and a fact of another subject, as the relay publishes them."""
    conn = await bus.connect(settings.nats_servers, name="test-relay", connect_timeout=5)
    try:
        await bus.ensure_streams(conn.js)
        events = debate_events()
        for event in events:
            subject = debate_event_subject(event)
            await bus.publish(conn.js, subject, codec.encode(event), event.event_id)
        await bus.publish(conn.js, "aragora.evt.agent.x.noise", b"{}", str(uuid.uuid4()))
        assert await rebuild.last_debate_seq(conn.js) == len(events)
        return events
    finally:
        await conn.close()


async def test_status_reports_how_far_behind_the_stream_each_projection_is(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, nats_url=nats_server.url)
    last = len(await publish_without_gateway(settings))
    code, out, err = await aragora(settings, "projections", "status")
    assert code == 0, err
    assert out.splitlines() == [
        f"stream ARAGORA_EVENTS: last sequence {last + 1}, last debate event {last}",
        "projection    position  state",
        f"debates              0  {last} debate events behind",
        f"ratings              0  {last} debate events behind",
        "live projector (gateway-projection): not created yet",
    ]


async def test_status_after_a_rebuild_and_after_the_gateway_catches_up(
    nats_server: EmbeddedNats,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = make_settings(tmp_path, nats_url=nats_server.url)
    events = await publish_without_gateway(settings)
    last = len(events)
    # The command in this process (a thread; cheaper than another interpreter).
    for name, value in cli_env(settings).items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    assert await in_process("projections", "rebuild", "debates") == 0
    assert capsys.readouterr().out.startswith(
        f"rebuilt debates up to stream sequence {last}: {last} messages read"
    )
    assert await in_process("projections", "status") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2:4] == [
        f"debates     {last:>10}  up to date",
        f"ratings              0  {last} debate events behind",
    ]

    # A gateway started now finds every event applied and catches up.
    async with open_gateway(settings) as gw:
        await caught_up(gw)
        view = await gw.view(events[0].debate_id)
        assert view is not None and view["last_seq"] == last
    assert await in_process("projections", "status") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2:] == [
        f"debates     {last:>10}  up to date",
        f"ratings     {last:>10}  up to date",
        "live projector (gateway-projection): 0 messages pending",
    ]


async def in_process(*argv: str) -> int:
    """``aragora ARGV`` in a worker thread of this process (it runs its own event loop)."""
    args = build_parser().parse_args(list(argv))
    return int(await asyncio.to_thread(args.func, args))


async def test_a_rebuild_that_would_lose_events_is_refused_and_changes_nothing(
    nats_server: EmbeddedNats,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = make_settings(tmp_path, nats_url=nats_server.url)
    for name, value in cli_env(settings).items():
        monkeypatch.setenv(name, value)
    async with open_gateway(settings) as gw:
        await populate(gw)
        live = await snapshot(gw)

        await gw.nats.js.purge_stream(EVENTS_STREAM.name)  # its first messages are gone
        with pytest.raises(rebuild.RebuildError, match="first messages are gone"):
            await rebuild.rebuild(settings)
        assert await in_process("projections", "rebuild") == 1
        assert "rebuild: refused: stream ARAGORA_EVENTS starts at" in capsys.readouterr().err

        await gw.nats.js.delete_stream(EVENTS_STREAM.name)  # a new, empty stream
        await bus.ensure_streams(gw.nats.js)
        with pytest.raises(rebuild.RebuildError, match="beyond the stream's last debate event"):
            await rebuild.rebuild(settings)
        await assert_unchanged(gw, live)


async def test_unreachable_nats_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"nats://127.0.0.1:{free_port()}"
    for name, value in cli_env(make_settings(tmp_path, nats_url=url)).items():
        monkeypatch.setenv(name, value)
    assert await in_process("projections", "status") == 2
    assert f"cannot reach NATS at {url}" in capsys.readouterr().err
