"""The agent-runner's answers to the operator debug requests (``aragora.rpc.agent.*``).

``agent.test`` builds the agent's provider and runs one plain completion of a prompt (no
debate, no structured parsing, no circuit breaker) within the request's timeout, capped at
:data:`~aragora.contracts.rpc.TEST_TIMEOUT_CAP_SECONDS`; a provider failure is part of the
answer (``error`` + ``detail``, never the key). ``agent.connectivity`` checks, for each
configured non-demo agent's base URL: DNS, TCP connect, the TLS handshake (https only) and
an auth probe (a cheap authenticated ``GET .../models``), each with a short timeout.

Subscriptions are core NATS in the queue group ``agent-runner``, so exactly one replica
answers a request; each request is served in its own task so a slow agent test does not
hold up the others.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from aragora.agent_runner.providers import (
    AnthropicProvider,
    ChatMessage,
    Completion,
    DemoProvider,
    GeminiProvider,
    LLMProvider,
    OpenAICompatibleProvider,
    ProviderError,
    build_provider,
)
from aragora.agent_runner.providers.http_retry import HttpProvider, error_message
from aragora.contracts import subjects
from aragora.contracts.messages import RunTurn
from aragora.contracts.rpc import (
    TEST_TIMEOUT_CAP_SECONDS,
    AgentConnectivity,
    AgentRpcRequest,
    AgentTestReply,
    AgentTestRequest,
    ConnectivityReply,
    ConnectivityRequest,
    ConnectivityStep,
)
from aragora.runtime.agents import (
    DEFAULT_ANTHROPIC_BASE_URL,
    DEFAULT_GEMINI_BASE_URL,
    DEFAULT_OPENAI_BASE_URL,
    AgentRegistry,
    AgentSpec,
)
from aragora.runtime.settings import Settings

log = logging.getLogger("aragora.agent.rpc")
OFFLINE = "offline (no network needed)"
_decoder = msgspec.json.Decoder(AgentRpcRequest)
_encoder = msgspec.json.Encoder()


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


class AgentRpc:
    """Answers agent tests and connectivity checks from this runner's registry."""

    def __init__(self, registry: AgentRegistry, settings: Settings, http: httpx.AsyncClient):
        self.registry = registry
        self.settings = settings
        self.http = http
        self._subscriptions: list[Subscription] = []
        self._tasks: set[asyncio.Task[None]] = set()

    # --- wiring ---------------------------------------------------------------------------

    async def start(self, nc: NATS) -> None:
        for subject in (subjects.AGENT_TEST_RPC, subjects.AGENT_CONNECTIVITY_RPC):
            sub = await nc.subscribe(subject, queue=subjects.AGENT_RPC_QUEUE, cb=self._on_msg)
            self._subscriptions.append(sub)

    async def stop(self) -> None:
        for sub in self._subscriptions:
            try:
                await sub.unsubscribe()
            except Exception as exc:  # a closed connection has nothing left to unsubscribe
                log.debug("rpc unsubscribe failed: %s", exc)
        self._subscriptions.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _on_msg(self, msg: Msg) -> None:
        task = asyncio.create_task(self._answer(msg), name=f"rpc {msg.subject}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, msg: Msg) -> None:
        if not msg.reply:
            return
        try:
            request = _decoder.decode(msg.data)
        except msgspec.DecodeError as exc:
            log.warning("undecodable rpc request on %s: %s", msg.subject, exc)
            return
        reply: msgspec.Struct
        if isinstance(request, AgentTestRequest):
            reply = await self.agent_test(request)
        else:
            reply = await self.connectivity(request)
        try:
            await msg.respond(_encoder.encode(reply))
        except Exception as exc:
            log.warning("could not answer %s: %s", msg.subject, exc)

    # --- agent test -----------------------------------------------------------------------

    async def agent_test(self, request: AgentTestRequest) -> AgentTestReply:
        spec = self.registry.get(request.agent)
        if spec is None:
            return AgentTestReply(
                agent=request.agent,
                error="unknown_agent",
                detail=f"agent {request.agent!r} is not in this runner's registry",
            )
        timeout = max(0.001, min(request.timeout_seconds, TEST_TIMEOUT_CAP_SECONDS))
        provider = build_provider(spec, self.settings, self.http)
        started = time.monotonic()
        try:
            deadline = asyncio.get_running_loop().time() + timeout
            async with asyncio.timeout_at(deadline):
                completion = await _complete(provider, spec, request, deadline)
        except TimeoutError:
            return _failed(spec, provider, "timeout", f"no answer within {timeout:g}s", started)
        except ProviderError as exc:
            return _failed(spec, provider, exc.reason, exc.detail, started)
        finally:
            await provider.aclose()
        log.info("agent_test", extra={"agent": spec.name, "latency_ms": _ms(started)})
        return AgentTestReply(
            agent=spec.name,
            provider=provider.kind,
            model=completion.model or spec.model,
            text=completion.text,
            latency_ms=_ms(started),
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
        )

    # --- connectivity ---------------------------------------------------------------------

    async def connectivity(self, request: ConnectivityRequest) -> ConnectivityReply:
        names = request.agents or sorted(self.registry.agents)
        specs = [s for n in names if (s := self.registry.get(n)) is not None]
        timeout = max(0.001, request.step_timeout_seconds)
        results = await asyncio.gather(*(self._check(spec, timeout) for spec in specs))
        return ConnectivityReply(agents={s.name: r for s, r in zip(specs, results, strict=True)})

    async def _check(self, spec: AgentSpec, timeout: float) -> AgentConnectivity:
        if spec.provider == "demo":
            return AgentConnectivity(provider="demo", status=OFFLINE)
        provider = build_provider(spec, self.settings, self.http)
        base_url = _base_url(spec, self.settings)
        parts = urlsplit(base_url)
        host = parts.hostname or ""
        https = parts.scheme == "https"
        port = parts.port or (443 if https else 80)
        skipped = ConnectivityStep(status="skipped", detail="an earlier step failed")
        dns = await _step(timeout, lambda: _resolve(host, port))
        tcp = tls = auth = skipped
        if dns.status == "ok":
            tcp = await _step(timeout, lambda: _connect(host, port, None))
        if tcp.status == "ok":
            tls = (
                await _step(timeout, lambda: _connect(host, port, ssl.create_default_context()))
                if https
                else ConnectivityStep(status="skipped", detail="http: no TLS")
            )
        if tls.status != "error" and tcp.status == "ok":
            auth = await _step(timeout, lambda: self._auth_probe(provider, base_url, timeout))
        await provider.aclose()
        steps = (dns, tcp, tls, auth)
        return AgentConnectivity(
            provider=spec.provider,
            status="error" if any(s.status == "error" for s in steps) else "ok",
            model=getattr(provider, "_model", spec.model),
            base_url=base_url,
            dns=dns,
            tcp=tcp,
            tls=tls,
            auth=auth,
        )

    async def _auth_probe(self, provider: LLMProvider, base_url: str, timeout: float) -> str:
        url = _models_url(provider, base_url)
        if url is None or not isinstance(provider, HttpProvider):
            raise _Skipped("this provider has no cheap authenticated endpoint")
        headers = {k: v for k, v in provider._headers().items() if k.lower() != "content-type"}
        response = await self.http.get(url, headers=headers, timeout=timeout)
        if response.status_code < 400:
            return f"GET {urlsplit(url).path}: HTTP {response.status_code}"
        message = provider._redact(error_message(response))
        raise RuntimeError(f"GET {urlsplit(url).path}: HTTP {response.status_code}: {message}")


class _Skipped(Exception):
    pass


async def _step(timeout: float, action: Callable[[], Awaitable[str]]) -> ConnectivityStep:
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            detail = await action()
    except _Skipped as exc:
        return ConnectivityStep(status="skipped", detail=str(exc))
    except TimeoutError:
        return ConnectivityStep(
            status="error", detail=f"timed out after {timeout:g}s", latency_ms=_ms(started)
        )
    except Exception as exc:
        detail = f"{type(exc).__name__}: {exc}"[:300]
        return ConnectivityStep(status="error", detail=detail, latency_ms=_ms(started))
    return ConnectivityStep(status="ok", detail=detail, latency_ms=_ms(started))


async def _resolve(host: str, port: int) -> str:
    if not host:
        raise ValueError("the base URL has no host")
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, proto=6)
    addresses = sorted({str(info[4][0]) for info in infos})
    return ", ".join(addresses)


async def _connect(host: str, port: int, context: ssl.SSLContext | None) -> str:
    _, writer = await asyncio.open_connection(
        host, port, ssl=context, server_hostname=host if context else None
    )
    try:
        peer: Any = writer.get_extra_info("peername")
        version = writer.get_extra_info("ssl_object")
        if context is not None and version is not None:
            return f"{version.version()} to {host}:{port}"
        return f"connected to {peer[0]}:{peer[1]}" if peer else f"connected to {host}:{port}"
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (OSError, ssl.SSLError):
            pass


def _base_url(spec: AgentSpec, settings: Settings) -> str:
    """The base URL ``build_provider`` uses for ``spec``."""
    if spec.base_url:
        return spec.base_url
    if spec.provider == "anthropic":
        return settings.anthropic_base_url or DEFAULT_ANTHROPIC_BASE_URL
    if spec.provider == "gemini":
        return settings.gemini_base_url or DEFAULT_GEMINI_BASE_URL
    return settings.openai_base_url or DEFAULT_OPENAI_BASE_URL


def _models_url(provider: LLMProvider, base_url: str) -> str | None:
    """The API's model list: cheap, authenticated, and free of charge."""
    base = base_url.rstrip("/")
    if isinstance(provider, OpenAICompatibleProvider):
        return base + "/models"
    if isinstance(provider, AnthropicProvider):
        return base + ("/models" if base.endswith("/v1") else "/v1/models")
    if isinstance(provider, GeminiProvider):
        return base + ("/models" if base.endswith(("/v1beta", "/v1")) else "/v1beta/models")
    return None


async def _complete(
    provider: LLMProvider, spec: AgentSpec, request: AgentTestRequest, deadline: float
) -> Completion:
    messages: list[ChatMessage] = [{"role": "user", "content": request.prompt}]
    if isinstance(provider, HttpProvider):
        return await provider.complete(messages, deadline)
    if isinstance(provider, DemoProvider):
        # The demo agent answers a turn: the prompt becomes the topic of a proposal.
        turn = RunTurn(
            event_id=str(uuid.uuid4()),
            occurred_at=datetime.now(UTC),
            correlation_id=f"agent-test-{uuid.uuid4().hex[:12]}",
            turn_id=str(uuid.uuid4()),
            debate_id="agent-test",
            round=1,
            phase="propose",
            agent=spec.name,
            stance="neutral",
            topic=request.prompt,
            timeout_seconds=request.timeout_seconds,
        )
        return await provider.complete(turn, messages)
    raise ProviderError("provider_error", f"{provider.kind}: no plain completion available")


def _failed(
    spec: AgentSpec, provider: LLMProvider, error: str, detail: str, started: float
) -> AgentTestReply:
    log.info("agent_test", extra={"agent": spec.name, "outcome": error})
    return AgentTestReply(
        agent=spec.name,
        provider=provider.kind,
        model=getattr(provider, "_model", spec.model),
        error=error,
        detail=detail,
        latency_ms=_ms(started),
    )
