"""The gateway benchmark's baseline: a minimal Litestar app with the same three routes,
served by uvicorn with the gateway's server settings (one process, same loop and HTTP
implementation, no access log). ``python -m bench.baseline_app PORT``."""

from __future__ import annotations

import sys
import uuid
from typing import Any

import msgspec
import uvicorn
from litestar import Litestar, get, post


class Body(msgspec.Struct):
    topic: str
    agents: list[str] | None = None
    rounds: int | None = None


@get("/api/health")
async def health() -> dict[str, Any]:
    return {"status": "healthy", "checks": {}}


@get("/api/debates/{debate_id:str}")
async def debate(debate_id: str) -> dict[str, Any]:
    return {"id": debate_id, "status": "running", "topic": "t", "agents": [], "rounds": 3}


@post("/api/debates", status_code=202)
async def create(data: Body) -> dict[str, str]:
    return {"id": str(uuid.uuid4()), "status": "running"}


def main() -> None:
    app = Litestar([health, debate, create], openapi_config=None)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_config=None,
        access_log=False,
        lifespan="off",
        ws_max_size=65536,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
