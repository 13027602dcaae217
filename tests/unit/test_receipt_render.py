"""Receipt rendering: Markdown and HTML escape every untrusted text."""

from __future__ import annotations

from aragora.contracts.receipt import SignedReceipt
from aragora.contracts.receipt_render import render_html, render_markdown
from aragora.contracts.receipt_signing import sign_receipt
from aragora.contracts.values import Vote
from tests.receipt_fixtures import (
    AGENTS,
    SEED,
    Log,
    complete,
    consensus,
    make_proof,
    receipt_of,
)

# --- rendering -------------------------------------------------------------------------------

EVIL = '<script>alert("x")</script>'


def evil_receipt() -> SignedReceipt:
    log = Log(topic=f"Topic {EVIL}")
    log.phase("propose")
    log.turn("propose", "a", "answer of a")
    log.turn("propose", "b", f"Answer {EVIL}\nline two [link](javascript:x)")
    log.turn("propose", "c", "answer of c")
    log.phase("vote")
    for agent in AGENTS:
        log.turn("vote", agent, "v", vote=Vote(choice="b", confidence=0.9))
    c = consensus(answer=f"Answer {EVIL}\nline two [link](javascript:x)")
    return sign_receipt(receipt_of(complete(log, c, proof=make_proof(c.answer or ""))), SEED)


def test_markdown_escapes_untrusted_text() -> None:
    signed = evil_receipt()
    assert signed.receipt.verdict == "PASS"
    md = render_markdown(signed)
    assert "<script>" not in md and "</script>" not in md and "<b>" not in md
    assert "&lt;script&gt;" in md
    assert "](javascript" not in md
    assert "PASS" in md and signed.key_id in md and signed.receipt.provenance_root in md


def test_html_is_a_complete_page_escaping_untrusted_text() -> None:
    signed = evil_receipt()
    page = render_html(signed)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<script" not in page and "<b>bold" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page  # the dissent's reason
    assert "Content-Security-Policy" in page
    assert signed.key_id in page and "PASS" in page
