// One debate drawn from its events (live or replayed): rounds and phases, each agent's
// turn (streaming in from token deltas, then the stored text), critiques, votes,
// convergence per round, the outcome with consensus and dissent, and the receipt.

import { badge, clear, h, money, pct, when } from "./dom.js";

const TERMINAL = new Set(["debate.completed", "debate.failed"]);

export class DebateView {
  /** @param {(view: DebateView) => void} onFinished called once after the terminal event */
  constructor(onFinished = () => {}) {
    this.onFinished = onFinished;
    this.rounds = new Map(); // round -> section element
    this.phases = new Map(); // `${round}/${phase}` -> turns container
    this.turns = new Map(); // turn_id -> {card, content, meta, extra, next}
    this.status = badge("waiting", "pending");
    this.position = h("span", { class: "hint" });
    this.connection = h("span", { class: "hint", role: "status", dataset: { connection: "idle" } });
    this.title = h("h2", {}, "Debate");
    this.facts = h("p", { class: "hint" });
    this.body = h("div", { class: "rounds" });
    this.outcome = h("section", { class: "panel outcome", "aria-label": "Outcome", hidden: true });
    this.timeline = h("ol", { class: "timeline", "aria-label": "Events received" });
    this.finished = false;
    this.element = h(
      "div",
      { class: "debate-view" },
      h(
        "section",
        { class: "panel", "aria-label": "Debate" },
        this.title,
        this.facts,
        h("div", { class: "status-line" }, this.status, this.position, this.connection),
        this.body,
      ),
      this.outcome,
      h(
        "details",
        { class: "panel" },
        h("summary", {}, "Event log"),
        this.timeline,
      ),
    );
  }

  setConnection(state, detail = {}) {
    const words = {
      connecting: "connecting…",
      live: detail.connections > 1 ? `live again (resumed after seq ${detail.since})` : "live",
      reconnecting:
        detail.inMs !== undefined
          ? `connection lost; reconnecting in ${(detail.inMs / 1000).toFixed(1)} s from seq ${detail.since}`
          : `reconnecting from seq ${detail.since}…`,
      ended: "stream ended",
      unauthorized: "not allowed: log in again (401)",
      forbidden: "your role may not watch this (403)",
      not_found: "no such debate",
      replay: detail.text || "replay",
    };
    this.connection.textContent = words[state] || state;
    this.connection.dataset.connection = state;
  }

  setStatus(text) {
    this.status.replaceWith((this.status = badge(text)));
    this.status.dataset.status = text;
  }

  /** Apply one stored event (in seq order). */
  event(e) {
    this.timeline.append(
      h("li", { value: e.seq, dataset: { seq: e.seq, type: e.type } }, `${e.type}`, ` · ${when(e.occurred_at)}`),
    );
    const handler = HANDLERS[e.type];
    if (handler) handler(this, e);
    if (TERMINAL.has(e.type) && !this.finished) {
      this.finished = true;
      this.onFinished(this);
    }
  }

  /** A piece of an answer being written (live only; the stored turn replaces it). */
  delta(d) {
    const turn = this.turns.get(d.turn_id);
    if (!turn || turn.done || d.index < turn.next) return;
    turn.next = d.index + 1;
    turn.card.classList.add("streaming");
    turn.content.append(d.text);
    if (d.done) turn.card.classList.remove("streaming");
  }

  round(number) {
    if (!this.rounds.has(number)) {
      const section = h("section", { class: "round", "aria-label": `Round ${number}` }, h("h3", {}, `Round ${number}`));
      this.rounds.set(number, section);
      this.body.append(section);
    }
    return this.rounds.get(number);
  }

  phase(round, phase) {
    const key = `${round}/${phase}`;
    if (!this.phases.has(key)) {
      const turns = h("div", { class: "turns" });
      this.round(round).append(h("div", { class: "phase", dataset: { phase } }, h("h3", {}, phase), turns));
      this.phases.set(key, turns);
    }
    return this.phases.get(key);
  }
}

function turnCard(view, e, spec) {
  const content = h("div", { class: "content" });
  const meta = h("div", { class: "meta" });
  const extra = h("div", {});
  const state = badge("pending");
  const card = h(
    "article",
    { class: "turn", dataset: { turn: spec.turn_id, agent: spec.agent }, "aria-label": `${spec.agent}, ${e.phase}` },
    h("header", {}, h("strong", {}, spec.agent), spec.stance ? badge(spec.stance, "") : null, state),
    content,
    extra,
    meta,
  );
  view.turns.set(spec.turn_id, { card, content, meta, extra, state, next: 0, done: false });
  return card;
}

function resolve(view, e) {
  const turn = view.turns.get(e.turn_id);
  if (!turn) return null;
  turn.done = true;
  turn.card.classList.remove("streaming");
  return turn;
}

function completed(view, e) {
  const turn = resolve(view, e);
  if (!turn) return;
  turn.state.replaceWith((turn.state = badge("completed")));
  turn.content.textContent = e.content;
  const parts = [`${e.latency_ms} ms`, e.model, `${e.prompt_tokens}+${e.completion_tokens} tokens`, money(e.cost_usd)];
  if (e.served_by) parts.push(`answered by ${e.served_by} (${e.fallback_reason})`);
  turn.meta.textContent = parts.filter(Boolean).join(" · ");
  for (const c of e.critiques || []) {
    turn.extra.append(
      h(
        "div",
        { class: "critique" },
        h("strong", {}, `Critique of ${c.target}`),
        ` · severity ${Number(c.severity).toFixed(1)}`,
        c.issues.length ? h("ul", {}, c.issues.map((i) => h("li", {}, i))) : null,
        c.suggestions.length ? h("p", { class: "hint" }, `Suggests: ${c.suggestions.join("; ")}`) : null,
      ),
    );
  }
  if (e.vote) {
    turn.extra.append(
      h(
        "p",
        { class: "vote" },
        h("strong", {}, "Vote: "),
        `${e.vote.choice} (confidence ${pct(e.vote.confidence)})`,
        e.vote.reasoning ? ` — ${e.vote.reasoning}` : "",
      ),
    );
  }
  if (e.structured === false) turn.extra.append(h("p", { class: "notice warn" }, `Unparsable answer: ${e.parse_error}`));
}

function convergence(view, e) {
  const rows = Object.entries(e.similarities || {}).map(([agent, share]) => {
    const bar = h("span", { class: "bar" });
    bar.style.width = `${Math.max(2, Math.round(share * 120))}px`;
    return h("li", {}, `${agent} `, bar, ` ${pct(share)}`);
  });
  view
    .round(e.round)
    .append(
      h(
        "div",
        { class: "convergence", dataset: { convergence: e.round } },
        h("strong", {}, "Convergence: "),
        e.status ? badge(e.status) : badge("n/a", ""),
        ` minimum similarity ${pct(e.min_similarity)}`,
        e.early_stop ? " · early stop" : "",
        e.reason ? ` · ${e.reason}` : "",
        rows.length ? h("ul", { class: "legend" }, rows) : null,
      ),
    );
}

function outcome(view, e) {
  view.setStatus(e.status);
  view.position.textContent = "";
  const box = clear(view.outcome);
  box.hidden = false;
  box.append(h("h2", {}, "Outcome"));
  const c = e.consensus;
  const facts = [["Status", badge(e.status)]];
  if (c) {
    facts.push(
      ["Consensus", c.reached ? "reached" : "not reached"],
      ["Winner", c.winner || "–"],
      ["Agreement", `${pct(c.agreement_ratio)} (threshold ${pct(c.threshold)}, ${c.method})`],
      ["Confidence", pct(c.confidence)],
      ["Supporters", (c.supporters || []).join(", ") || "–"],
      ["Dissenters", (c.dissenters || []).join(", ") || "none"],
    );
  }
  if (e.reason) facts.push(["Reason", e.reason]);
  box.append(h("dl", {}, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])));
  if (c && c.answer) box.append(h("h3", {}, "Answer"), h("p", { class: "content" }, c.answer));
  if (e.synthesis) box.append(h("h3", {}, "Synthesis"), h("p", {}, e.synthesis));
  const dissent = (e.proof && e.proof.dissent) || [];
  if (dissent.length) {
    box.append(
      h("h3", {}, "Dissent"),
      h("ul", {}, dissent.map((d) => h("li", {}, h("strong", {}, d.agent), d.choice ? ` (for ${d.choice})` : "", `: ${d.reasons.join("; ") || "no reason given"}`))),
    );
  }
  if (e.proof && e.proof.positions) {
    box.append(
      h("h3", {}, "Positions"),
      h("p", {}, Object.entries(e.proof.positions).map(([agent, p]) => [h("span", {}, `${agent} `), badge(p), " "])),
    );
  }
  if ((e.ratings || []).length) {
    box.append(
      h("h3", {}, "Ratings"),
      h("ul", {}, e.ratings.map((r) => h("li", {}, `${r.agent} (${r.domain}): ${r.before.toFixed(1)} → ${r.after.toFixed(1)}`))),
    );
  }
  if ((e.failures || []).length) {
    box.append(h("h3", {}, "Failures"), h("ul", {}, e.failures.map((f) => h("li", {}, `${f.agent} round ${f.round} ${f.phase}: ${f.reason}`))));
  }
  view.receipt = h("div", { class: "receipt" });
  box.append(view.receipt);
}

const HANDLERS = {
  "debate.created": (view, e) => {
    view.title.textContent = e.topic;
    const protocol = e.protocol || {};
    view.facts.textContent = [
      `Agents: ${e.agents.join(", ")}`,
      `${e.rounds} round(s)`,
      `consensus ${e.consensus}`,
      protocol.preset ? `preset ${protocol.preset}` : "",
      `domain ${e.domain || "general"}`,
    ]
      .filter(Boolean)
      .join(" · ");
    view.setStatus("running");
  },
  "debate.queued": (view, e) => {
    view.setStatus("queued");
    view.position.textContent = `queue position ${e.position}`;
  },
  "debate.round_started": (view, e) => {
    view.setStatus("running");
    view.round(e.round);
    view.position.textContent = `round ${e.round}`;
  },
  "debate.phase_started": (view, e) => {
    const turns = view.phase(e.round, e.phase);
    view.position.textContent = `round ${e.round} · ${e.phase}`;
    if (e.note) turns.before(h("p", { class: "hint" }, e.note));
    for (const spec of e.turns) turns.append(turnCard(view, e, spec));
  },
  "debate.turn_completed": completed,
  "debate.turn_failed": (view, e) => {
    const turn = resolve(view, e);
    if (!turn) return;
    turn.state.replaceWith((turn.state = badge("failed")));
    turn.meta.textContent = `failed: ${e.reason}${e.detail ? ` — ${e.detail}` : ""}`;
  },
  "debate.convergence_measured": convergence,
  "debate.completed": outcome,
  "debate.failed": outcome,
};
