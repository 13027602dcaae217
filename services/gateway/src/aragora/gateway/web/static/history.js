// History: every debate, filtered (status by the API; agent, domain, dates and topic
// search in the page, as the API has no such filters), and the replay of a finished
// debate from its stored events at a chosen speed.

import { get } from "./api.js";
import { DebateView } from "./debateview.js";
import { badge, field, h, table, when } from "./dom.js";
import { empty, errorNotice, loading } from "./notices.js";
import { showReceipt } from "./receipt.js";

const STATUSES = ["", "running", "queued", "consensus", "no_consensus", "failed", "timeout", "cancelled", "budget_exceeded"];
const SPEEDS = [["1", "1× (as it happened)"], ["2", "2×"], ["5", "5×"], ["20", "20×"], ["0", "instant"]];
const MAX_GAP_MS = 2000; // a long pause in the original is shortened to this (before speed-up)
const PAGE = 1000;

export async function render(main) {
  main.append(h("h1", {}, "Debate history"));
  const status = h("select", { name: "status" }, STATUSES.map((s) => h("option", { value: s }, s || "any")));
  const agent = h("select", { name: "agent" }, h("option", { value: "" }, "any"));
  const domain = h("input", { name: "domain", placeholder: "any" });
  const from = h("input", { type: "date", name: "from" });
  const to = h("input", { type: "date", name: "to" });
  const search = h("input", { type: "search", name: "q", placeholder: "words in the topic" });
  const filters = h(
    "form",
    { class: "panel row", role: "search", "aria-label": "Filter debates" },
    field("Search topic", search),
    field("Status", status),
    field("Agent", agent),
    field("Domain", domain),
    field("From", from),
    field("To", to),
  );
  const replay = h("section", { class: "replay", "aria-label": "Replay" });
  const list = h("section", { class: "panel", "aria-label": "Debates" });
  main.append(filters, replay, list);

  let player = null;
  const stopPlayer = () => {
    if (player) player.stop();
    player = null;
  };
  get("/api/agents")
    .then((registry) => agent.append(...registry.agents.map((a) => h("option", { value: a.name }, a.name))))
    .catch(() => {});

  let debates = [];
  const draw = () => {
    const words = search.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    const shown = debates.filter(
      (d) =>
        (!agent.value || d.agents.includes(agent.value)) &&
        (!domain.value.trim() || (d.domain || "general") === domain.value.trim()) &&
        (!from.value || d.created_at.slice(0, 10) >= from.value) &&
        (!to.value || d.created_at.slice(0, 10) <= to.value) &&
        words.every((w) => d.topic.toLowerCase().includes(w)),
    );
    list.replaceChildren(
      h("h2", {}, `${shown.length} of ${debates.length} debates`),
      shown.length
        ? table(
            [
              { label: "Topic", value: (d) => h("a", { href: `/ui/debates/${d.id}` }, d.topic) },
              { label: "Status", value: (d) => badge(d.status) },
              { label: "Agents", value: (d) => d.agents.join(", ") },
              { label: "Domain", value: (d) => d.domain || "general" },
              { label: "Started", value: (d) => when(d.created_at) },
              {
                label: "Replay",
                value: (d) => {
                  const button = h("button", { type: "button", "aria-label": `Replay “${d.topic}”` }, "Replay");
                  button.addEventListener("click", () => {
                    stopPlayer();
                    player = replayPanel(replay, d);
                  });
                  return button;
                },
              },
            ],
            shown,
            "Debates",
          )
        : empty(debates.length ? "No debate matches these filters." : "No debates yet: start one on the Debate page."),
    );
  };
  const load = async () => {
    list.replaceChildren(loading("Loading debates"));
    const query = new URLSearchParams({ limit: "500" });
    if (status.value) query.set("status", status.value);
    try {
      debates = (await get(`/api/debates?${query}`)).debates;
      draw();
    } catch (error) {
      list.replaceChildren(errorNotice(error));
    }
  };
  status.addEventListener("change", load);
  for (const input of [agent, domain, from, to, search]) input.addEventListener("input", draw);
  filters.addEventListener("submit", (event) => event.preventDefault());
  await load();
  return stopPlayer;
}

async function allEvents(debateId) {
  const events = [];
  for (;;) {
    const after = events.length ? events[events.length - 1].seq : 0;
    const page = await get(`/api/debates/${encodeURIComponent(debateId)}/events?after=${after}&limit=${PAGE}`);
    events.push(...page.events);
    if (page.events.length < PAGE) return events;
  }
}

function replayPanel(container, debate) {
  const speed = h("select", { name: "speed" }, SPEEDS.map(([v, t]) => h("option", { value: v, selected: v === "5" }, t)));
  const start = h("button", { type: "button", class: "primary" }, "Play");
  const stop = h("button", { type: "button" }, "Stop");
  const stage = h("div", {});
  const heading = h("h2", { tabindex: "-1" }, `Replay: ${debate.topic}`);
  container.replaceChildren(
    h("section", { class: "panel" }, heading, h("div", { class: "row" }, field("Speed", speed), start, stop)),
    stage,
  );
  heading.focus();
  let run = 0;
  const play = async () => {
    const mine = ++run;
    stage.replaceChildren(loading("Loading events"));
    let events;
    try {
      events = await allEvents(debate.id);
    } catch (error) {
      stage.replaceChildren(errorNotice(error));
      return;
    }
    const view = new DebateView((finished) => showReceipt(finished.receipt, debate.id));
    stage.replaceChildren(view.element);
    const factor = Number(speed.value);
    for (let i = 0; i < events.length; i += 1) {
      if (mine !== run) return;
      if (i > 0 && factor > 0) {
        const gap = Date.parse(events[i].occurred_at) - Date.parse(events[i - 1].occurred_at);
        await new Promise((done) => setTimeout(done, Math.min(Math.max(gap, 0), MAX_GAP_MS) / factor));
        if (mine !== run) return;
      }
      view.setConnection("replay", { text: `replay ${i + 1}/${events.length} at ${factor ? `${factor}×` : "full speed"}` });
      view.event(events[i]);
    }
    view.setConnection("replay", { text: `replayed ${events.length} events` });
    view.connection.dataset.connection = "replayed";
  };
  start.addEventListener("click", play);
  stop.addEventListener("click", () => {
    run += 1;
  });
  play();
  return { stop: () => (run += 1) };
}
