"""The local owner token: how `aragora serve`, the CLI and the web UI find each other.

As Jupyter does, `aragora serve` makes a random bearer token on first start when
ARAGORA_API_TOKEN is not set, keeps it in ``ARAGORA_DATA_DIR/api-token`` (mode 0600) and
hands it to the gateway as its service token (owner rights). Clients on the same machine
(`aragora ask`, `aragora users`, scripts) read it from there, so the stack is secure by
default and still works without copying secrets around. The token itself is never printed
or logged; the ready message shows ``$(cat <path>)`` instead.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from aragora.runtime.settings import Settings

TOKEN_FILE = "api-token"  # noqa: S105 (a file name, not a secret)


def token_path(settings: Settings) -> Path:
    return Path(settings.data_dir) / TOKEN_FILE


def ensure_local_token(settings: Settings) -> str:
    """ARAGORA_API_TOKEN, else the data dir's token (created once, readable by us only)."""
    if settings.api_token:
        return settings.api_token
    path = token_path(settings)
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    token = "aro_" + secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


def find_token(settings: Settings) -> str:
    """The token a local client should send: ARAGORA_API_TOKEN, else the data dir's."""
    if settings.api_token:
        return settings.api_token
    try:
        return token_path(settings).read_text().strip()
    except OSError:
        return ""
