"""kill -9 the gateway while WebSocket clients follow debates: each client still gets every
event exactly once, in seq order, the same record GET /events serves.

The clients are ``aragora.cli.client.follow_debate``: on a dropped connection they
reconnect with ``since=<last seq>`` and skip what they already have. The supervisor
restarts the gateway; its projection consumer resumes where the durable left off.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import pytest

from aragora.cli.client import Backoff, follow_debate
from tests.faults.conftest import (
    StackFactory,
    assert_all_exactly_once,
    post_debates,
    wait_all_finished,
    wait_for,
)

pytestmark = [pytest.mark.faults, pytest.mark.timeout(240)]

FOLLOWED = 6


class Follower:
    """One WebSocket client following one debate to its end, in a thread of its own."""

    def __init__(self, url: str, debate_id: str, token: str) -> None:
        self.url = url
        self.token = token
        self.debate_id = debate_id
        self.received: list[dict[str, Any]] = []
        self.reconnects: list[int] = []
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        async def follow() -> None:
            backoff = Backoff(initial=0.2, maximum=1.0, give_up_after=120.0)
            async for item in follow_debate(
                self.url,
                self.debate_id,
                backoff=backoff,
                token=self.token,
                on_reconnect=lambda seq, delay: self.reconnects.append(seq),
            ):
                self.received.append(json.loads(item.raw))

        try:
            asyncio.run(follow())
        except BaseException as exc:
            self.error = exc


def test_clients_get_every_event_once_across_a_gateway_crash(
    stack_factory: StackFactory,
) -> None:
    stack = stack_factory()
    ids = post_debates(stack, 12, rounds=3)
    followers = [Follower(stack.url, d, stack.token) for d in ids[:FOLLOWED]]
    for follower in followers:
        follower.thread.start()
    # Mid-stream: every client has some events and none has its debate's end.
    wait_for(lambda: all(len(f.received) >= 3 for f in followers), 60, "clients streaming", stack)
    assert all(f.thread.is_alive() for f in followers), "a debate ended before the crash"
    victim = stack.kill("gateway")
    killed_at = time.monotonic()
    stack.wait_restarted("gateway", victim, timeout=60)
    stack.wait_ready(timeout=60)
    print(f"gateway back {time.monotonic() - killed_at:.1f}s after the kill")
    for follower in followers:
        follower.thread.join(timeout=max(5.0, 150 - (time.monotonic() - killed_at)))
    print(f"clients done {time.monotonic() - killed_at:.1f}s after the kill")
    wait_all_finished(stack, ids, timeout=60)
    recorded = assert_all_exactly_once(stack, ids)
    for follower in followers:
        assert not follower.thread.is_alive(), f"client of {follower.debate_id} still waiting"
        assert follower.error is None, repr(follower.error)
        assert follower.reconnects, "the client never lost its connection: no crash seen"
        seqs = [e["seq"] for e in follower.received]
        assert seqs == list(range(1, len(seqs) + 1)), seqs
        assert follower.received == recorded[follower.debate_id]
