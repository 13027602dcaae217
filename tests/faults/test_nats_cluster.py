"""A 3-node NATS cluster loses a node mid-run: every debate still completes exactly once.

Three nats-servers from the wheel form a cluster on loopback (routes on free ports,
JetStream with a store each, unique ``server_name``). The whole stack runs against the
three URLs with ``ARAGORA_STREAM_REPLICAS=3``; one node is SIGKILLed while a batch of
debates is under way. The streams (and the breakers' KV bucket) keep a quorum of two, the
clients reconnect to a live node, and no debate is lost or doubled.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import nats
import pytest

from aragora.contracts.subjects import COMMANDS_STREAM, EVENTS_STREAM
from aragora.runtime.natsserver import free_port, nats_server_binary, port_open
from tests.e2e.stack import Stack
from tests.faults.conftest import (
    StackFactory,
    assert_all_exactly_once,
    post_debates,
    wait_all_finished,
    wait_for,
)

pytestmark = [pytest.mark.faults, pytest.mark.timeout(150)]


@dataclass
class Node:
    name: str
    port: int
    cluster_port: int
    store: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, peers: list[Node]) -> None:
        self.store.mkdir(parents=True, exist_ok=True)
        routes = ", ".join(f"nats://127.0.0.1:{p.cluster_port}" for p in peers if p is not self)
        config = self.store / "nats.conf"
        config.write_text(
            f'server_name: "{self.name}"\n'
            f'listen: "127.0.0.1:{self.port}"\n'
            f'jetstream {{\n  store_dir: "{self.store}"\n}}\n'
            f'cluster {{\n  name: "aragora-test"\n  listen: "127.0.0.1:{self.cluster_port}"\n'
            f"  routes: [{routes}]\n}}\n"
        )
        log = self.store / "nats.log"
        self.process = subprocess.Popen(
            [str(nats_server_binary()), "-c", str(config), "-l", str(log)],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


async def _jetstream_ready(urls: list[str]) -> bool:
    try:
        nc = await nats.connect(servers=urls, connect_timeout=2, max_reconnect_attempts=0)
    except Exception:
        return False
    try:
        await nc.jetstream().account_info()  # answers only once a meta leader is elected
        return True
    except Exception:
        return False
    finally:
        await nc.close()


async def _replicas(urls: list[str]) -> dict[str, int]:
    nc = await nats.connect(servers=urls, connect_timeout=5)
    try:
        js = nc.jetstream()
        found = {}
        for name in (EVENTS_STREAM.name, COMMANDS_STREAM.name):
            info = await js.stream_info(name)
            found[name] = info.config.num_replicas or 1
        return found
    finally:
        await nc.close()


async def _leader(urls: list[str], stream: str) -> str:
    nc = await nats.connect(servers=urls, connect_timeout=5)
    try:
        info = await nc.jetstream().stream_info(stream)
        assert info.cluster is not None and info.cluster.leader
        return str(info.cluster.leader)
    finally:
        await nc.close()


def post_until_accepted(stack: Stack, topic: str, within: float = 30.0) -> str:
    """POST a debate as a careful client does: retry with one Idempotency-Key until 202.

    The gateway retries its publish while the stream has no leader (bus.publish); if the
    election outlasts that, the client's retry with the same key is still one debate."""
    key = str(uuid.uuid4())
    deadline = time.monotonic() + within
    while True:
        try:
            response = stack.http.post(
                f"{stack.url}/api/debates",
                json={"topic": topic, "rounds": 1},
                headers={"Idempotency-Key": key},
                timeout=10,
            )
            if response.status_code == 202:
                debate_id: str = response.json()["id"]
                return debate_id
            failure = response.text
        except httpx.HTTPError as exc:
            failure = repr(exc)
        assert time.monotonic() < deadline, f"{topic!r} not accepted: {failure}\n{stack.log()}"
        time.sleep(0.5)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[list[Node]]:
    nodes = [Node(f"n{i}", free_port(), free_port(), tmp_path / f"nats-n{i}") for i in (1, 2, 3)]
    for node in nodes:
        node.start(nodes)
    try:
        wait_for(lambda: all(port_open("127.0.0.1", n.port) for n in nodes), 15, "nodes up")
        urls = [n.url for n in nodes]
        wait_for(lambda: asyncio.run(_jetstream_ready(urls)), 30, "JetStream meta leader")
        yield nodes
    finally:
        for node in nodes:
            node.stop()


def test_every_debate_completes_once_when_a_cluster_node_dies(
    cluster: list[Node], stack_factory: StackFactory
) -> None:
    urls = [n.url for n in cluster]
    stack = stack_factory(env={"ARAGORA_NATS_URL": ",".join(urls), "ARAGORA_STREAM_REPLICAS": "3"})
    assert asyncio.run(_replicas(urls)) == {EVENTS_STREAM.name: 3, COMMANDS_STREAM.name: 3}
    ids = post_debates(stack, 12, rounds=2, tag="cluster ")
    wait_for(lambda: all(len(stack.events(d)) >= 3 for d in ids), 30, "debates under way", stack)

    # Kill the events stream's leader: the stream (and whatever else that node led) must
    # elect a new leader among the other two while publishes and consumers are busy.
    leader = asyncio.run(_leader(urls, EVENTS_STREAM.name))
    [victim] = [n for n in cluster if n.name == leader]
    killed_at = time.monotonic()
    victim.kill()
    later = [post_until_accepted(stack, f"After the kill {i}: still on?") for i in range(3)]
    wait_all_finished(stack, ids + later, timeout=90)
    print(f"all debates ended {time.monotonic() - killed_at:.1f}s after the node was killed")
    assert_all_exactly_once(stack, ids + later)
