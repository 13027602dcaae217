"""kill -9 the orchestrator at random points while 20 debates run; nothing is lost or doubled.

The supervisor restarts it; it recovers its unfinished debates from the event store, its
relay re-publishes what it had not marked relayed (JetStream drops the duplicates by msg
id), and the messages it had taken but not acked are redelivered (after ``ack_wait``).
K kills by default, ARAGORA_SOAK=1 for 20. ARAGORA_FAULT_SEED replays a schedule.
"""

from __future__ import annotations

import os
import random
import time

import pytest

from tests.faults.conftest import (
    StackFactory,
    assert_all_exactly_once,
    post_debates,
    running,
    wait_all_finished,
)

SOAK = os.environ.get("ARAGORA_SOAK") == "1"
KILLS = 20 if SOAK else 3
KILLS_PER_BATCH = 3
DEBATES = 20

pytestmark = [pytest.mark.faults, pytest.mark.timeout(3600 if SOAK else 240)]


def test_orchestrator_killed_at_random_points_loses_and_doubles_nothing(
    stack_factory: StackFactory,
) -> None:
    seed = int(os.environ.get("ARAGORA_FAULT_SEED") or random.randrange(2**32))
    print(f"orchestrator kills: seed={seed} (ARAGORA_FAULT_SEED={seed} replays it)")
    rng = random.Random(seed)
    stack = stack_factory(env={"ARAGORA_DEMO_LATENCY_MS": "400"})  # a batch lasts ~5 s
    kills, batch = 0, 0
    while kills < KILLS:
        ids = post_debates(stack, DEBATES, rounds=3, tag=f"b{batch}-")
        for nth in range(min(KILLS_PER_BATCH, KILLS - kills)):
            # A random kill point: early in the batch, then anywhere from the restarted
            # process's start-up (recovering its debates) to the middle of a phase. Not a
            # timing assumption: every point is fair, the batch just has to be running.
            time.sleep(rng.uniform(0.3, 2.5) if nth == 0 else rng.uniform(0.5, 3.0))
            if not running(stack, ids):
                break  # the batch ended first: the next kill falls in the next batch
            old = stack.kill("orchestrator")
            kills += 1
            print(f"kill {kills}/{KILLS}: orchestrator pid {old} (batch {batch})")
            stack.wait_restarted("orchestrator", old, timeout=90)
        started = time.monotonic()
        wait_all_finished(stack, ids, timeout=150)
        print(f"batch {batch} over {time.monotonic() - started:.1f}s after its last kill")
        recorded = assert_all_exactly_once(stack, ids)
        print(f"batch {batch}: {len(ids)} debates, {sum(map(len, recorded.values()))} events")
        batch += 1
    assert "orchestrator exited with -9" in stack.log_path.read_text()
