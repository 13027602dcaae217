"""The audit log's hash chain: pure functions, no I/O.

Each row's ``hash`` is the SHA-256 of its canonical form: a JSON object of every stored
column but ``hash`` itself (``prev_hash`` included), keys sorted, no whitespace. Row ``n``
stores the ``hash`` of row ``n - 1`` as its ``prev_hash`` (64 zeros for row 1). Changing
any stored value of a row breaks its own hash; deleting or re-ordering rows breaks the
next row's link or leaves a gap in ``seq``; rewriting a row *and* its hash breaks the link
of the row after it. Verification walks the rows in ``seq`` order and reports the first
row where any of this fails.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import msgspec

from aragora.contracts.security import AuditEntry, ChainBreak, SecurityEvent

GENESIS = "0" * 64
COLUMNS = (
    "seq",
    "event_id",
    "occurred_at",
    "recorded_at",
    "action",
    "outcome",
    "actor",
    "actor_id",
    "actor_role",
    "actor_kind",
    "target",
    "ip",
    "correlation_id",
    "service",
    "detail",
    "prev_hash",
    "hash",
)
"""Stored columns, in table order (``detail`` is canonical JSON text)."""
_encoder = msgspec.json.Encoder(order="sorted")


def canonical(row: dict[str, Any]) -> bytes:
    """The bytes a row's hash covers: every column but ``hash``, keys sorted."""
    return _encoder.encode({k: row[k] for k in COLUMNS if k != "hash"})


def row_hash(row: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(row)).hexdigest()


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def new_row(
    event: SecurityEvent, seq: int, prev_hash: str, recorded_at: datetime
) -> dict[str, Any]:
    """The row that records ``event`` at position ``seq`` after a row hashed ``prev_hash``."""
    row: dict[str, Any] = {
        "seq": seq,
        "event_id": event.event_id,
        "occurred_at": _iso(event.occurred_at),
        "recorded_at": _iso(recorded_at),
        "action": event.action,
        "outcome": event.outcome,
        "actor": event.actor,
        "actor_id": event.actor_id,
        "actor_role": event.actor_role,
        "actor_kind": event.actor_kind,
        "target": event.target,
        "ip": event.ip,
        "correlation_id": event.correlation_id,
        "service": event.service,
        "detail": _encoder.encode(event.detail).decode(),
        "prev_hash": prev_hash,
    }
    row["hash"] = row_hash(row)
    return row


def entry(row: dict[str, Any]) -> AuditEntry:
    """A stored row as the API shows it (``detail`` parsed back into an object)."""
    try:
        detail = msgspec.json.decode(row["detail"], type=dict[str, str])
    except msgspec.DecodeError:
        detail = {"unparsable": str(row["detail"])[:200]}
    return AuditEntry(**{**row, "detail": detail})


class Verifier:
    """Feed rows in ``seq`` order; :attr:`first_break` is set at the first bad one."""

    def __init__(self) -> None:
        self.checked = 0
        self.last_seq = 0
        self.head_hash = GENESIS
        self.first_break: ChainBreak | None = None

    def feed(self, rows: Iterable[dict[str, Any]]) -> bool:
        """Check more rows; False once the chain is broken (stop feeding then)."""
        for row in rows:
            if self.first_break is not None:
                return False
            self.checked += 1
            seq, event_id = int(row["seq"]), str(row["event_id"])
            problem = ""
            if seq != self.last_seq + 1:
                problem = f"rows {self.last_seq + 1}..{seq - 1} are missing"
            elif row["prev_hash"] != self.head_hash:
                problem = "prev_hash does not match the previous row's hash"
            elif row_hash(row) != row["hash"]:
                problem = "the row's content does not match its hash (modified)"
            if problem:
                self.first_break = ChainBreak(seq=seq, event_id=event_id, problem=problem)
                return False
            self.last_seq, self.head_hash = seq, str(row["hash"])
        return True
