// The client history: one lane per client, a bar per operation from its
// invocation to its completion. Pending bars grow with time, unknown outcomes
// are hatched, and the operations named by a linearizability violation are
// outlined in red.

import { fitCanvas } from "./theme.js";
import { $$, fmtTime } from "./dom.js";

const clamp = (x, a, b) => Math.max(a, Math.min(b, x));

export function opLabel(op) {
  const v = op.value === null || op.value === undefined ? "" : op.value;
  switch (op.kind) {
    case "put": return `put ${op.key}=${v}`;
    case "append": return `append ${op.key}+=${v}`;
    case "delete": return `delete ${op.key}`;
    case "get": return op.status === "ok" ? `get ${op.key} → ${op.output === null || op.output === undefined ? "nil" : op.output}` : `get ${op.key}`;
    default: return `${op.kind} ${op.key}`;
  }
}

/** An operation's tooltip: what it did, when, and how it ended. */
export function opTooltipText(o, involved = false) {
  const done = o.completedAt != null ? `\ncompleted ${fmtTime(o.completedAt)} (${Math.round(o.completedAt - o.invokedAt)} ms)` : "\nstill pending";
  const attempts = o.attempts != null ? ` · ${o.attempts} attempt${o.attempts === 1 ? "" : "s"}` : "";
  const shard = o.shard != null ? ` · shard ${o.shard}` : "";
  return `op ${o.id} · client c${o.client}${shard}\n${opLabel(o)}\ninvoked ${fmtTime(o.invokedAt)}${done}\nstatus ${o.status}${attempts}${o.error ? `\n${o.error}` : ""}${involved ? "\ninvolved in the violation" : ""}`;
}

/**
 * The history canvas's inputs, in either mode: the wheel zooms, the window
 * buttons (`.zoom button[data-span]`) pick a span, `tip(op, x, y)` is told
 * what is under the pointer (null: nothing), `changed()` that a redraw is due.
 */
export function wireHistoryCanvas(canvas, view, { changed, tip }) {
  canvas.addEventListener("pointermove", (e) => {
    const r = canvas.getBoundingClientRect();
    tip(view.hit(e.clientX - r.left, e.clientY - r.top), e.clientX, e.clientY);
  });
  canvas.addEventListener("pointerleave", () => tip(null));
  canvas.addEventListener("wheel", (e) => {
    if (!view.span) return;
    e.preventDefault();
    view.span = Math.max(100, Math.min(600000, view.span * (e.deltaY > 0 ? 1.2 : 1 / 1.2)));
    $$(".zoom button").forEach((x) => x.classList.remove("on"));
    changed();
  }, { passive: false });
  $$(".zoom button").forEach((b) => b.addEventListener("click", () => {
    $$(".zoom button").forEach((x) => x.classList.toggle("on", x === b));
    view.span = Number(b.dataset.span);
    view.center = null;
    changed();
  }));
}

/**
 * A log entry's command for people. The core names a client session by its
 * number ("(c5#22)": session 5, request 22), and a session is numbered by the
 * log index of the entry that opened it (the client's first write, "(new
 * session)"; a "register" entry in logs of earlier versions); the page calls
 * clients c1, c2, ..., so sessions are translated with clients()[].session
 * where known: "(c3 #22)" is client c3's request 22.
 */
export function commandLabel(entry, clients = []) {
  const bySession = new Map(clients.filter((c) => c.session != null).map((c) => [Number(c.session), c.id]));
  const cmd = entry.command ?? "";
  if (cmd === "register") {
    const c = bySession.get(Number(entry.index));
    return c != null ? `register (session of c${c})` : "register (a client session)";
  }
  return sessionText(cmd, clients, bySession);
}

/** Rewrites every "(c<session>#<seq>)" and "(session <session> seq <seq>)" in a text the core rendered (commands, message summaries, trace lines) as above. */
export function sessionText(text, clients = [], bySession = null) {
  bySession ??= new Map(clients.filter((c) => c.session != null).map((c) => [Number(c.session), c.id]));
  const name = (_, session, seq) => {
    const c = bySession.get(Number(session));
    return c != null ? `(c${c} #${seq})` : `(session ${session} #${seq})`;
  };
  return String(text).replace(/\(c(\d+)#(\d+)\)/g, name).replace(/\(session (\d+) seq (\d+)\)/g, name);
}

/**
 * The client history as the page keeps it, for either mode's simulation
 * (both take `history({ from })`). Operations are numbered in invocation
 * order and an operation that has settled (ok, unknown, failed) never
 * changes again, so only the tail from the oldest pending one is read.
 */
export class HistoryCache {
  constructor() { this.sim = null; this.ops = []; this.from = 1; }

  /** Brings the cache up to date with `sim` (a new simulation starts it afresh); the operations. */
  sync(sim) {
    if (this.sim !== sim) { this.sim = sim; this.ops = []; this.from = 1; }
    const fresh = sim.history({ from: this.from });
    if (fresh.length && fresh[0].id !== this.from) { this.sim = null; return this.sync(sim); }
    const ops = this.ops;
    ops.length = this.from - 1;
    for (const op of fresh) ops.push(op);
    let i = this.from - 1;
    while (i < ops.length && ops[i].status !== "pending") i++;
    this.from = i + 1;
    return ops;
  }
}

export class HistoryView {
  constructor(canvas, theme) {
    this.canvas = canvas;
    this.theme = theme;
    this.span = 2000; // ms of virtual time shown; 0 = everything
    this.bars = [];
    this.center = null; // when set, the window is centred here instead of following now
  }

  /** `asOf`: the virtual time the history was read at; a pending bar ends there. */
  draw({ history, display, asOf = display, highlight }) {
    const { ctx, w, h } = fitCanvas(this.canvas);
    ctx.clearRect(0, 0, w, h);
    const frame = this._frame(w, h, display);
    this._timeAxis(ctx, frame);
    const lanes = [...new Set(history.map((o) => o.client))].sort((a, b) => a - b);
    this.bars = [];
    if (!lanes.length) { this._empty(ctx, frame); return; }
    const laneH = clamp((h - frame.top - frame.bottom) / lanes.length, 6, 26);
    this._lanes(ctx, frame, lanes, laneH);
    const laneOf = new Map(lanes.map((c, i) => [c, i]));
    const bh = Math.max(4, laneH - 5);
    const outlined = [];
    const font = `${laneH >= 18 ? 10.5 : 9}px ${this.theme.mono}`;
    ctx.font = font; ctx.textAlign = "left";
    for (let i = firstInWindow(history, frame.t0); i < history.length; i++) {
      const op = history[i];
      const a = op.invokedAt, b = op.completedAt ?? asOf;
      if (b < frame.t0 || a > frame.t1) continue;
      const x = Math.max(frame.left, frame.sx(a));
      const bar = { op, x, x2: Math.min(w - frame.right, Math.max(frame.sx(b), x + 3)), y: frame.top + laneOf.get(op.client) * laneH + (laneH - bh) / 2, h: bh };
      this._bar(ctx, bar, font);
      if (highlight?.has(op.id)) outlined.push(bar);
      this.bars.push(bar);
    }
    this._outline(ctx, outlined);
    this._nowLine(ctx, frame, display);
  }

  /** The time window shown (following now, or centred where asked) and its scale. */
  _frame(w, h, display) {
    const frame = { w, h, left: 44, right: 14, top: 4, bottom: 18 };
    const end = this.center !== null && this.span ? this.center + this.span / 2 : display;
    frame.t0 = this.span ? Math.max(0, end - this.span) : 0;
    frame.t1 = this.span ? Math.max(end, frame.t0 + this.span) : Math.max(display, 1);
    frame.sx = (t) => frame.left + ((t - frame.t0) / (frame.t1 - frame.t0)) * (w - frame.left - frame.right);
    return frame;
  }

  _timeAxis(ctx, { w, h, left, top, bottom, t0, t1, sx }) {
    const T = this.theme;
    ctx.strokeStyle = T.line; ctx.lineWidth = 1; ctx.fillStyle = T.muted;
    ctx.font = `10px ${T.mono}`; ctx.textAlign = "center"; ctx.textBaseline = "alphabetic";
    const tick = niceTick((t1 - t0) / Math.max(2, (w - left) / 110));
    for (let t = Math.ceil(t0 / tick) * tick; t <= t1; t += tick) {
      const x = sx(t);
      ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, h - bottom + 3); ctx.stroke();
      ctx.fillText(fmtTick(t, tick), x, h - 5);
    }
  }

  _empty(ctx, { h, left, bottom }) {
    const T = this.theme;
    ctx.fillStyle = T.muted; ctx.font = `12.5px ${T.font}`; ctx.textAlign = "left"; ctx.textBaseline = "middle";
    ctx.fillText("No client operations yet: send one from the Clients card (p), or start the steady workload.", left, (h - bottom) / 2);
  }

  /** One lane per client, every other one shaded, named at the left. */
  _lanes(ctx, { w, left, right, top }, lanes, laneH) {
    const T = this.theme;
    ctx.textAlign = "right"; ctx.textBaseline = "middle"; ctx.font = `600 10.5px ${T.mono}`;
    lanes.forEach((c, i) => {
      const y = top + i * laneH;
      if (i % 2 === 1) { ctx.fillStyle = T.surface2; ctx.globalAlpha = 0.5; ctx.fillRect(left, y, w - left - right, laneH); ctx.globalAlpha = 1; }
      if (laneH >= 9) { ctx.fillStyle = T.muted; ctx.fillText(`c${c}`, left - 8, y + laneH / 2); }
    });
  }

  /** One operation: solid when done, faint and growing while pending, hatched with "?" when unknown, "×" when refused. */
  _bar(ctx, { op, x, x2, y, h: bh }, font) {
    const T = this.theme;
    const col = T.op[op.kind] ?? T.muted;
    const pending = op.status === "pending";
    const unknown = op.status === "unknown";
    const failed = op.status === "failed"; // refused for certain: it did not take effect
    ctx.fillStyle = col;
    ctx.globalAlpha = pending ? 0.45 : unknown || failed ? 0.35 : 0.9;
    ctx.fillRect(x, y, x2 - x, bh);
    ctx.globalAlpha = 1;
    if (pending) { ctx.fillStyle = col; ctx.fillRect(x2 - 3, y, 3, bh); } // the moving edge
    if (unknown) {
      ctx.save(); ctx.beginPath(); ctx.rect(x, y, x2 - x, bh); ctx.clip();
      ctx.strokeStyle = T.danger; ctx.lineWidth = 1.2;
      for (let hx = x - bh; hx < x2; hx += 5) { ctx.beginPath(); ctx.moveTo(hx, y + bh); ctx.lineTo(hx + bh, y); ctx.stroke(); }
      ctx.restore();
    }
    if (unknown || failed) { ctx.fillStyle = T.danger; ctx.font = `700 10px ${T.font}`; ctx.fillText(unknown ? "?" : "×", x2 + 2, y + bh / 2); ctx.font = font; }
    if (x2 - x > 46 && bh >= 10) {
      ctx.fillStyle = pending || unknown ? T.ink : "#fff";
      ctx.save(); ctx.beginPath(); ctx.rect(x, y, x2 - x - 2, bh); ctx.clip();
      ctx.fillText(opLabel(op), x + 4, y + bh / 2 + 0.5);
      ctx.restore();
    }
  }

  /** The operations a violation names, outlined in red over everything else. */
  _outline(ctx, bars) {
    ctx.strokeStyle = this.theme.danger; ctx.lineWidth = 2.5;
    for (const b of bars) ctx.strokeRect(b.x - 2, b.y - 2, b.x2 - b.x + 4, b.h + 4);
  }

  _nowLine(ctx, { h, top, bottom, t0, t1, sx }, display) {
    if (display < t0 || display > t1) return;
    const x = sx(display);
    ctx.strokeStyle = this.theme.accent; ctx.lineWidth = 1.5;
    ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, h - bottom); ctx.stroke();
  }

  hit(x, y) {
    for (let i = this.bars.length - 1; i >= 0; i--) {
      const b = this.bars[i];
      if (x >= b.x - 2 && x <= b.x2 + 2 && y >= b.y - 1 && y <= b.y + b.h + 1) return b.op;
    }
    return null;
  }
}

/** Operations come in invocation order: the first one worth drawing skips those that ended long before the window (a pending one never ends). */
function firstInWindow(history, t0) {
  let lo = 0, hi = history.length;
  const from = t0 - 60000;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (history[mid].invokedAt < from) lo = mid + 1; else hi = mid; }
  for (let i = 0; i < lo; i++) if (history[i].status === "pending" && history[i].invokedAt < from) return i;
  return lo;
}

function niceTick(raw) {
  const steps = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000, 120000, 300000];
  return steps.find((s) => s >= raw) ?? 600000;
}
function fmtTick(t, tick) {
  if (tick >= 1000) return `${(t / 1000).toFixed(tick % 1000 ? 1 : 0)}s`;
  return `${(t / 1000).toFixed(tick >= 100 ? 1 : tick >= 10 ? 2 : 3)}s`;
}
