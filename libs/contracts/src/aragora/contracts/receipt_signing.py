"""Signing and verifying decision receipts (Ed25519 over canonical JSON).

:func:`sign_receipt` signs ``canonical_json(receipt)`` with Ed25519. :func:`serialize_signed`
writes canonical JSON (keys sorted, no whitespace, UTF-8). :func:`verify_receipt` accepts
exactly that form (plus at most one trailing newline), so any changed byte either alters a
signed value or breaks the canonical form; either way the receipt fails verification.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from aragora.contracts.receipt import (
    ALGORITHM,
    RECEIPT_VERSION,
    Receipt,
    SignedReceipt,
    VerifyResult,
    canonical_dumps,
    canonical_json,
    input_hash,
    proof_checksum,
    provenance_root,
    sha256_hex,
)

SEED_BYTES = 32
_SIGNATURE_BYTES = 64


def public_key_of(private_key_seed: bytes) -> str:
    """Base64 of the raw 32-byte Ed25519 public key of ``private_key_seed``."""
    key = Ed25519PrivateKey.from_private_bytes(private_key_seed).public_key()
    return base64.b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def key_id_of(public_key: str) -> str:
    """The first 16 hex digits of SHA-256 over the raw public key (``public_key`` base64)."""
    return sha256_hex(base64.b64decode(public_key, validate=True))[:16]


def sign_receipt(receipt: Receipt, private_key_seed: bytes) -> SignedReceipt:
    """Sign ``canonical_json(receipt)`` with the Ed25519 key of the 32-byte seed."""
    if len(private_key_seed) != SEED_BYTES:
        raise ValueError(f"an Ed25519 seed is {SEED_BYTES} bytes, got {len(private_key_seed)}")
    key = Ed25519PrivateKey.from_private_bytes(private_key_seed)
    public_key = public_key_of(private_key_seed)
    return SignedReceipt(
        receipt=receipt,
        signature=base64.b64encode(key.sign(canonical_json(receipt))).decode(),
        public_key=public_key,
        key_id=key_id_of(public_key),
    )


def serialize_signed(signed: SignedReceipt) -> bytes:
    """The signed receipt as canonical JSON: the form :func:`verify_receipt` accepts."""
    return canonical_json(signed)


def verify_receipt(data: bytes, trusted_public_key: str | None = None) -> VerifyResult:
    """Check a serialized signed receipt; never raises on bad input.

    Checks: canonical JSON, the Ed25519 signature against the embedded key (which must be
    ``trusted_public_key`` when given), the key id, the provenance root, the proof checksum
    and the input hash.
    """
    problems: list[str] = []
    body = data[:-1] if data.endswith(b"\n") else data
    try:
        doc = json.loads(body)
        canonical = canonical_dumps(doc)
    except (ValueError, RecursionError) as exc:
        return VerifyResult(ok=False, problems=[f"not a readable JSON receipt: {exc}"])
    if not isinstance(doc, dict):
        return VerifyResult(ok=False, problems=["not a signed receipt: expected a JSON object"])
    if canonical != body:
        problems.append(
            "the document is not in canonical form (altered or re-formatted; verify the "
            "receipt exactly as downloaded)"
        )
    problems += _signature_problems(doc, trusted_public_key)
    try:
        signed = msgspec.convert(doc, SignedReceipt)
    except msgspec.ValidationError as exc:
        problems.append(f"not a valid signed receipt: {exc}")
        return VerifyResult(ok=False, problems=problems)
    problems += _content_problems(signed, doc)
    return VerifyResult(ok=not problems, problems=problems, signed=signed)


def _strict_b64(value: Any, size: int) -> bytes | None:
    """Decode base64 of exactly ``size`` bytes, in its one canonical spelling; else None."""
    if not isinstance(value, str):
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != size or base64.b64encode(raw).decode() != value:
        return None
    return raw


def _signature_problems(doc: dict[str, Any], trusted_public_key: str | None) -> list[str]:
    problems: list[str] = []
    if doc.get("algorithm") != ALGORITHM:
        problems.append(f"unsupported signature algorithm {doc.get('algorithm')!r}")
    public_key = _strict_b64(doc.get("public_key"), SEED_BYTES)
    signature = _strict_b64(doc.get("signature"), _SIGNATURE_BYTES)
    if public_key is None:
        problems.append("the public key is not base64 of a 32-byte Ed25519 key")
    elif doc.get("key_id") != sha256_hex(public_key)[:16]:
        problems.append("the key id does not match the public key")
    if trusted_public_key is not None:
        trusted = _strict_b64(trusted_public_key.strip(), SEED_BYTES)
        if trusted is None:
            problems.append("the trusted public key is not base64 of a 32-byte Ed25519 key")
        elif trusted != public_key:
            problems.append("the receipt was signed by a different key than the trusted one")
    if signature is None:
        problems.append("the signature is not base64 of a 64-byte Ed25519 signature")
    if public_key is None or signature is None or "receipt" not in doc:
        if "receipt" not in doc:
            problems.append("the document holds no receipt")
        return problems
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(
            signature, canonical_dumps(doc["receipt"])
        )
    except (InvalidSignature, ValueError):
        problems.append("the signature does not match the receipt (it was altered)")
    return problems


def _content_problems(signed: SignedReceipt, doc: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    r = signed.receipt
    if canonical_json(r) != canonical_dumps(doc["receipt"]):
        problems.append("the receipt holds fields or values outside the receipt schema")
    if r.version != RECEIPT_VERSION:
        problems.append(f"unsupported receipt version {r.version!r}")
    if provenance_root(r.provenance) != r.provenance_root:
        problems.append("the provenance root does not match the provenance entries")
    if r.proof is not None and proof_checksum(r.proof) != r.proof.checksum:
        problems.append("the consensus proof's checksum does not match its content")
    if input_hash(r.topic, r.agents, r.protocol, r.domain) != r.input_hash:
        problems.append("the input hash does not match the topic, agents, protocol and domain")
    if r.verdict != "FAIL" and r.status != "consensus":
        problems.append(f"verdict {r.verdict} contradicts status {r.status}")
    return problems
