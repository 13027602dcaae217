"""Decision receipts through the real gateway (real nats-server, SQLite read model) and CLI.

A finished debate's events are published to JetStream as the orchestrator's relay does; the
gateway projects them, and ``GET /api/debates/{id}/receipt`` signs a receipt with the key
it generated under ``ARAGORA_DATA_DIR``. ``aragora receipt verify`` checks the file.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import stat
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from aragora.contracts.messages import (
    DebateCompleted,
    DebateCreated,
    DebateEvent,
    PhaseStarted,
    RoundStarted,
    TurnCompleted,
)
from aragora.contracts.receipt import proof_checksum
from aragora.contracts.receipt_signing import public_key_of, verify_receipt
from aragora.contracts.values import Consensus, ConsensusProof, Dissent, TurnSpec, Vote
from aragora.runtime.natsserver import EmbeddedNats
from aragora.runtime.settings import Settings
from aragora.runtime.signing import KEY_FILE_NAME
from tests.conftest import make_settings
from tests.integration.gateway_harness import Gateway, open_gateway

T0 = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)
AGENTS = ["demo-1", "demo-2", "demo-3"]
EVIL = "<script>alert(1)</script>"
TOPIC = f"Adopt Rust? {EVIL}"
ANSWER = f"Yes, gradually. {EVIL}"


def finished_debate(debate_id: str | None = None) -> list[DebateEvent]:
    """A one-round debate (propose, vote) ending in consensus on demo-2, with a proof."""
    debate_id = debate_id or str(uuid.uuid4())
    events: list[DebateEvent] = []

    def add(kind: type[DebateEvent], **fields: Any) -> None:
        events.append(
            kind(
                event_id=str(uuid.uuid4()),  # unique: they are Nats-Msg-Ids
                occurred_at=T0,
                correlation_id="corr-receipt",
                debate_id=debate_id,
                seq=len(events) + 1,
                **fields,
            )
        )

    add(
        DebateCreated,
        topic=TOPIC,
        agents=AGENTS,
        rounds=1,
        consensus="majority",
        threshold=0.6,
    )
    add(RoundStarted, round=1)
    for phase in ("propose", "vote"):
        specs = [TurnSpec(turn_id=f"{phase}-{a}", agent=a, stance="neutral") for a in AGENTS]
        add(PhaseStarted, round=1, phase=phase, turns=specs)
        for agent in AGENTS:
            add(
                TurnCompleted,
                turn_id=f"{phase}-{agent}",
                round=1,
                phase=phase,
                agent=agent,
                content=ANSWER if agent == "demo-2" else f"{phase} by {agent}",
                vote=Vote(choice="demo-2", confidence=0.9) if phase == "vote" else None,
            )
    proof = ConsensusProof(
        claim=ANSWER,
        winner="demo-2",
        positions=dict.fromkeys(AGENTS, "AGREE"),
        dissent=[Dissent(agent="demo-3", choice="demo-2", reasons=["<b>minor</b> doubt"])],
        tensions=[],
        agreement_ratio=1.0,
        confidence=0.9,
        method="majority",
        checksum="",
    )
    add(
        DebateCompleted,
        status="consensus",
        consensus=Consensus(
            reached=True,
            agreement_ratio=1.0,
            confidence=0.9,
            threshold=0.6,
            winner="demo-2",
            answer=ANSWER,
            supporters=AGENTS,
            dissenters=[],
            valid_votes=3,
            quorum=2,
        ),
        proof=msgspec.structs.replace(proof, checksum=proof_checksum(proof)),
        reason="vote",
    )
    return events


@pytest.fixture
async def gateway(nats_server: EmbeddedNats, tmp_path: Path) -> AsyncIterator[Gateway]:
    async with open_gateway(make_settings(tmp_path, nats_url=nats_server.url)) as gw:
        yield gw


async def cli_verify(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "aragora.cli", "receipt", "verify", *args]
    return await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=60, check=False
    )


async def test_receipt_of_a_finished_debate_in_every_format_verified_by_the_cli(
    gateway: Gateway, tmp_path: Path
) -> None:
    events = finished_debate()
    debate_id = events[0].debate_id
    await gateway.publish(events)
    await gateway.wait_for_seq(debate_id, len(events))

    response = await gateway.client.get(f"/api/debates/{debate_id}/receipt")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    result = verify_receipt(response.content)
    assert result.ok, result.problems
    assert result.signed is not None
    receipt = result.signed.receipt
    assert (receipt.debate_id, receipt.topic, receipt.agents) == (debate_id, TOPIC, AGENTS)
    assert (receipt.status, receipt.verdict) == ("consensus", "PASS")
    assert receipt.consensus is not None and receipt.consensus.answer == ANSWER
    assert [p.seq for p in receipt.provenance] == [
        e.seq for e in events if isinstance(e, TurnCompleted | DebateCompleted)
    ]
    key = (await gateway.client.get("/api/receipts/public-key")).json()
    assert key == {
        "algorithm": "Ed25519",
        "public_key": result.signed.public_key,
        "key_id": result.signed.key_id,
    }
    assert response.json()["key_id"] == key["key_id"]
    assert (await gateway.client.get(f"/api/debates/{debate_id}/receipt?format=json")).json()[
        "receipt"
    ]["provenance_root"] == (receipt.provenance_root)

    md = await gateway.client.get(f"/api/debates/{debate_id}/receipt?format=md")
    assert md.status_code == 200
    assert md.headers["content-type"].startswith("text/markdown")
    assert "<script>" not in md.text and "&lt;script&gt;" in md.text
    assert debate_id.replace("-", "\\-") in md.text and "PASS" in md.text

    page = await gateway.client.get(f"/api/debates/{debate_id}/receipt?format=html")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.text.startswith("<!DOCTYPE html>")
    assert "<script" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "&lt;b&gt;minor&lt;/b&gt;" in page.text

    bad_format = await gateway.client.get(f"/api/debates/{debate_id}/receipt?format=pdf")
    assert bad_format.status_code == 400

    # Offline verification with the CLI, exactly as downloaded.
    saved = tmp_path / "receipt.json"
    saved.write_bytes(response.content)
    ok = await cli_verify(str(saved))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith("OK") and debate_id in ok.stdout
    assert "PASS" in ok.stdout and key["key_id"] in ok.stdout
    trusted = await cli_verify(str(saved), "--public-key", key["public_key"])
    assert trusted.returncode == 0, trusted.stdout

    other_key = public_key_of(bytes(32))
    untrusted = await cli_verify(str(saved), "--public-key", other_key)
    assert untrusted.returncode == 1 and "different key" in untrusted.stdout

    data = response.content
    at = data.index(b"Adopt Rust") + 2
    saved.write_bytes(data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :])
    tampered = await cli_verify(str(saved))
    assert tampered.returncode == 1, tampered.stdout
    assert tampered.stdout.startswith("FAILED") and "signature" in tampered.stdout

    missing = await cli_verify(str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr


async def test_receipt_is_409_until_the_debate_ends_and_404_when_unknown(
    gateway: Gateway,
) -> None:
    missing = str(uuid.uuid4())
    response = await gateway.client.get(f"/api/debates/{missing}/receipt")
    assert response.status_code == 404
    assert {k: response.json()[k] for k in ("status_code", "code", "detail", "error")} == {
        "status_code": 404,
        "code": "not_found",
        "detail": f"no debate {missing}",
        "error": f"no debate {missing}",
    }

    posted = await gateway.client.post("/api/debates", json={"topic": "Not yet"})
    assert posted.status_code == 202
    running_id = posted.json()["id"]
    response = await gateway.client.get(f"/api/debates/{running_id}/receipt?format=html")
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["detail"] == (
        f"debate {running_id} has not ended yet; its receipt is issued once it does"
    )

    events = finished_debate()
    debate_id = events[0].debate_id
    await gateway.publish(events[:-1])
    await gateway.wait_for_seq(debate_id, len(events) - 1)
    assert (await gateway.client.get(f"/api/debates/{debate_id}/receipt")).status_code == 409
    await gateway.publish(events[-1:])
    await gateway.wait_for_seq(debate_id, len(events))
    response = await gateway.client.get(f"/api/debates/{debate_id}/receipt")
    assert response.status_code == 200
    assert verify_receipt(response.content).ok


async def test_the_signing_key_is_generated_once_with_mode_0600_and_reused(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, nats_url=nats_server.url)
    key_path = settings.data_dir / KEY_FILE_NAME
    events = finished_debate()
    debate_id = events[0].debate_id
    async with open_gateway(settings) as gw:
        assert not key_path.exists()  # loaded lazily, on first use
        await gw.publish(events)
        await gw.wait_for_seq(debate_id, len(events))
        first = (await gw.client.get(f"/api/debates/{debate_id}/receipt")).content
        first_key = (await gw.client.get("/api/receipts/public-key")).json()
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    stored = key_path.read_bytes()

    async with open_gateway(settings) as gw:  # a restart: same data dir
        again = (await gw.client.get("/api/receipts/public-key")).json()
        second = (await gw.client.get(f"/api/debates/{debate_id}/receipt")).content
    assert again == first_key
    assert key_path.read_bytes() == stored
    assert verify_receipt(first, trusted_public_key=again["public_key"]).ok
    assert verify_receipt(second, trusted_public_key=first_key["public_key"]).ok


async def test_a_configured_signing_key_wins_and_a_bad_one_is_not_echoed(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    seed = bytes(range(32))
    base = make_settings(tmp_path, nats_url=nats_server.url)
    configured: Settings = dataclasses.replace(
        base, receipt_signing_key=base64.b64encode(seed).decode()
    )
    async with open_gateway(configured) as gw:
        key = (await gw.client.get("/api/receipts/public-key")).json()
    assert key["public_key"] == public_key_of(seed)
    assert not (base.data_dir / KEY_FILE_NAME).exists()

    secret = "c2VjcmV0LW5vdC1hLWtleQ=="
    broken = dataclasses.replace(base, receipt_signing_key=secret)
    async with open_gateway(broken) as gw:
        response = await gw.client.get("/api/receipts/public-key")
    assert response.status_code == 503
    assert secret not in response.text and "signing key" in response.json()["detail"]
