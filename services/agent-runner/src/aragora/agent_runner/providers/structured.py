"""The one place where a turn's answer is parsed and, when unparsable, re-asked once.

Every provider exposes a lower-level ``complete(messages, deadline) -> Completion`` (one
call, transport retries included) and hands it to :func:`run_structured`, which builds the
prompt, parses the answer for the phase and builds the :class:`TurnOutput`.

Re-asking is a content concern, separate from transport retries: when the first answer
does not parse, the model gets its answer back with one short corrective message, and that
second call is one more provider call. It must end before the turn's deadline: it is not
started when less than :data:`REASK_MIN_S` is left, and it is cut off
:data:`REASK_MARGIN_S` before the deadline, so that the first answer is reported
(unstructured) rather than the whole turn timing out.
"""

from __future__ import annotations

import asyncio
import logging

from aragora.agent_runner.providers.base import CompleteFn, Completion, ProviderError, TurnOutput
from aragora.agent_runner.providers.parsing import AnswerError, Parsed, parse_answer
from aragora.agent_runner.providers.prompts import build_messages, reask_messages
from aragora.contracts.messages import RunTurn

log = logging.getLogger(__name__)

REASK_MIN_S = 0.05
REASK_MARGIN_S = 0.02


def turn_deadline(command: RunTurn, deadline: float | None = None) -> float:
    """``deadline``, or ``command.timeout_seconds`` from now, on the event loop's clock."""
    if deadline is not None:
        return deadline
    return asyncio.get_running_loop().time() + command.timeout_seconds


def _output(
    parsed: Parsed, calls: list[Completion], rejected: list[str], default_model: str
) -> TurnOutput:
    return TurnOutput(
        content=parsed.content,
        vote=parsed.vote,
        critiques=list(parsed.critiques),
        continue_debate=parsed.continue_debate,
        rejected_answers=rejected,
        model=calls[-1].model or default_model,
        prompt_tokens=sum(c.prompt_tokens for c in calls),
        completion_tokens=sum(c.completion_tokens for c in calls),
    )


def _unstructured(
    text: str, error: str, calls: list[Completion], rejected: list[str], default_model: str
) -> TurnOutput:
    return TurnOutput(
        content=text.strip(),
        structured=False,
        parse_error=error,
        rejected_answers=rejected,
        model=calls[-1].model or default_model,
        prompt_tokens=sum(c.prompt_tokens for c in calls),
        completion_tokens=sum(c.completion_tokens for c in calls),
    )


async def run_structured(
    complete: CompleteFn,
    command: RunTurn,
    *,
    persona: str = "",
    deadline: float | None = None,
    default_model: str = "",
    first_complete: CompleteFn | None = None,
) -> TurnOutput:
    """Ask for the turn's answer, parse it for the phase, re-ask once if it does not parse.

    ``first_complete`` (default ``complete``) makes the first call: a streaming one when
    the caller wants deltas. The re-ask, a correction, is never streamed.

    ``complete`` raises :class:`ProviderError` when the provider fails; that fails the turn
    on the first call. On the re-ask, a failure or the deadline ends the turn with the
    first answer, unstructured.
    """
    loop = asyncio.get_running_loop()
    end = turn_deadline(command, deadline)
    messages = build_messages(command, persona)
    first = await (first_complete or complete)(messages, end)
    calls = [first]
    try:
        return _output(parse_answer(first.text, command), calls, [], default_model)
    except AnswerError as exc:
        error = str(exc)
        if not exc.retryable:
            return _unstructured(first.text, error, calls, [], default_model)
    remaining = end - loop.time() - REASK_MARGIN_S
    if remaining < REASK_MIN_S:
        return _unstructured(
            first.text, f"{error} (no time left to re-ask)", calls, [], default_model
        )
    rejected = [first.text]
    try:
        async with asyncio.timeout(remaining):
            second = await complete(reask_messages(messages, first.text, error), end)
    except TimeoutError:
        detail = f"{error}; the re-ask did not finish before the turn deadline"
        return _unstructured(first.text, detail, calls, rejected, default_model)
    except ProviderError as exc:
        detail = f"{error}; the re-ask failed: {exc.detail}"
        return _unstructured(first.text, detail, calls, rejected, default_model)
    calls.append(second)
    try:
        return _output(parse_answer(second.text, command), calls, rejected, default_model)
    except AnswerError as exc:
        log.info("unparsable answer after a re-ask", extra={"phase": command.phase})
        return _unstructured(second.text, str(exc), calls, rejected, default_model)
