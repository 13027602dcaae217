// The Debate page: start a debate, then watch it live (also /ui/debates/<id>).

import { get, post } from "./api.js";
import { DebateView } from "./debateview.js";
import { field, h } from "./dom.js";
import { DebateFollower } from "./live.js";
import { errorNotice, loading } from "./notices.js";
import { showReceipt } from "./receipt.js";

const PRESETS = [
  ["light", "Light — 2 rounds"],
  ["standard", "Standard — 3 rounds"],
  ["thorough", "Thorough — 6 rounds"],
];
const CONSENSUS = ["majority", "supermajority", "unanimous", "judge", "any", "none"];

export async function render(main, { debateId, navigate }) {
  if (debateId) {
    main.append(h("h1", {}, "Live debate"), h("p", {}, h("a", { href: "/ui" }, "Start another debate")));
    return watch(main, debateId);
  }
  main.append(h("h1", {}, "Start a debate"));
  const panel = h("section", { class: "panel", "aria-label": "New debate" }, loading("Loading the agents"));
  main.append(panel);
  let registry;
  try {
    registry = await get("/api/agents");
  } catch (error) {
    panel.replaceChildren(errorNotice(error));
    return null;
  }
  panel.replaceChildren(startForm(registry, navigate));
  return null;
}

function startForm(registry, navigate) {
  const topic = h("textarea", { name: "topic", required: true, maxlength: 4000, rows: 3 });
  const defaults = new Set(registry.default_agents);
  // The debate lists its agents in the order they were ticked (the defaults first).
  const order = [...registry.default_agents];
  const agents = h(
    "fieldset",
    {
      onchange: (event) => {
        const box = event.target;
        const at = order.indexOf(box.value);
        if (at >= 0) order.splice(at, 1);
        if (box.checked) order.push(box.value);
      },
    },
    h("legend", {}, "Agents (2 to 8, in the order you tick them)"),
    registry.agents.map((a) =>
      h(
        "label",
        {},
        h("input", { type: "checkbox", name: "agents", value: a.name, checked: defaults.has(a.name) }),
        `${a.name} `,
        h("span", { class: "hint" }, `${a.provider}/${a.model}`),
      ),
    ),
  );
  const preset = h(
    "select",
    { name: "preset" },
    PRESETS.map(([value, text]) => h("option", { value, selected: value === "standard" }, text)),
  );
  const consensus = h("select", { name: "consensus" }, CONSENSUS.map((c) => h("option", { value: c }, c)));
  const domain = h("input", { name: "domain", value: "general", pattern: "[a-z0-9][a-z0-9_\\-]*", maxlength: 64 });
  const problem = h("div", { role: "alert" });
  const submit = h("button", { type: "submit", class: "primary" }, "Start debate");
  const form = h(
    "form",
    { class: "stack" },
    registry.mode === "demo" ? h("p", { class: "notice" }, registry.note) : null,
    field("Topic", topic),
    agents,
    h(
      "div",
      { class: "row" },
      field("Protocol preset", preset),
      field("Consensus", consensus),
      field("Domain", domain, "for the ratings, e.g. general, engineering"),
    ),
    problem,
    h("div", { class: "row" }, submit),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.replaceChildren();
    const ticked = new Set([...form.querySelectorAll("input[name=agents]:checked")].map((i) => i.value));
    const chosen = order.filter((name) => ticked.has(name));
    if (chosen.length < 2 || chosen.length > 8) {
      problem.replaceChildren(h("p", { class: "notice error" }, "Choose between 2 and 8 agents."));
      return;
    }
    submit.disabled = true;
    try {
      const created = await post("/api/debates", {
        topic: topic.value,
        agents: chosen,
        consensus: consensus.value,
        domain: domain.value || "general",
        protocol: { preset: preset.value },
      });
      navigate(`/ui/debates/${created.id}`);
    } catch (error) {
      problem.replaceChildren(errorNotice(error));
      submit.disabled = false;
    }
  });
  return form;
}

/** Follow a debate live; returns a function that stops following (when leaving the page). */
function watch(main, debateId) {
  const view = new DebateView((finished) => showReceipt(finished.receipt, debateId));
  main.append(view.element);
  const follower = new DebateFollower(debateId, {
    onEvent: (e) => view.event(e),
    onDelta: (d) => view.delta(d),
    onState: (state, detail) => {
      view.setConnection(state, detail);
      const status = { unauthorized: 401, forbidden: 403, not_found: 404 }[state];
      if (status) view.element.prepend(errorNotice({ status, message: detail.reason || state, body: {} }));
    },
  }).start();
  return () => follower.stop();
}
