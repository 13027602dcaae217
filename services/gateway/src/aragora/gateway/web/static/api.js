// The session and every call to the API.
//
// Credentials live in sessionStorage (this tab only, gone when it closes): a login's access
// and refresh tokens, or a pasted token (the local owner token, an API key). Like Jupyter,
// a token can arrive in the URL fragment (#token=…): fragments are never sent to a server;
// it is moved to sessionStorage and stripped from the address bar at once.

const KEY = "aragora.session";
const REFRESH_MARGIN_SECONDS = 60;

export class ApiError extends Error {
  constructor(status, body, path) {
    super((body && (body.detail || body.error)) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
    this.path = path;
  }
}

export function session() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY) || "null");
  } catch {
    return null;
  }
}

function save(value) {
  if (value) sessionStorage.setItem(KEY, JSON.stringify(value));
  else sessionStorage.removeItem(KEY);
}

/** Take #token=… from the address bar (then remove it from there and from history). */
export function adoptFragmentToken() {
  const fragment = new URLSearchParams(location.hash.replace(/^#/, ""));
  const token = fragment.get("token");
  if (!token) return false;
  fragment.delete("token");
  const rest = fragment.toString();
  history.replaceState(history.state, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
  save({ token: token.trim(), kind: "token" });
  return true;
}

export function useToken(token) {
  save({ token: token.trim(), kind: "token" });
}

function adoptLogin(body) {
  save({
    token: body.access_token,
    refresh: body.refresh_token,
    expiresAt: body.expires_at,
    kind: "login",
    user: body.user,
  });
}

export async function login(email, password) {
  const body = await request("POST", "/api/auth/login", { email, password }, { auth: false });
  adoptLogin(body);
  return body.user;
}

export async function logout() {
  const current = session();
  if (current && current.kind === "login") {
    try {
      await request("POST", "/api/auth/logout");
    } catch {
      // the session may already be gone; forgetting it locally is what matters
    }
  }
  save(null);
}

let refreshing = null;

/** Refresh tokens rotate and a replayed one revokes its family: one refresh at a time. */
function refresh() {
  if (!refreshing) {
    refreshing = (async () => {
      const current = session();
      if (!current || !current.refresh) return false;
      try {
        const body = await request(
          "POST",
          "/api/auth/refresh",
          { refresh_token: current.refresh },
          { auth: false },
        );
        adoptLogin(body);
        return true;
      } catch {
        save(null);
        return false;
      }
    })().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

/** The credential to send now, refreshed first when a login's token is about to expire. */
export async function freshToken() {
  const current = session();
  if (!current) return "";
  if (current.kind === "login" && current.expiresAt - Date.now() / 1000 < REFRESH_MARGIN_SECONDS) {
    await refresh();
  }
  const after = session();
  return after ? after.token : "";
}

/** Call the API; JSON in and out. Throws ApiError (status 0: the network failed). */
export async function request(method, path, body, { auth = true, raw = false, retried = false } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (auth) {
    const token = await freshToken();
    if (token) headers.Authorization = `Bearer ${token}`;
  }
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
  } catch (error) {
    throw new ApiError(0, { detail: `the gateway did not answer (${error.message})` }, path);
  }
  if (response.status === 401 && auth && !retried && session()?.kind === "login") {
    if (await refresh()) return request(method, path, body, { auth, raw, retried: true });
  }
  const bytes = new Uint8Array(await response.arrayBuffer());
  const text = new TextDecoder().decode(bytes);
  if (!response.ok) {
    let parsed = null;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = { detail: text.slice(0, 200) || response.statusText };
    }
    throw new ApiError(response.status, parsed, path);
  }
  if (raw === "bytes") return bytes; // exactly as served (a receipt is verified byte for byte)
  if (raw) return text;
  return text ? JSON.parse(text) : null;
}

export const get = (path, options) => request("GET", path, undefined, options);
export const post = (path, body, options) => request("POST", path, body, options);
export const del = (path, options) => request("DELETE", path, undefined, options);

/** Who the credential belongs to: {id, email, role, auth}; null when not signed in. */
export async function me() {
  if (!session()) return null;
  const body = await get("/api/auth/me");
  return body.user;
}

export function wsUrl(path) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}
