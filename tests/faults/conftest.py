"""Fixtures and checks of the fault-injection tier: whole stacks to break on purpose.

``stack_factory`` starts ``aragora serve`` stacks (any env, any number of runners) and
stops them after the test; the helpers post batches of debates, wait for all of them to end
(polling with generous deadlines: the machine is small and shared) and check that every
debate was recorded exactly once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import TERMINAL, assert_exactly_once
from tests.e2e.stack import Stack

FAULT_ENV = {
    # Turns take a little while, so a batch of debates lasts a few seconds: long enough
    # to kill something in the middle of it.
    "ARAGORA_DEMO_LATENCY_MS": "150",
}
"""The environment fault tests run the stack with (each test may add to it)."""

StackFactory = Callable[..., Stack]


@pytest.fixture
def stack_factory(tmp_path: Path) -> Iterator[StackFactory]:
    """``make(env=None, runners=1, start_timeout=90)`` starts a stack; all stop at teardown.

    ``env`` is added to :data:`FAULT_ENV`. Teardown asserts each stack stops cleanly
    (``aragora serve`` exits 0 and no service had to be killed for not stopping), which a
    fault that wedged a service would break.
    """
    stacks: list[Stack] = []

    def make(
        env: dict[str, str] | None = None, runners: int = 1, start_timeout: float = 90.0
    ) -> Stack:
        home = tmp_path / f"stack-{len(stacks)}"
        home.mkdir()
        stack = Stack(home, env={**FAULT_ENV, **(env or {})}, runners=runners)
        stacks.append(stack)
        return stack.start(timeout=start_timeout)

    yield make
    codes = [(stack, stack.stop()) for stack in stacks]
    for stack, code in codes:
        assert code == 0, stack.log()
        # The supervisor still exits 0 when it had to SIGKILL a service that hung on stop.
        hung = [line for line in stack.log_path.read_text().splitlines() if "did not stop" in line]
        assert not hung, hung


def post_debates(stack: Stack, count: int, *, rounds: int = 2, tag: str = "") -> list[str]:
    """Start ``count`` debates with distinct topics (posted concurrently); returns their ids."""
    topics = [f"Fault drill {tag}{i}: should we adopt practice {i}?" for i in range(count)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda topic: stack.post_debate(topic=topic, rounds=rounds), topics))


def running(stack: Stack, debate_ids: list[str]) -> list[str]:
    """The debates whose read-model view is not yet terminal."""
    return [d for d in debate_ids if stack.debate(d)["status"] in ("queued", "running")]


def wait_all_finished(
    stack: Stack, debate_ids: list[str], timeout: float = 100.0
) -> dict[str, dict[str, Any]]:
    """Poll until every debate's view is terminal and its events end with the terminal event.

    Returns the final views. Fails with the stuck debates and the stack's log.
    """
    deadline = time.monotonic() + timeout
    pending = list(debate_ids)
    views: dict[str, dict[str, Any]] = {}
    while pending and time.monotonic() < deadline:
        still = []
        for debate_id in pending:
            try:
                view = stack.debate(debate_id)
                events = (
                    stack.events(debate_id) if view["status"] not in ("queued", "running") else []
                )
            except Exception:  # the gateway may be restarting: ask again
                still.append(debate_id)
                continue
            if events and events[-1]["type"] in TERMINAL:
                views[debate_id] = view
            else:
                still.append(debate_id)
        pending = still
        if pending:
            time.sleep(0.25)
    if pending:
        raise AssertionError(
            f"{len(pending)} debate(s) not finished in {timeout:.0f}s: {pending[:5]}\n{stack.log()}"
        )
    return views


def assert_all_exactly_once(stack: Stack, debate_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Each debate: seq 1..n without gap or duplicate, one terminal event (the last), each
    turn resolved once in the events and recorded once in the view. Returns the events."""
    recorded = {}
    for debate_id in debate_ids:
        events = stack.events(debate_id)
        try:
            assert_exactly_once(events)
        except AssertionError as exc:
            raise AssertionError(f"debate {debate_id}: {exc}\n{events}") from exc
        view = stack.debate(debate_id)
        assert view["status"] not in ("queued", "running"), view
        turn_ids = [t["turn_id"] for t in view["turns"]]
        assert len(turn_ids) == len(set(turn_ids)), f"debate {debate_id}: a turn recorded twice"
        assert view["status"] == events[-1]["status"], (view["status"], events[-1])
        recorded[debate_id] = events
    return recorded


def wait_for(
    condition: Callable[[], bool], timeout: float, what: str, stack: Stack | None = None
) -> float:
    """Poll ``condition`` until true; returns the seconds it took. Fails after ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if condition():
                return time.monotonic() - started
        except Exception:  # a service restarting: try again
            pass
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout:.0f}s\n{stack.log() if stack else ''}")
