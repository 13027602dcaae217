"""The agent-runner's delta coalescer: time and size thresholds, on an injected clock."""

from __future__ import annotations

from aragora.agent_runner.streaming import MAX_CHARS, MAX_WAIT_S, DeltaCoalescer
from aragora.cli.client import parse_frame
from aragora.contracts import codec
from aragora.contracts.messages import TokenDelta
from tests.factories import run_turn


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def coalescer(clock: Clock) -> tuple[DeltaCoalescer, list[TokenDelta]]:
    sent: list[TokenDelta] = []

    async def publish(delta: TokenDelta) -> None:
        sent.append(delta)

    command = run_turn(phase="critique", agent="demo-2", round=2, turn_id="t9", debate_id="d9")
    return DeltaCoalescer(command, publish, clock=clock), sent


async def test_pieces_are_held_until_the_wait_elapses() -> None:
    clock = Clock()
    stream, sent = coalescer(clock)
    for piece in ("a", "b", "c"):
        await stream.add(piece)
        clock.now += 0.01
    assert sent == []
    clock.now = MAX_WAIT_S  # 50 ms since the start
    await stream.add("d")
    assert [(d.index, d.text, d.done) for d in sent] == [(0, "abcd", False)]
    await stream.add("e")  # the wait restarts at each publish
    assert len(sent) == 1
    clock.now = 1.0
    await stream.add("f")
    assert [(d.index, d.text) for d in sent] == [(0, "abcd"), (1, "ef")]


async def test_a_full_buffer_is_published_at_once() -> None:
    clock = Clock()
    stream, sent = coalescer(clock)
    await stream.add("x" * (MAX_CHARS - 1))
    assert sent == []
    await stream.add("yz")
    assert [(d.index, len(d.text)) for d in sent] == [(0, MAX_CHARS + 1)]


async def test_finish_publishes_the_rest_as_done_once() -> None:
    clock = Clock()
    stream, sent = coalescer(clock)
    await stream.add("Hello, ")
    await stream.add("world.")
    await stream.finish()
    await stream.finish()
    await stream.add("late")
    assert len(sent) == 1
    delta = sent[0]
    assert (delta.index, delta.text, delta.done) == (0, "Hello, world.", True)
    assert (delta.debate_id, delta.turn_id, delta.agent) == ("d9", "t9", "demo-2")
    assert (delta.round, delta.phase) == (2, "critique")


async def test_after_a_publish_finish_sends_an_empty_done_delta() -> None:
    clock = Clock()
    stream, sent = coalescer(clock)
    clock.now = 1.0
    await stream.add("all of it")
    await stream.finish()
    assert [(d.index, d.text, d.done) for d in sent] == [(0, "all of it", False), (1, "", True)]


async def test_nothing_is_published_when_nothing_streamed() -> None:
    stream, sent = coalescer(Clock())
    await stream.add("")
    await stream.finish()
    assert sent == []


async def test_a_failing_publish_never_fails_the_turn() -> None:
    async def broken(delta: TokenDelta) -> None:
        raise ConnectionError("nats is down")

    stream = DeltaCoalescer(run_turn(), broken, clock=Clock())
    await stream.add("x" * MAX_CHARS)
    await stream.finish()
    assert stream.index == 2


def test_aragora_ask_ignores_token_delta_frames() -> None:
    delta = TokenDelta(
        debate_id="d9", turn_id="t9", agent="a", round=1, phase="propose", index=0, text="Hi"
    )
    assert parse_frame(codec.encode(delta)) is None
    assert parse_frame(codec.encode(delta).decode()) is None
