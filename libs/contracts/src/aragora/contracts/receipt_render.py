"""Markdown and HTML renderings of a signed decision receipt.

Every text that comes from the debate (topic, answers, reasons, agent names) is untrusted:
both renderings escape it, so it never becomes live markup.
"""

from __future__ import annotations

import html

from aragora.contracts.receipt import SignedReceipt, Substitution
from aragora.contracts.values import AgentFailure

_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_{}[]()#+-.!|~>"})


def _md(text: str) -> str:
    """Untrusted text as inert inline Markdown: HTML escaped, Markdown syntax escaped."""
    return html.escape(" ".join(text.split()), quote=True).translate(_MD_SPECIAL)


def _md_block(text: str) -> str:
    """Untrusted multi-line text as an inert Markdown block quote."""
    lines = [html.escape(line, quote=True).translate(_MD_SPECIAL) for line in text.splitlines()]
    return "\n".join(f"> {line}" if line.strip() else ">" for line in lines or [""])


def _summary(signed: SignedReceipt) -> list[tuple[str, str]]:
    """(label, value) rows shared by both renderings; values are raw (unescaped)."""
    r = signed.receipt
    rows = [
        ("Debate", r.debate_id),
        ("Topic", r.topic),
        ("Domain", r.domain),
        ("Agents", ", ".join(r.agents)),
        ("Status", r.status),
        ("Verdict", r.verdict),
        ("Reason", r.verdict_reason),
    ]
    c = r.consensus
    if c is not None:
        rows += [
            ("Winner", c.winner or "none"),
            ("Agreement", f"{c.agreement_ratio:.0%} (threshold {c.threshold:.0%})"),
            ("Confidence", f"{c.confidence:.2f}"),
            ("Supporters", ", ".join(c.supporters) or "none"),
            ("Dissenters", ", ".join(c.dissenters) or "none"),
        ]
    rows += [
        ("Protocol", f"{r.protocol.rounds} rounds, {r.protocol.consensus} consensus"),
        ("Input hash", r.input_hash),
        ("Provenance root", r.provenance_root),
        ("Issued at", r.issued_at),
        ("Signed by", f"{signed.algorithm} key {signed.key_id}"),
    ]
    return rows


def _failure_text(f: AgentFailure) -> str:
    return f"{f.agent}: {f.reason} (round {f.round}, {f.phase}, turn {f.turn_id})"


def _substitution_text(s: Substitution) -> str:
    return f"{s.agent}, round {s.round} {s.phase}: answered by {s.served_by} ({s.reason})"


def render_markdown(signed: SignedReceipt) -> str:
    """The receipt as a Markdown document (debate text escaped, never live markup)."""
    r = signed.receipt
    out = ["# Decision receipt", ""]
    out += [f"- **{label}:** {_md(value)}" for label, value in _summary(signed)]
    if r.consensus is not None and r.consensus.answer is not None:
        out += ["", "## Answer", "", _md_block(r.consensus.answer)]
    if r.proof is not None and r.proof.dissent:
        out += ["", "## Dissent", ""]
        out += [f"- {_md(d.agent)}: {_md('; '.join(d.reasons) or '-')}" for d in r.proof.dissent]
    if r.failures:
        out += ["", "## Agent failures", ""]
        out += [f"- {_md(_failure_text(f))}" for f in r.failures]
    if r.substitutions:
        out += ["", "## Turns answered by a fallback agent", ""]
        out += [f"- {_md(_substitution_text(s))}" for s in r.substitutions]
    out += ["", "## Provenance", "", "| seq | type | agent | sha256 |", "|---|---|---|---|"]
    out += [
        f"| {e.seq} | {_md(e.type)} | {_md(e.agent or '-')} | `{_md(e.sha256)}` |"
        for e in r.provenance
    ]
    out += [
        "",
        "## Signature",
        "",
        f"- **Algorithm:** {_md(signed.algorithm)}",
        f"- **Public key:** {_md(signed.public_key)}",
        f"- **Signature:** {_md(signed.signature)}",
        "",
        "Verify the JSON form with `aragora receipt verify FILE`.",
        "",
    ]
    return "\n".join(out)


_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
    "th{text-align:left;padding-right:1rem;vertical-align:top}td{word-break:break-word}"
    "blockquote{white-space:pre-wrap;border-left:4px solid #ccc;margin:0;padding:.5rem 1rem}"
    ".PASS{color:#176117}.CONDITIONAL{color:#8a5a00}.FAIL{color:#a11}code{font-size:.85em}"
)


def render_html(signed: SignedReceipt) -> str:
    """The receipt as a complete, script-free HTML page (all debate text escaped)."""

    def e(text: object) -> str:
        return html.escape(str(text), quote=True)

    r = signed.receipt
    rows = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in _summary(signed))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<title>Decision receipt {e(r.debate_id)}</title><style>{_CSS}</style></head><body>",
        f'<h1>Decision receipt: <span class="{e(r.verdict)}">{e(r.verdict)}</span></h1>',
        f"<table>{rows}</table>",
    ]
    if r.consensus is not None and r.consensus.answer is not None:
        parts.append(f"<h2>Answer</h2><blockquote>{e(r.consensus.answer)}</blockquote>")
    if r.proof is not None and r.proof.dissent:
        items = "".join(
            f"<li>{e(d.agent)}: {e('; '.join(d.reasons) or '-')}</li>" for d in r.proof.dissent
        )
        parts.append(f"<h2>Dissent</h2><ul>{items}</ul>")
    if r.failures:
        items = "".join(f"<li>{e(_failure_text(f))}</li>" for f in r.failures)
        parts.append(f"<h2>Agent failures</h2><ul>{items}</ul>")
    if r.substitutions:
        items = "".join(f"<li>{e(_substitution_text(s))}</li>" for s in r.substitutions)
        parts.append(f"<h2>Turns answered by a fallback agent</h2><ul>{items}</ul>")
    entries = "".join(
        f"<tr><td>{p.seq}</td><td>{e(p.type)}</td><td>{e(p.agent or '-')}</td>"
        f"<td><code>{e(p.sha256)}</code></td></tr>"
        for p in r.provenance
    )
    parts += [
        "<h2>Provenance</h2><table><tr><th>seq</th><th>type</th><th>agent</th>"
        f"<th>sha256</th></tr>{entries}</table>",
        f"<h2>Signature</h2><p>{e(signed.algorithm)} key <code>{e(signed.key_id)}</code></p>",
        f"<p>Public key: <code>{e(signed.public_key)}</code></p>",
        f"<p>Signature: <code>{e(signed.signature)}</code></p>",
        "<p>Verify the JSON form with <code>aragora receipt verify FILE</code>.</p>",
        "</body></html>",
        "",
    ]
    return "\n".join(parts)
