// The UI's entry point: the session (login form, #token=…), the navigation, and which
// page to draw for the current path. Pages are modules with render(main, context).

import * as api from "./api.js";
import { field, h } from "./dom.js";
import { errorNotice } from "./notices.js";

const PAGES = [
  [/^\/ui\/debates\/([^/]+)\/?$/, "debate", "./debate.js"],
  [/^\/ui\/history\/?$/, "history", "./history.js"],
  [/^\/ui\/leaderboard\/?$/, "leaderboard", "./leaderboard.js"],
  [/^\/admin\/?$/, "admin", "./admin.js"],
  [/^\/portal\/?$/, "portal", "./portal.js"],
  [/^\/ui\/?$/, "debate", "./debate.js"],
];
const TITLES = {
  debate: "Debate",
  history: "History",
  leaderboard: "Leaderboard",
  admin: "Admin console",
  portal: "Developer portal",
};

let leave = null; // the current page's clean-up (e.g. stop following a debate)
let generation = 0; // a newer show() wins over one still loading

function match(path) {
  for (const [pattern, name, module] of PAGES) {
    const found = path.match(pattern);
    if (found) return { name, module, debateId: found[1] ? decodeURIComponent(found[1]) : null };
  }
  return { name: "debate", module: "./debate.js", debateId: null };
}

export function navigate(path) {
  history.pushState(null, "", path);
  show();
}

async function show() {
  if (leave) leave();
  leave = null;
  const mine = ++generation;
  const main = document.getElementById("main");
  const route = match(location.pathname);
  document.title = `${TITLES[route.name]} · Aragora`;
  for (const link of document.querySelectorAll("nav a")) {
    if (link.dataset.page === route.name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  // Each visit draws into its own container: a slower, older visit writes into a detached one.
  const root = h("div", { class: "page", dataset: { page: route.name } });
  main.replaceChildren(root);
  const wantsLogin = new URLSearchParams(location.search).has("login");
  let user = null;
  if (api.session() && !wantsLogin) {
    try {
      user = await api.me();
    } catch (error) {
      if (error.status !== 401) {
        root.append(errorNotice(error));
        return;
      }
      await api.logout();
      root.append(errorNotice(error));
    }
  }
  if (mine !== generation) return;
  drawWho(user);
  if (!user) {
    root.append(loginForm());
    return;
  }
  const page = await import(route.module);
  if (mine !== generation) return;
  const cleanup = await page.render(root, { user, debateId: route.debateId, navigate });
  if (typeof cleanup !== "function") return;
  if (mine === generation) leave = cleanup;
  else cleanup();
}

function drawWho(user) {
  const who = document.getElementById("who");
  if (!user) {
    who.replaceChildren(h("span", {}, "not signed in"));
    return;
  }
  const name = user.email || (user.auth === "service" ? "owner token" : user.id);
  const out = h("button", { type: "button" }, "Log out");
  out.addEventListener("click", async () => {
    await api.logout();
    show();
  });
  who.replaceChildren(h("span", { dataset: { role: user.role } }, `${name} (${user.role})`), out);
}

function loginForm() {
  const email = h("input", { type: "email", name: "email", autocomplete: "username", required: true });
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
  const problem = h("div", {});
  const form = h(
    "form",
    { class: "stack", "aria-label": "Log in" },
    h("h2", {}, "Log in"),
    field("Email", email),
    field("Password", password),
    problem,
    h("div", { class: "row" }, h("button", { type: "submit", class: "primary" }, "Log in")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.replaceChildren();
    try {
      await api.login(email.value, password.value);
      dropLoginFlag();
      show();
    } catch (error) {
      problem.replaceChildren(
        error.status === 401 ? h("p", { class: "notice error", role: "alert" }, error.message) : errorNotice(error),
      );
    }
  });
  const token = h("input", { type: "password", name: "token", autocomplete: "off", required: true });
  const tokenForm = h(
    "form",
    { class: "stack", "aria-label": "Use a token" },
    h("h2", {}, "Or use a token"),
    field("Token or API key", token, "The local owner token (.aragora/api-token, or open the address `aragora serve` prints) or an API key (ara_…)."),
    h("div", { class: "row" }, h("button", { type: "submit" }, "Use token")),
  );
  tokenForm.addEventListener("submit", (event) => {
    event.preventDefault();
    api.useToken(token.value);
    dropLoginFlag();
    show();
  });
  setTimeout(() => email.focus(), 0);
  return h("div", { class: "grid two" }, h("section", { class: "panel" }, form), h("section", { class: "panel" }, tokenForm));
}

function dropLoginFlag() {
  const params = new URLSearchParams(location.search);
  if (!params.has("login")) return;
  params.delete("login");
  const query = params.toString();
  history.replaceState(null, "", location.pathname + (query ? `?${query}` : ""));
}

// Links inside the app change the page without a reload (and keep the session in this tab).
document.addEventListener("click", (event) => {
  const link = event.target.closest && event.target.closest("a[href]");
  if (!link || link.target || link.hasAttribute("download") || event.ctrlKey || event.metaKey || event.shiftKey) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin || !/^\/(ui|admin|portal)(\/|$)/.test(url.pathname)) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
  document.getElementById("main").focus();
});
window.addEventListener("popstate", show);

api.adoptFragmentToken();
show();
