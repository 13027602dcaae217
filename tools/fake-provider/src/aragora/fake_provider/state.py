"""The fake provider's runtime configuration, counters and failure-injection decisions."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from typing import Literal

import msgspec

# "unparsable": a normal 200 completion whose content is prose where JSON was asked for.
# "overloaded": Anthropic's 529 ``overloaded_error`` (503 on the OpenAI and Gemini APIs).
# "quota": out of quota/credit as each API says it (OpenAI 429 ``insufficient_quota``,
# Anthropic 400 "credit balance is too low", Gemini 429 RESOURCE_EXHAUSTED "quota").
FailMode = Literal["timeout", "500", "429", "overloaded", "malformed", "unparsable", "quota"]


class FakeConfig(msgspec.Struct, kw_only=True):
    """How the server behaves; every field can be changed at runtime via ``/_fake/config``.

    ``fail_mode`` applies to the next ``fail_count`` requests, then with probability
    ``fail_rate``. ``hang_seconds`` is how long ``timeout`` mode holds a request.
    """

    latency_ms: int = 0
    fail_mode: FailMode | None = None
    fail_count: int = 0
    fail_rate: float = 0.0
    retry_after: float = 1.0
    hang_seconds: float = 600.0
    require_key: str | None = None


class ConfigPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of ``POST /_fake/config``: only the fields given change."""

    latency_ms: int | msgspec.UnsetType = msgspec.UNSET
    fail_mode: FailMode | msgspec.UnsetType | None = msgspec.UNSET
    fail_count: int | msgspec.UnsetType = msgspec.UNSET
    fail_rate: float | msgspec.UnsetType = msgspec.UNSET
    retry_after: float | msgspec.UnsetType = msgspec.UNSET
    hang_seconds: float | msgspec.UnsetType = msgspec.UNSET
    require_key: str | msgspec.UnsetType | None = msgspec.UNSET


class ConfigError(ValueError):
    """A config patch with values out of range."""


class FakeState:
    """Mutable server state. Handlers run on one event loop, so no locking is needed."""

    def __init__(self, initial: FakeConfig, seed: int = 0) -> None:
        self._initial = msgspec.structs.replace(initial)
        self._seed = seed
        self.generation = 0
        self.stopping = False  # set (from a signal handler) when the server shuts down
        self.reset()

    def reset(self) -> None:
        """Back to the startup configuration, with zeroed counters; ends pending hangs."""
        self.generation += 1
        self.config = msgspec.structs.replace(self._initial)
        self.requests = 0
        self.failures_injected = 0
        self.by_path: Counter[str] = Counter()
        self.completions = 0
        self._rng = random.Random(self._seed)

    def apply(self, patch: ConfigPatch) -> FakeConfig:
        """Merge ``patch`` into the configuration and return the result."""
        changes = {
            f: getattr(patch, f)
            for f in patch.__struct_fields__
            if getattr(patch, f) is not msgspec.UNSET
        }
        updated = msgspec.structs.replace(self.config, **changes)
        if updated.latency_ms < 0 or updated.fail_count < 0 or updated.retry_after < 0:
            raise ConfigError("latency_ms, fail_count and retry_after must be >= 0")
        if not 0.0 <= updated.fail_rate <= 1.0:
            raise ConfigError("fail_rate must be within [0, 1]")
        fresh_mode = updated.fail_mode is not None and "fail_mode" in changes
        if fresh_mode and updated.fail_count == 0 and updated.fail_rate == 0.0:
            # A mode with neither a count nor a rate means: fail every request.
            updated.fail_rate = 1.0
        self.config = updated
        return updated

    def record(self, path: str) -> None:
        """Count one API request."""
        self.requests += 1
        self.by_path[path] += 1

    async def hang(self, seconds: float) -> None:
        """Hold a request for ``seconds``, ending early on reset or shutdown."""
        # Polling (not an Event) because shutdown is signalled from a signal handler.
        generation = self.generation
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.stopping:
            if self.generation != generation:
                return
            await asyncio.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

    def next_failure(self) -> FailMode | None:
        """The failure to inject into this request, if any (consumes ``fail_count``)."""
        mode = self.config.fail_mode
        if mode is None:
            return None
        if self.config.fail_count > 0:
            self.config.fail_count -= 1
        elif not (self.config.fail_rate > 0 and self._rng.random() < self.config.fail_rate):
            return None
        self.failures_injected += 1
        return mode

    def stats(self) -> dict[str, object]:
        """What ``GET /_fake/stats`` shows."""
        return {
            "requests": self.requests,
            "failures_injected": self.failures_injected,
            "by_path": dict(self.by_path),
            "config": self.public_config(),
        }

    def public_config(self) -> dict[str, object]:
        """The configuration as JSON-ready data, with the required key masked."""
        shown: dict[str, object] = msgspec.to_builtins(self.config)
        if shown.get("require_key"):
            shown["require_key"] = "***"
        return shown
