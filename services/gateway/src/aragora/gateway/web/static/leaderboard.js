// Leaderboard: agents by ELO rating per domain, and each agent's rating history as a chart.
// Ratings come from GET /api/agents/leaderboard; the history from GET /api/agents/{name}.

import { get } from "./api.js";
import { lineChart } from "./chart.js";
import { field, h, table, when } from "./dom.js";
import { empty, errorNotice, loading } from "./notices.js";

const OVERALL = "all";

export async function render(main) {
  main.append(h("h1", {}, "Agent leaderboard"));
  const domain = h("select", { name: "domain" }, h("option", { value: OVERALL }, "all domains"));
  const agent = h("select", { name: "agent" }, h("option", { value: "" }, "every agent"));
  const board = h("section", { class: "panel", "aria-label": "Ratings" }, loading("Loading ratings"));
  const chart = h("section", { class: "panel", "aria-label": "Rating history" });
  main.append(h("div", { class: "panel row" }, field("Domain", domain), field("Agent", agent)), board, chart);

  // Every agent's details (ratings per domain and history): a handful of agents, one call each.
  let details;
  try {
    const [registry, overall] = await Promise.all([get("/api/agents"), get(`/api/agents/leaderboard?domain=${OVERALL}`)]);
    const names = [...new Set([...overall.agents.map((a) => a.agent), ...registry.agents.map((a) => a.name)])];
    details = await Promise.all(names.map((n) => get(`/api/agents/${encodeURIComponent(n)}`)));
  } catch (error) {
    board.replaceChildren(errorNotice(error));
    return;
  }
  const domains = [...new Set(details.flatMap((d) => Object.keys(d.ratings)))].filter((d) => d !== OVERALL).sort();
  domain.append(...domains.map((d) => h("option", { value: d }, d)));
  agent.append(...details.map((d) => h("option", { value: d.name }, d.name)));

  const drawBoard = async () => {
    board.replaceChildren(loading("Loading ratings"));
    try {
      const body = await get(`/api/agents/leaderboard?domain=${encodeURIComponent(domain.value)}`);
      board.replaceChildren(
        h("h2", {}, `Ratings — ${domain.value === OVERALL ? "all domains" : domain.value}`),
        body.agents.length
          ? table(
              [
                { label: "#", value: (r) => String(body.agents.indexOf(r) + 1) },
                { label: "Agent", value: (r) => r.agent },
                { label: "Rating", value: (r) => r.rating.toFixed(1) },
                { label: "Debates", value: (r) => String(r.games) },
                { label: "Calibration (Brier)", value: (r) => (r.calibration_brier === null ? "–" : r.calibration_brier.toFixed(3)) },
              ],
              body.agents,
              "Ratings",
            )
          : empty("No rated debates in this domain yet: ratings change when a debate ends."),
      );
    } catch (error) {
      board.replaceChildren(errorNotice(error));
    }
  };
  const drawChart = () => {
    const chosen = details.filter((d) => !agent.value || d.name === agent.value);
    const series = chosen
      .map((d) => {
        const rows = d.history.filter((r) => r.domain === domain.value);
        // x: the agent's n-th rated debate in this domain (0: the rating before the first).
        const points = rows.length
          ? [
              { x: 0, y: rows[0].before, label: `${rows[0].before.toFixed(1)} before its first debate` },
              ...rows.map((r, i) => ({
                x: i + 1,
                y: r.after,
                label: `${r.after.toFixed(1)} after debate ${r.debate_id.slice(0, 8)} (${when(r.at)})`,
              })),
            ]
          : [];
        return { name: d.name, points };
      })
      .filter((s) => s.points.length);
    const scope = domain.value === OVERALL ? "all domains" : domain.value;
    chart.replaceChildren(
      h("h2", {}, `Rating history — ${agent.value || "every agent"}, ${scope}`),
      lineChart(series, {
        label: `Rating over time, ${scope}`,
        yLabel: "ELO",
        formatX: (n) => (n ? `after ${n} debate${n > 1 ? "s" : ""}` : "start"),
      }),
    );
  };
  domain.addEventListener("change", () => {
    drawBoard();
    drawChart();
  });
  agent.addEventListener("change", drawChart);
  await drawBoard();
  drawChart();
  return null;
}
