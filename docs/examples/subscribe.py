"""Follow every Aragora debate from outside the project, with nothing but nats-py.

    pip install nats-py
    python subscribe.py nats://127.0.0.1:4250        # the embedded default of `make serve`

Debate events are JSON on subjects ``aragora.evt.debate.<debate_id>.<event>`` in the
JetStream stream ARAGORA_EVENTS; ``type`` is the stable tag and ``seq`` is contiguous per
debate. The full contract is served at http://localhost:8080/api/asyncapi.json.
"""

import asyncio
import json
import sys

import nats


async def main(url: str, limit: int) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    # An ordered consumer replays the stream from the start, then follows it live.
    sub = await js.subscribe("aragora.evt.debate.>", ordered_consumer=True)
    seen = 0
    async for msg in sub.messages:
        event = json.loads(msg.data)
        line = f"{event['debate_id'][:8]} #{event['seq']:<3} {event['type']}"
        if event["type"] == "debate.completed":
            line += f" -> {event['status']} ({event['consensus']['agreement_ratio']:.0%})"
        print(line, flush=True)
        seen += 1
        if limit and seen >= limit:
            break
    await nc.drain()


if __name__ == "__main__":
    asyncio.run(
        main(
            sys.argv[1] if len(sys.argv) > 1 else "nats://127.0.0.1:4250",
            int(sys.argv[2]) if len(sys.argv) > 2 else 0,
        )
    )
