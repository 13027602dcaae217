// Admin console (/admin, admin or owner): health of each part, circuit breakers with reset,
// recent errors, rate-limit state, audit log, revoked tokens and WebSocket connections.
// Each panel loads on its own and shows its own empty / unauthorized / forbidden state.

import { get, post } from "./api.js";
import { badge, h, table, when } from "./dom.js";
import { empty, errorNotice, fill } from "./notices.js";

export async function render(main, { user }) {
  const refresh = h("button", { type: "button" }, "Refresh all");
  main.append(h("div", { class: "row" }, h("h1", {}, "Admin console"), refresh));
  if (!["admin", "owner"].includes(user.role)) {
    main.append(
      h("p", { class: "notice warn" }, `You are signed in as ${user.role}: the panels below need the admin or owner role.`),
    );
  }
  const panels = {};
  const names = [
    ["health", "Health"],
    ["breakers", "Circuit breakers"],
    ["errors", "Recent errors"],
    ["ratelimits", "Rate limits"],
    ["websockets", "WebSocket connections"],
    ["audit", "Audit log"],
    ["revoked", "Revoked tokens"],
  ];
  const grid = h("div", { class: "grid two" });
  for (const [key, title] of names) {
    const body = h("div", {});
    panels[key] = body;
    grid.append(h("section", { class: "panel", "aria-label": title, dataset: { panel: key } }, h("h2", {}, title), body));
  }
  main.append(grid);
  const loadAll = () =>
    Promise.all([
      fill(panels.health, () => get("/api/health", { auth: false }), health),
      loadBreakers(panels.breakers),
      fill(panels.errors, () => get("/api/system/errors?limit=20"), errors),
      fill(panels.ratelimits, () => get("/api/system/rate-limits?top=10"), rateLimits),
      fill(panels.websockets, () => get("/api/ws/stats"), websockets),
      fill(panels.audit, () => get("/api/admin/audit-log?limit=50"), audit, { unavailable: "audit log" }),
      fill(panels.revoked, () => get("/api/admin/revoked-tokens"), revoked, { unavailable: "token revocation list" }),
    ]);
  refresh.addEventListener("click", loadAll);
  await loadAll();
  return null;
}

function health(body) {
  const checks = body.checks || {};
  const rows = Object.entries(checks)
    .filter(([, c]) => c && typeof c === "object")
    .map(([name, c]) => ({ name, ...c }));
  const detail = (c) =>
    Object.entries(c)
      .filter(([k]) => !["name", "status"].includes(k))
      .map(([k, v]) => `${k} ${typeof v === "object" && v !== null ? JSON.stringify(v) : v}`)
      .join(" · ");
  return h(
    "div",
    {},
    h("p", {}, "Overall ", badge(body.status), ` · version ${body.version} · up ${body.uptime_seconds} s · mode ${body.mode}`),
    h("p", { class: "hint" }, `memory ${checks.memory_mb} MB · active debates ${checks.active_debates ?? "–"}`),
    table(
      [
        { label: "Part", value: (r) => r.name.replace(/_/g, " ") },
        { label: "Status", value: (r) => (r.status ? badge(r.status) : "–") },
        { label: "Detail", value: detail },
      ],
      rows,
      "Health checks",
    ),
    (body.warnings || []).map((w) => h("p", { class: "notice warn" }, w)),
  );
}

async function loadBreakers(panel) {
  const draw = (body) => {
    const problem = h("div", {});
    const reset = (agent) => async (event) => {
      event.target.disabled = true;
      problem.replaceChildren();
      try {
        const after = await post(`/api/agents/${encodeURIComponent(agent)}/reset-circuit`);
        problem.replaceChildren(h("p", { class: "notice ok", role: "status" }, `${agent}: ${after.previous} → ${after.state}`));
        await loadBreakers(panel);
        panel.prepend(problem);
      } catch (error) {
        problem.replaceChildren(errorNotice(error));
        event.target.disabled = false;
      }
    };
    return h(
      "div",
      {},
      h("p", {}, `${body.open} open, ${body.half_open} half-open`),
      problem,
      table(
        [
          { label: "Agent", value: (b) => b.agent },
          { label: "State", value: (b) => h("span", { dataset: { breaker: b.agent } }, badge(b.state)) },
          { label: "Failures", value: (b) => String(b.consecutive_failures) },
          { label: "Open until", value: (b) => when(b.open_until) || "–" },
          {
            label: "Action",
            value: (b) =>
              h("button", { type: "button", onclick: reset(b.agent), "aria-label": `Reset ${b.agent}'s breaker` }, "Reset"),
          },
        ],
        body.agents,
        "Circuit breakers",
      ),
    );
  };
  await fill(panel, () => get("/api/system/circuit-breakers"), draw);
}

function errors(body) {
  if (!body.errors.length) return empty("No recent errors.");
  return table(
    [
      { label: "When", value: (e) => when(e.occurred_at) },
      { label: "Service", value: (e) => e.service },
      { label: "Kind", value: (e) => e.kind },
      { label: "Agent", value: (e) => e.agent || "–" },
      { label: "Detail", value: (e) => [e.reason ? `${e.reason}: ` : "", e.detail || ""] },
    ],
    body.errors,
    "Recent errors",
  );
}

function rateLimits(body) {
  const hits = Object.entries(body.hits_by_class || {});
  return h(
    "div",
    {},
    h("p", {}, `backend ${body.backend} · mode ${body.mode} · redis ${body.redis}`, body.degraded ? [" ", badge("degraded", "warn")] : ""),
    body.detail ? h("p", { class: "hint" }, body.detail) : null,
    h("h3", {}, "429s by class"),
    hits.length ? table([{ label: "Class", value: (r) => r[0] }, { label: "Refused", value: (r) => String(r[1]) }], hits, "Refusals by class") : empty("Nothing refused."),
    h("h3", {}, "Most limited callers"),
    (body.top_limited || []).length
      ? table(
          [
            { label: "Key", value: (k) => h("code", {}, k.key || JSON.stringify(k)) },
            { label: "Refused", value: (k) => String(k.hits ?? k.count ?? "") },
          ],
          body.top_limited,
          "Most limited callers",
        )
      : empty("No caller has been limited."),
  );
}

function websockets(body) {
  return h(
    "div",
    {},
    h("p", {}, h("strong", {}, String(body.connections)), " open now", ` · ${body.connections_opened_total} opened since ${when(body.since)}`),
    h("p", { class: "hint" }, `${body.messages_sent_total} messages sent · ${body.errors_total} errors · ${body.slow_consumer_closes_total} slow-consumer closes`),
    body.debates.length
      ? table(
          [
            { label: "Debate", value: (d) => (d.debate_id ? h("a", { href: `/ui/debates/${d.debate_id}` }, d.debate_id.slice(0, 8)) : "every debate") },
            { label: "Connections", value: (d) => String(d.connections) },
          ],
          body.debates,
          "Connections per debate",
        )
      : empty("No open WebSocket stream."),
  );
}

function audit(body) {
  const entries = body.entries || [];
  if (!entries.length || !("action" in entries[0])) return generic(body, "No audit entries yet.");
  return table(
    [
      { label: "#", value: (e) => String(e.seq) },
      { label: "When", value: (e) => when(e.occurred_at) },
      { label: "Actor", value: (e) => `${e.actor || e.actor_id || "–"}${e.actor_role ? ` (${e.actor_role})` : ""}` },
      { label: "Action", value: (e) => h("code", {}, e.action) },
      { label: "Outcome", value: (e) => badge(e.outcome, e.outcome === "success" || e.outcome === "ok" ? "ok" : "warn") },
      { label: "Target", value: (e) => e.target || "–" },
    ],
    entries,
    "Audit log",
  );
}

function revoked(body) {
  const signing = body.signing_keys || {};
  const notBefore = body.not_before || {};
  return h(
    "div",
    {},
    h("p", {}, `${body.count ?? (body.revoked_tokens || []).length} revoked token(s)`, signing.current ? ` · signing key ${signing.current}` : ""),
    notBefore.all ? h("p", { class: "hint" }, `Every token issued before ${when(notBefore.all)} is refused.`) : null,
    generic({ rows: body.revoked_tokens || [] }, "No revoked tokens."),
  );
}

/** An answer whose shape this page does not fix: its first list, as a table of its keys. */
function generic(body, none) {
  const rows = Array.isArray(body) ? body : Object.values(body || {}).find(Array.isArray) || [];
  if (!rows.length) return empty(none);
  const keys = [...new Set(rows.slice(0, 20).flatMap((r) => Object.keys(r || {})))].slice(0, 7);
  const cell = (v) => (v === null || v === undefined ? "–" : typeof v === "object" ? JSON.stringify(v) : String(v));
  return table(keys.map((k) => ({ label: k, value: (r) => cell(r[k]) })), rows, "Entries");
}
