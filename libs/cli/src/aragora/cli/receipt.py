"""``aragora receipt verify FILE``: check a decision receipt offline.

Prints ``OK`` with the debate id, verdict and key id, or ``FAILED`` with every problem.
Exit code: 0 verified, 1 not verified, 2 when the file cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aragora.contracts.receipt_signing import verify_receipt

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_UNREADABLE = 2


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``receipt`` sub-command and its ``verify`` action."""
    parser = subparsers.add_parser(
        "receipt",
        help="work with signed decision receipts",
        description="Work with the signed decision receipts the gateway issues.",
    )
    actions = parser.add_subparsers(dest="receipt_command", required=True)
    verify = actions.add_parser(
        "verify",
        help="verify a receipt's signature and hashes",
        description=(
            "Verify a receipt saved from GET /api/debates/{id}/receipt (the JSON form, "
            "exactly as downloaded): its Ed25519 signature, key id, provenance root, "
            "proof checksum and input hash."
        ),
    )
    verify.add_argument("file", help="the receipt's JSON file")
    verify.add_argument(
        "--public-key",
        default=None,
        metavar="B64",
        help="require this signer (base64 Ed25519 key, from GET /api/receipts/public-key)",
    )
    verify.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``aragora receipt verify`` with parsed ``args``; return the exit code."""
    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        print(f"aragora: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    result = verify_receipt(data, trusted_public_key=args.public_key)
    if result.ok and result.signed is not None:
        signed = result.signed
        print(
            f"OK  debate {signed.receipt.debate_id}  verdict {signed.receipt.verdict}  "
            f"key {signed.key_id}"
        )
        return EXIT_OK
    print(f"FAILED  {args.file}")
    for problem in result.problems:
        print(f"  - {problem}")
    return EXIT_FAILED
