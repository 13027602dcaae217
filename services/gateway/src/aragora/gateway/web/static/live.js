// Following one debate over the WebSocket, without gaps.
//
// The server replays the stored events after ``since`` and then streams live ones; after
// the terminal event it closes with 1000. Any other close (a dropped network, 1001 server
// restarting, 1013 too slow) reconnects with exponential backoff and ``since`` = the last
// ``seq`` applied, so nothing is missed or shown twice. Should a frame ever arrive past a
// gap, the missing events are fetched from the REST API before it is applied.

import { freshToken, get, wsUrl } from "./api.js";

const BACKOFF_START_MS = 500;
const BACKOFF_MAX_MS = 10000;

export class DebateFollower {
  /**
   * @param {string} debateId
   * @param {{onEvent: (e) => void, onDelta: (d) => void, onState: (s, detail) => void}} handlers
   *   onEvent gets every stored event once, in seq order; onDelta the live token deltas;
   *   onState "connecting" | "live" | "reconnecting" | "ended" | "unauthorized" | "forbidden"
   *   | "not_found".
   */
  constructor(debateId, handlers, since = 0) {
    this.debateId = debateId;
    this.handlers = handlers;
    this.last = since;
    this.attempts = 0;
    this.connections = 0;
    this.stopped = false;
    this.socket = null;
    this.timer = null;
    this.queue = Promise.resolve();
  }

  start() {
    this.stopped = false;
    this.connect();
    return this;
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close(1000, "left the page");
  }

  async connect() {
    if (this.stopped) return;
    this.handlers.onState(this.connections ? "reconnecting" : "connecting", { since: this.last });
    const token = await freshToken();
    const query = new URLSearchParams({ since: String(this.last) });
    if (token) query.set("token", token);
    const socket = new WebSocket(wsUrl(`/ws/debates/${encodeURIComponent(this.debateId)}?${query}`));
    this.socket = socket;
    this.connections += 1;
    socket.addEventListener("open", () => {
      this.handlers.onState("live", { since: this.last, connections: this.connections });
    });
    socket.addEventListener("message", (message) => {
      // Frames are handled strictly one after another (a gap fill is asynchronous).
      this.queue = this.queue.then(() => this.receive(message.data)).catch((error) => {
        console.error("aragora: frame not applied", error);
      });
    });
    socket.addEventListener("close", (closed) => {
      this.queue.then(() => this.closed(socket, closed.code, closed.reason));
    });
  }

  async receive(data) {
    const frame = JSON.parse(data);
    if (frame.type === "agent.token_delta") {
      this.handlers.onDelta(frame);
      return;
    }
    if (typeof frame.seq !== "number") return; // heartbeats and types this page does not know
    if (frame.seq <= this.last) return; // already applied (a replay after reconnecting)
    if (frame.seq > this.last + 1) await this.fill(frame.seq);
    this.apply(frame);
    this.attempts = 0; // the connection works: the next drop starts the backoff afresh
  }

  apply(event) {
    this.last = event.seq;
    this.handlers.onEvent(event);
  }

  async fill(beforeSeq) {
    const body = await get(
      `/api/debates/${encodeURIComponent(this.debateId)}/events?after=${this.last}&limit=${beforeSeq - this.last - 1}`,
    );
    for (const event of body.events) if (event.seq > this.last && event.seq < beforeSeq) this.apply(event);
  }

  closed(socket, code, reason) {
    if (socket !== this.socket || this.stopped) return;
    if (code === 1000) {
      this.handlers.onState("ended", { reason });
      return;
    }
    if (code === 4401 || code === 4403 || code === 4404) {
      const state = { 4401: "unauthorized", 4403: "forbidden", 4404: "not_found" }[code];
      this.handlers.onState(state, { reason });
      return;
    }
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_START_MS * 2 ** this.attempts);
    const jittered = Math.round(delay / 2 + Math.random() * (delay / 2));
    this.attempts += 1;
    this.handlers.onState("reconnecting", { since: this.last, inMs: jittered, code });
    this.timer = setTimeout(() => this.connect(), jittered);
  }
}
