// Colours for the canvases, read from the CSS custom properties so light and
// dark mode stay in one place (css/style.css).

const ROLE_VARS = { leader: "--leader", follower: "--follower", candidate: "--candidate", precandidate: "--precandidate", learner: "--learner", down: "--down" };

/** Message kinds: colour variable, short label, and whether it is a reply (drawn hollow). */
export const MESSAGE_KINDS = {
  RequestVote: { v: "--msg-vote", short: "Vote?", reply: false },
  RequestVoteResponse: { v: "--msg-vote", short: "Vote", reply: true },
  PreVote: { v: "--msg-prevote", short: "PreVote?", reply: false },
  PreVoteResponse: { v: "--msg-prevote", short: "PreVote", reply: true },
  AppendEntries: { v: "--msg-append", short: "Append", reply: false },
  AppendEntriesResponse: { v: "--msg-append", short: "Append ack", reply: true },
  Heartbeat: { v: "--msg-heartbeat", short: "HB", reply: false },
  HeartbeatResponse: { v: "--msg-heartbeat", short: "HB ack", reply: true },
  InstallSnapshot: { v: "--msg-snapshot", short: "Snapshot", reply: false },
  InstallSnapshotResponse: { v: "--msg-snapshot", short: "Snap ack", reply: true },
  TimeoutNow: { v: "--msg-timeout", short: "TimeoutNow", reply: false },
  ReadIndex: { v: "--msg-read", short: "ReadIndex?", reply: false },
  ReadIndexResponse: { v: "--msg-read", short: "ReadIndex", reply: true },
  ClientRequest: { v: "--msg-client", short: "Req", reply: false },
  ClientResponse: { v: "--msg-client", short: "Resp", reply: true },
};

export const ROLE_LABEL = { leader: "leader", follower: "follower", candidate: "candidate", precandidate: "pre-candidate", learner: "learner", down: "down" };

export class Theme {
  constructor() { this.read(); }
  read() {
    const cs = getComputedStyle(document.documentElement);
    const v = (name) => cs.getPropertyValue(name).trim();
    this.bg = v("--bg"); this.surface = v("--surface"); this.surface2 = v("--surface-2");
    this.ink = v("--ink"); this.ink2 = v("--ink-2"); this.muted = v("--muted");
    this.line = v("--line"); this.lineStrong = v("--line-strong"); this.accent = v("--accent");
    this.danger = v("--danger"); this.ok = v("--ok"); this.warn = v("--warn"); this.focus = v("--focus");
    this.role = {};
    for (const [r, name] of Object.entries(ROLE_VARS)) this.role[r] = v(name);
    this.msg = {};
    for (const [k, d] of Object.entries(MESSAGE_KINDS)) this.msg[k] = v(d.v);
    this.op = { put: v("--op-put"), append: v("--op-append"), get: v("--op-get"), delete: v("--op-delete") };
    this.terms = v("--terms").split(/\s+/).filter(Boolean);
    this.font = v("--font");
    this.mono = v("--mono");
    this.dark = matchMedia("(prefers-color-scheme: dark)").matches;
  }
  roleColor(role, up = true) { return up ? this.role[role] ?? this.role.follower : this.role.down; }
  termColor(term) { return this.terms[((Number(term) % this.terms.length) + this.terms.length) % this.terms.length]; }
  msgColor(kind) { return this.msg[kind] ?? this.muted; }
}

/** Set a canvas up for crisp drawing at the device pixel ratio; returns the 2D context scaled to CSS pixels. */
export function fitCanvas(canvas) {
  const dpr = Math.min(window.devicePixelRatio || 1, 3);
  const r = canvas.getBoundingClientRect();
  const w = Math.max(1, Math.round(r.width * dpr));
  const h = Math.max(1, Math.round(r.height * dpr));
  if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return { ctx, w: r.width, h: r.height, dpr };
}
