// Empty, loading and error states, each with the hint of the fix (the runbook's
// "Admin Console Access Issues": 401 → log in again; 403 → needs admin or owner).

import { h } from "./dom.js";

export function loading(what = "Loading") {
  return h("p", { class: "empty", role: "status" }, `${what}…`);
}

export function empty(text) {
  return h("p", { class: "empty" }, text);
}

/** The state to show for a failed call; ``unavailable`` names a feature answered by 404. */
export function errorNotice(error, { unavailable } = {}) {
  const status = error && error.status;
  const detail = (error && error.message) || String(error);
  const correlation = error && error.body && error.body.correlation_id;
  if (status === 401) {
    return h(
      "div",
      { class: "notice error", role: "alert", dataset: { state: "unauthorized" } },
      h("p", {}, h("strong", {}, "Unauthorized"), ` — ${detail}`),
      h(
        "p",
        { class: "hint" },
        "Log in again: your session may have expired or the token was revoked. Check a token with ",
        h("code", {}, `curl -H "Authorization: Bearer <token>" ${location.origin}/api/auth/me`),
      ),
      h("p", {}, h("a", { href: `${location.pathname}?login=1` }, "Log in")),
    );
  }
  if (status === 403) {
    // The gateway says which role it wanted ("this needs the admin role (you are member)").
    const needed = (detail.match(/needs the (\w+) role/) || [])[1] || "admin";
    const roles = needed === "admin" ? "the admin or owner role" : `the ${needed} role or higher`;
    return h(
      "div",
      { class: "notice error", role: "alert", dataset: { state: "forbidden" } },
      h("p", {}, h("strong", {}, "Forbidden"), ` — ${detail}`),
      h(
        "p",
        { class: "hint" },
        `This needs ${roles}. Ask an owner to raise your role, or create an account with it: `,
        h("code", {}, `aragora users create --email you@example.org --role ${needed}`),
        ".",
      ),
    );
  }
  if (status === 404 && unavailable) {
    return h(
      "div",
      { class: "notice warn", dataset: { state: "unavailable" } },
      h("p", {}, h("strong", {}, "Not available"), ` — this gateway has no ${unavailable} yet.`),
    );
  }
  if (status === 0) {
    return h(
      "div",
      { class: "notice error", role: "alert", dataset: { state: "offline" } },
      h("p", {}, h("strong", {}, "No answer"), ` — ${detail}`),
      h("p", { class: "hint" }, "Is the stack running? ", h("code", {}, `curl ${location.origin}/api/health`)),
    );
  }
  return h(
    "div",
    { class: "notice error", role: "alert", dataset: { state: `http-${status}` } },
    h("p", {}, h("strong", {}, `Error ${status || ""}`), ` — ${detail}`),
    correlation ? h("p", { class: "hint" }, `Correlation id ${correlation} (see the gateway log).`) : null,
  );
}

/** Fill ``panel`` from ``load()``: a loading state, then ``render(data)`` or the error. */
export async function fill(panel, load, render, options) {
  panel.replaceChildren(loading());
  try {
    const data = await load();
    panel.replaceChildren(render(data));
  } catch (error) {
    panel.replaceChildren(errorNotice(error, options));
  }
}
