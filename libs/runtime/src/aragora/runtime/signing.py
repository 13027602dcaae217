"""The Ed25519 seed that signs decision receipts: from settings, else a key file.

``ARAGORA_RECEIPT_SIGNING_KEY`` (base64 of the 32-byte seed) wins. Without it the seed
lives in ``ARAGORA_DATA_DIR/receipt-signing.key`` (base64, mode 0600), generated on first
use. The key itself is never logged nor put in an error message.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import os
import secrets
from pathlib import Path

from aragora.runtime.settings import Settings, SettingsError

KEY_FILE_NAME = "receipt-signing.key"
SEED_BYTES = 32

log = logging.getLogger("aragora.signing")


def key_file(settings: Settings) -> Path:
    """Where the generated signing key is kept."""
    return settings.data_dir / KEY_FILE_NAME


def load_signing_seed(settings: Settings) -> bytes:
    """The 32-byte Ed25519 seed (blocking file I/O: call it from a worker thread)."""
    if settings.receipt_signing_key:
        seed = _decode(settings.receipt_signing_key)
        if seed is None:
            raise SettingsError(
                "ARAGORA_RECEIPT_SIGNING_KEY must be base64 of a 32-byte Ed25519 seed"
            )
        return seed
    path = key_file(settings)
    if not path.exists():
        _generate(path)
    return _read(path)


def _decode(text: str) -> bytes | None:
    try:
        seed = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return seed if len(seed) == SEED_BYTES else None


def _read(path: Path) -> bytes:
    try:
        seed = _decode(path.read_text(encoding="ascii"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"cannot read the receipt signing key {path}: {exc}") from None
    if seed is None:
        raise SettingsError(
            f"{path} must hold base64 of a 32-byte Ed25519 seed "
            "(or set ARAGORA_RECEIPT_SIGNING_KEY)"
        )
    return seed


def _generate(path: Path) -> None:
    """Write a new seed to ``path`` atomically, mode 0600; a concurrent writer's key wins."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, base64.b64encode(secrets.token_bytes(SEED_BYTES)) + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # atomic, and refuses to replace a key another process wrote
    except FileExistsError:
        return
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    log.info("generated a receipt signing key at %s", path, extra={"path": str(path)})
