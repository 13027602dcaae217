"""The audit log's hash chain: every kind of tampering is found at the first bad row."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from aragora.audit import chain
from aragora.contracts.security import SecurityEvent

T = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)


def rows(n: int) -> list[dict[str, Any]]:
    built: list[dict[str, Any]] = []
    for seq in range(1, n + 1):
        event = SecurityEvent(
            event_id=f"e{seq}", occurred_at=T, correlation_id=f"c{seq}", action="auth.login",
            outcome="success", actor=f"user{seq}@example.org", detail={"b": "2", "a": "1"},
        )  # fmt: skip
        prev = built[-1]["hash"] if built else chain.GENESIS
        built.append(chain.new_row(event, seq, prev, T))
    return built


def verify(table: list[dict[str, Any]]) -> chain.Verifier:
    verifier = chain.Verifier()
    verifier.feed(table)
    return verifier


def test_an_untouched_chain_verifies_and_links_every_row_to_the_previous_one() -> None:
    table = rows(5)
    result = verify(table)
    assert result.first_break is None and result.checked == 5 and result.last_seq == 5
    assert result.head_hash == table[-1]["hash"]
    assert table[0]["prev_hash"] == chain.GENESIS
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(table))
    assert table[0]["detail"] == '{"a":"1","b":"2"}'  # canonical: the hash is reproducible


def test_a_modified_row_breaks_at_that_row() -> None:
    table = rows(5)
    table[2] = {**table[2], "actor": "mallory@example.org"}
    found = verify(table).first_break
    assert found is not None and found.seq == 3 and "modified" in found.problem


def test_a_row_rewritten_with_a_fresh_hash_breaks_the_next_link() -> None:
    table = rows(5)
    forged = {**table[2], "outcome": "failure"}
    forged["hash"] = chain.row_hash(forged)
    table[2] = forged
    result = verify(table)
    assert result.first_break is not None and result.first_break.seq == 4
    assert "prev_hash" in result.first_break.problem and result.last_seq == 3


def test_a_deleted_row_leaves_a_gap() -> None:
    table = rows(5)
    del table[1]
    found = verify(table).first_break
    assert found is not None and found.seq == 3 and "missing" in found.problem


def test_entries_show_detail_as_an_object() -> None:
    entry = chain.entry(rows(1)[0])
    assert entry.detail == {"a": "1", "b": "2"} and entry.seq == 1
