"""Fixtures of the end-to-end tier: one running stack per test module."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.stack import Stack

TERMINAL = {"debate.completed", "debate.failed"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("stack")).start()
    yield running
    assert running.stop() == 0, running.log()


def assert_exactly_once(events: list[dict[str, Any]]) -> None:
    """Contiguous seq from 1, one terminal event at the end, each turn resolved once."""
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert [e["type"] in TERMINAL for e in events].count(True) == 1
    assert events[-1]["type"] in TERMINAL
    asked = [
        t["turn_id"] for e in events if e["type"] == "debate.phase_started" for t in e["turns"]
    ]
    resolved = Counter(
        e["turn_id"] for e in events if e["type"] in ("debate.turn_completed", "debate.turn_failed")
    )
    assert len(asked) == len(set(asked))
    assert all(n == 1 for n in resolved.values()), resolved
    interrupted = events[-1].get("status") in ("timeout", "cancelled")
    if not interrupted:  # a timeout or cancel may end the debate with turns still out
        assert all(resolved[t] == 1 for t in asked), resolved
    assert set(resolved) <= set(asked)
