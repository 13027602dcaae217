"""What the gateway's handlers need, built once in the app's lifespan."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aragora.gateway.live import LiveHub
from aragora.gateway.readmodel import ReadModel
from aragora.runtime.agents import AgentRegistry
from aragora.runtime.breakers import KVBreakerStore
from aragora.runtime.bus import Connection
from aragora.runtime.settings import Settings

if TYPE_CHECKING:
    from aragora.gateway.auth import Authenticator
    from aragora.gateway.ratelimit import RateLimitGate


@dataclass
class Deps:
    settings: Settings
    registry: AgentRegistry
    readmodel: ReadModel
    hub: LiveHub
    bus: Connection | None = None
    started: float = field(default_factory=time.monotonic)
    breakers: KVBreakerStore | None = None  # bound to ``bus`` on first use
    breaker_summary: tuple[float, dict[str, int]] | None = None  # (monotonic, counts)
    ratelimit: RateLimitGate | None = None  # set by create_app
    auth: Authenticator | None = None  # built in ``running`` once the database is open
