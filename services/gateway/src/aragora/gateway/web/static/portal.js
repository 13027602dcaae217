// Developer portal (/portal): the caller's API keys (a new key is shown once), usage and
// cost over time, and copyable curl / WebSocket examples for this very host.

import { del, get, post } from "./api.js";
import { barChart } from "./chart.js";
import { codeBox, field, h, money, table, when } from "./dom.js";
import { empty, errorNotice, fill, loading } from "./notices.js";

const ROLES = ["viewer", "member", "admin", "owner"];

export async function render(main, { user }) {
  main.append(
    h("h1", {}, "Developer portal"),
    h("p", { class: "hint" }, `Signed in as ${user.email || "the owner token"} (${user.role}, ${user.auth}).`),
  );
  const keys = h("section", { class: "panel", "aria-label": "API keys" });
  const usage = h("section", { class: "panel", "aria-label": "Usage and cost" });
  const examples = h("section", { class: "panel", "aria-label": "Examples" });
  main.append(keys, usage, examples);
  drawExamples(examples);
  await Promise.all([drawKeys(keys, user), drawUsage(usage)]);
  return null;
}

async function drawKeys(panel, user) {
  panel.replaceChildren(h("h2", {}, "API keys"));
  if (user.auth === "service") {
    panel.append(
      h("p", { class: "notice" }, "The owner token has no user: log in with an email and password to create API keys."),
    );
    return;
  }
  const mine = ROLES.slice(0, ROLES.indexOf(user.role) + 1);
  const role = h("select", { name: "role" }, mine.map((r) => h("option", { value: r, selected: r === user.role }, r)));
  const create = h("button", { type: "submit", class: "primary" }, "Create API key");
  const fresh = h("div", { "aria-live": "polite" });
  const list = h("div", {}, loading("Loading keys"));
  const form = h("form", { class: "row" }, field("Role of the key", role), create);
  panel.append(form, fresh, h("h3", {}, "Your keys"), list);

  const drawList = () =>
    fill(list, () => get("/api/auth/api-key"), (body) => {
      if (!body.api_keys.length) return empty("No API keys.");
      const revoke = (id) => async (event) => {
        event.target.disabled = true;
        try {
          await del(`/api/auth/api-key?id=${encodeURIComponent(id)}`);
          fresh.replaceChildren(h("p", { class: "notice ok", role: "status" }, "Key revoked: it stops working at once on this gateway (other replicas within 5 s)."));
          await drawList();
        } catch (error) {
          fresh.replaceChildren(errorNotice(error));
          event.target.disabled = false;
        }
      };
      return table(
        [
          { label: "Prefix", value: (k) => h("code", {}, `${k.prefix}…`) },
          { label: "Role", value: (k) => k.role },
          { label: "Created", value: (k) => when(k.created_at) },
          {
            label: "Action",
            value: (k) => h("button", { type: "button", class: "danger", onclick: revoke(k.id), "aria-label": `Revoke key ${k.prefix}` }, "Revoke"),
          },
        ],
        body.api_keys,
        "API keys",
      );
    });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    create.disabled = true;
    try {
      const made = await post("/api/auth/api-key", { role: role.value });
      const value = h("input", { readonly: true, value: made.api_key, "aria-label": "New API key", name: "new-key" });
      const copy = h("button", { type: "button" }, "Copy");
      copy.addEventListener("click", async () => {
        value.select();
        try {
          await navigator.clipboard.writeText(made.api_key);
          copy.textContent = "Copied";
        } catch {
          copy.textContent = "Press Ctrl-C";
        }
      });
      fresh.replaceChildren(
        h(
          "div",
          { class: "notice ok", role: "status" },
          h("p", {}, h("strong", {}, "Your new API key "), `(${made.role}) — ${made.note}.`),
          h("div", { class: "secret" }, value, copy),
          h("p", { class: "hint" }, "Send it as Authorization: Bearer <key>. It is not stored anywhere readable and will not be shown again."),
        ),
      );
      value.focus();
      value.select();
      await drawList();
    } catch (error) {
      fresh.replaceChildren(errorNotice(error));
    } finally {
      create.disabled = false;
    }
  });
  await drawList();
}

async function drawUsage(panel) {
  const since = h("input", { type: "date", name: "since" });
  const until = h("input", { type: "date", name: "until" });
  const apply = h("button", { type: "submit" }, "Show");
  const body = h("div", {});
  const form = h("form", { class: "row" }, field("Since", since), field("Until (exclusive)", until), apply);
  panel.replaceChildren(h("h2", {}, "Usage and cost"), form, body);
  const load = () => {
    const query = new URLSearchParams({ limit: "500" });
    if (since.value) query.set("since", since.value);
    if (until.value) query.set("until", until.value);
    return fill(body, () => get(`/api/billing/usage?${query}`), drawTotals);
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  await load();
}

function drawTotals(u) {
  const t = u.totals;
  // Over time: the listed debates (up to 500, costliest first) by the day they started.
  const byDay = new Map();
  for (const d of u.by_debate) {
    const day = d.created_at.slice(0, 10);
    const sum = byDay.get(day) || { cost: 0, tokens: 0 };
    byDay.set(day, { cost: sum.cost + d.cost_usd, tokens: sum.tokens + d.total_tokens });
  }
  const days = [...byDay.entries()].sort();
  const costs = days.map(([label, v]) => ({ label, value: v.cost, title: `${label}: ${money(v.cost)}` }));
  const tokens = days.map(([label, v]) => ({ label, value: v.tokens, title: `${label}: ${v.tokens} tokens` }));
  const columns = (first, key) => [
    { label: first, value: (r) => String(r[key]) },
    { label: "Turns", value: (r) => String(r.turns) },
    { label: "Tokens", value: (r) => String(r.total_tokens) },
    { label: "Cost", value: (r) => money(r.cost_usd) },
  ];
  return h(
    "div",
    { dataset: { turns: t.turns } },
    h("p", { class: "totals" }, h("strong", {}, money(t.cost_usd)), ` for ${t.turns} turns, ${t.total_tokens} tokens (${t.prompt_tokens} prompt, ${t.completion_tokens} completion)`),
    t.turns === 0 ? empty("No usage in this period. Usage counts completed turns of debates.") : null,
    (u.unpriced_models || []).length
      ? h("p", { class: "notice warn" }, `No price for ${u.unpriced_models.join(", ")}: their turns count $0. Add a price in the agents file.`)
      : null,
    h("h3", {}, "Per day"),
    h(
      "div",
      { class: "grid two" },
      barChart(tokens, { label: "Tokens per day of the listed debates", format: (v) => String(Math.round(v)) }),
      t.cost_usd > 0
        ? barChart(costs, { label: "Cost per day (USD) of the listed debates", format: (v) => `$${v.toFixed(v >= 1 ? 2 : 4)}` })
        : empty("No cost recorded: these models are free (demo) or have no price."),
    ),
    h("h3", {}, "By agent"),
    u.by_agent.length ? table(columns("Agent", "agent"), u.by_agent, "Usage by agent") : empty("None."),
    h("h3", {}, "By model"),
    u.by_model.length ? table([{ label: "Provider", value: (r) => r.provider }, ...columns("Model", "model")], u.by_model, "Usage by model") : empty("None."),
    h("h3", {}, "Costliest debates"),
    u.by_debate.length
      ? table(
          [
            { label: "Debate", value: (r) => h("a", { href: `/ui/debates/${r.debate_id}` }, r.topic) },
            { label: "Status", value: (r) => r.status },
            ...columns("Started", "created_at").slice(1),
          ],
          u.by_debate.slice(0, 20),
          "Costliest debates",
        )
      : empty("None."),
  );
}

function drawExamples(panel) {
  const origin = location.origin;
  const ws = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}`;
  panel.replaceChildren(
    h("h2", {}, "Examples"),
    h("p", { class: "hint" }, "Put your key in an environment variable first: ", h("code", {}, "export ARAGORA_API_KEY=ara_…")),
    h("h3", {}, "Start a debate"),
    codeBox(
      `curl -X POST ${origin}/api/debates \\\n  -H "Authorization: Bearer $ARAGORA_API_KEY" \\\n  -H "Content-Type: application/json" \\\n  -d '{"topic": "Should we adopt a four-day work week?", "protocol": {"preset": "light"}}'`,
      "the curl command to start a debate",
    ),
    h("h3", {}, "Read it, its events and its receipt"),
    codeBox(
      `curl -H "Authorization: Bearer $ARAGORA_API_KEY" ${origin}/api/debates/<id>\ncurl -H "Authorization: Bearer $ARAGORA_API_KEY" "${origin}/api/debates/<id>/events?after=0"\ncurl -H "Authorization: Bearer $ARAGORA_API_KEY" ${origin}/api/debates/<id>/receipt > receipt.json\naragora receipt verify receipt.json`,
      "the curl commands to read a debate",
    ),
    h("h3", {}, "Usage and cost"),
    codeBox(`curl -H "Authorization: Bearer $ARAGORA_API_KEY" "${origin}/api/billing/usage?since=2026-01-01"`, "the usage command"),
    h("h3", {}, "Follow a debate live (WebSocket)"),
    h("p", { class: "hint" }, "Browsers cannot set headers on a WebSocket: pass the key as ?token=. Resume after a drop with since=<last seq>."),
    codeBox(
      `# Python (pip install websockets)\nimport asyncio, json, os, websockets\n\nasync def follow(debate_id, since=0):\n    url = f"${ws}/ws/debates/{debate_id}?since={since}"\n    headers = {"Authorization": f"Bearer {os.environ['ARAGORA_API_KEY']}"}\n    async with websockets.connect(url, additional_headers=headers) as socket:\n        async for frame in socket:\n            event = json.loads(frame)\n            print(event.get("seq"), event["type"])\n\nasyncio.run(follow("<id>"))`,
      "the Python WebSocket example",
    ),
    codeBox(
      `// JavaScript (browser or Node 22+)\nconst socket = new WebSocket(\`${ws}/ws/debates/<id>?since=0&token=\${key}\`);\nsocket.onmessage = (m) => console.log(JSON.parse(m.data));`,
      "the JavaScript WebSocket example",
    ),
  );
}
