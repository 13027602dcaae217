"""Receipt signing: Ed25519 round trips, tamper detection, the signing key."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import stat
from pathlib import Path

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aragora.contracts.receipt import ProvenanceEntry, SignedReceipt, canonical_json
from aragora.contracts.receipt_signing import (
    public_key_of,
    serialize_signed,
    sign_receipt,
    verify_receipt,
)
from aragora.runtime.settings import SettingsError, load_settings
from aragora.runtime.signing import KEY_FILE_NAME, load_signing_seed
from tests.receipt_fixtures import (
    OTHER_SEED,
    SEED,
    complete,
    consensus,
    debate,
    make_proof,
    receipt_of,
)

# --- signing and verifying -------------------------------------------------------------------


def signed_pass(topic: str = "Tabs or spaces?") -> SignedReceipt:
    events = complete(debate(topic=topic), consensus(), proof=make_proof())
    return sign_receipt(receipt_of(events), SEED)


def test_sign_and_verify_round_trip() -> None:
    signed = signed_pass()
    assert signed.algorithm == "Ed25519"
    raw_key = base64.b64decode(signed.public_key)
    assert len(raw_key) == 32 and signed.public_key == public_key_of(SEED)
    assert signed.key_id == hashlib.sha256(raw_key).hexdigest()[:16]
    assert len(base64.b64decode(signed.signature)) == 64

    data = serialize_signed(signed)
    result = verify_receipt(data)
    assert result.ok, result.problems
    assert result.problems == [] and result.signed == signed
    assert verify_receipt(data + b"\n").ok  # as saved by an editor
    assert verify_receipt(data, trusted_public_key=signed.public_key).ok


def test_signatures_are_deterministic_and_the_key_matters() -> None:
    signed = signed_pass()
    assert sign_receipt(signed.receipt, SEED) == signed
    other = sign_receipt(signed.receipt, OTHER_SEED)
    assert other.signature != signed.signature and other.key_id != signed.key_id
    with pytest.raises(ValueError, match="32 bytes"):
        sign_receipt(signed.receipt, b"short")


def test_a_trusted_key_mismatch_fails() -> None:
    data = serialize_signed(signed_pass())
    result = verify_receipt(data, trusted_public_key=public_key_of(OTHER_SEED))
    assert not result.ok
    assert any("different key" in p for p in result.problems)
    bad = verify_receipt(data, trusted_public_key="not a key")
    assert not bad.ok and any("trusted public key" in p for p in bad.problems)


def test_a_receipt_re_signed_with_another_key_fails_only_against_the_trusted_key() -> None:
    signed = signed_pass()
    forged = sign_receipt(
        msgspec.structs.replace(signed.receipt, verdict_reason="forged"), OTHER_SEED
    )
    data = serialize_signed(forged)
    assert verify_receipt(data).ok  # self-consistent...
    assert not verify_receipt(data, trusted_public_key=signed.public_key).ok  # ...but not ours


def flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def test_flipping_any_single_byte_fails_verification() -> None:
    signed = signed_pass(topic="Should we <script>alert(1)</script> adopt Rust? é")
    data = serialize_signed(signed)
    text = data.decode()
    named = {
        "topic": data.index(b"<script>") + 3,
        "signature": data.index(signed.signature.encode()) + 10,
        "signature end": data.index(signed.signature.encode()) + len(signed.signature) - 3,
        "public key end": data.index(signed.public_key.encode()) + len(signed.public_key) - 2,
        "key id": data.index(signed.key_id.encode()),
        "provenance root": data.index(signed.receipt.provenance_root.encode()) + 5,
        "verdict": data.index(b'"PASS"') + 2,
        "confidence": data.index(b"0.85"),
        "non-ascii": data.index("é".encode()),
        "a key name": data.index(b'"version"') + 2,
        "first": 0,
        "last": len(data) - 1,
    }
    assert text.count("<script>") == 1
    for name, index in named.items():
        result = verify_receipt(flip(data, index))
        assert not result.ok, (name, index)
        assert result.problems, name
    # ... and every other position, each bit pattern tried on a stride through the file.
    for index in range(0, len(data), 7):
        for mask in (0x01, 0x20, 0x80):
            changed = data[:index] + bytes([data[index] ^ mask]) + data[index + 1 :]
            assert not verify_receipt(changed).ok, (index, mask)


def test_every_single_bit_flip_of_the_signature_and_key_fails() -> None:
    signed = signed_pass()
    data = serialize_signed(signed)
    for value in (signed.signature, signed.public_key, signed.key_id):
        start = data.index(value.encode())
        for index in range(start, start + len(value)):
            for bit in range(8):
                changed = data[:index] + bytes([data[index] ^ (1 << bit)]) + data[index + 1 :]
                assert not verify_receipt(changed).ok, (value[:8], index, bit)


@pytest.mark.parametrize(
    "data",
    [b"", b"{", b"not json", b"[]", b'"x"', b"{}", b"\xff\xfe", b'{"receipt":1}', b"[" * 100_000],
)
def test_malformed_input_is_a_problem_never_an_exception(data: bytes) -> None:
    result = verify_receipt(data)
    assert not result.ok and result.problems and result.signed is None


def test_reformatted_json_is_refused_as_non_canonical() -> None:
    data = serialize_signed(signed_pass())
    pretty = json.dumps(json.loads(data), indent=2, sort_keys=True, ensure_ascii=False).encode()
    result = verify_receipt(pretty)
    assert not result.ok and any("canonical" in p for p in result.problems)


def test_recomputed_hashes_catch_a_receipt_signed_with_wrong_hashes() -> None:
    signed = signed_pass()
    entries = [*signed.receipt.provenance]
    entries[0] = ProvenanceEntry(seq=1, type="debate.turn_completed", agent="a", sha256="0" * 64)
    assert signed.receipt.proof is not None
    bad_proof = msgspec.structs.replace(signed.receipt.proof, claim="edited")
    bad = msgspec.structs.replace(
        signed.receipt, provenance=entries, proof=bad_proof, topic="another topic"
    )
    result = verify_receipt(serialize_signed(sign_receipt(bad, SEED)))
    assert not result.ok
    text = " | ".join(result.problems)
    assert "provenance root" in text and "proof" in text and "input hash" in text


def test_unknown_fields_and_versions_are_refused() -> None:
    signed = signed_pass()
    doc = json.loads(serialize_signed(signed))
    doc["receipt"]["extra"] = "x"
    doc["receipt"]["version"] = "2"
    receipt = doc["receipt"]
    # Re-signed after the edit, so only the content checks can object.
    signature = Ed25519PrivateKey.from_private_bytes(SEED).sign(canonical_json(receipt))
    doc["signature"] = base64.b64encode(signature).decode()
    result = verify_receipt(canonical_json(doc))
    text = " | ".join(result.problems)
    assert not result.ok and "schema" in text and "version" in text


# --- the signing key -------------------------------------------------------------------------


def test_the_seed_comes_from_settings_or_a_generated_0600_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seed = bytes(range(32))
    configured = load_settings({"ARAGORA_RECEIPT_SIGNING_KEY": base64.b64encode(seed).decode()})
    assert load_signing_seed(configured) == seed

    settings = load_settings({}, data_dir=tmp_path / "data")
    with caplog.at_level(logging.INFO, logger="aragora.signing"):
        generated = load_signing_seed(settings)
    path = tmp_path / "data" / KEY_FILE_NAME
    assert len(generated) == 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_signing_seed(settings) == generated  # reused, not regenerated
    [record] = caplog.records
    assert "generated a receipt signing key" in record.getMessage()
    assert str(path) in record.getMessage()
    assert base64.b64encode(generated).decode() not in caplog.text
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


@pytest.mark.parametrize("value", ["not base64!", "c2hvcnQ=", base64.b64encode(bytes(33)).decode()])
def test_a_bad_configured_key_names_the_variable_without_echoing_it(
    value: str, tmp_path: Path
) -> None:
    settings = load_settings({"ARAGORA_RECEIPT_SIGNING_KEY": value}, data_dir=tmp_path)
    with pytest.raises(SettingsError, match="ARAGORA_RECEIPT_SIGNING_KEY") as caught:
        load_signing_seed(settings)
    assert value not in str(caught.value)


def test_a_corrupt_key_file_is_a_settings_error(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE_NAME).write_text("garbage\n")
    with pytest.raises(SettingsError, match=KEY_FILE_NAME):
        load_signing_seed(load_settings({}, data_dir=tmp_path))
