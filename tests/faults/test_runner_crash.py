"""kill -9 one of two agent-runner replicas mid-run: every turn still runs, and counts once.

The turns the dead replica had taken are redelivered (after the consumer's ack_wait) to
whichever replica pulls next; a result published twice carries the same msg id (derived
from the turn id) and the orchestrator ignores a result for a settled turn.
"""

from __future__ import annotations

import time

import pytest

from tests.faults.conftest import (
    StackFactory,
    assert_all_exactly_once,
    post_debates,
    wait_all_finished,
    wait_for,
)

pytestmark = [pytest.mark.faults, pytest.mark.timeout(240)]


def test_a_killed_runner_replica_loses_and_doubles_no_turn(stack_factory: StackFactory) -> None:
    stack = stack_factory(runners=2)
    pids = stack.named_pids()
    assert {"agent-runner-1", "agent-runner-2"} <= set(pids), pids
    ids = post_debates(stack, 20, rounds=3)
    # Mid-run: every debate has started and none has finished.
    wait_for(lambda: all(len(stack.events(d)) >= 4 for d in ids), 60, "debates under way", stack)
    victim = stack.kill("agent-runner-1")
    killed_at = time.monotonic()
    assert [stack.debate(d)["status"] for d in ids].count("running") > 0
    replacement = stack.wait_restarted("agent-runner-1", victim, timeout=60)
    print(f"agent-runner-1: pid {victim} killed, {replacement} back after "
          f"{time.monotonic() - killed_at:.1f}s")  # fmt: skip
    views = wait_all_finished(stack, ids, timeout=150)
    print(f"all {len(ids)} debates over {time.monotonic() - killed_at:.1f}s after the kill")
    assert_all_exactly_once(stack, ids)
    # Nothing was lost either: every turn ran (none timed out waiting for a dead runner).
    for debate_id, view in views.items():
        assert view["status"] in ("consensus", "no_consensus"), (debate_id, view["status"])
        assert all(t["status"] == "completed" for t in view["turns"]), (debate_id, view["turns"])
    # The other replica was never restarted.
    assert stack.named_pids()["agent-runner-2"] == pids["agent-runner-2"]
