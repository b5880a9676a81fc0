// Share links: the URL hash carries the config, the recorded actions and the
// moment shown, so opening the link rebuilds the exact run.
//
//   #n=5&seed=42&et=150-300&hb=50&lat=5-20&drop=0&dup=0&snap=1000&pv=1&cq=1
//    [&mx=<entries per message>&chunk=<snapshot chunk bytes>&disk=<min>-<max>]
//    &a=<action>,<action>,...&at=<ms>[+<steps>]&sc=<scenario>.<step>
//
// An action is <t>[+<s>]<code><arg>:<arg>... with t and s its position (see
// timeline.js), one letter for the operation and its arguments; strings are
// percent-encoded so ':' and ',' never appear inside them. Example:
//   a=0w3:100:5:0.3,1250c2,1410+3x1:3,2000pk1:hello   (workload, crash 2, cut 1→3, put k1=hello)
//
// A link is user input: it is read in full before anything runs, and one
// that cannot be read, or asks for more than the page replays (the limits
// below, shared with the sharded mode's links), is refused with a message.

export const DEFAULT_CONFIG = {
  nodes: 5, seed: 42, electionTimeoutMs: [150, 300], heartbeatMs: 50, latencyMs: [5, 20],
  dropRate: 0, duplicateRate: 0, snapshotEvery: 1000, preVote: true, checkQuorum: true,
};

const CODES = {
  crash: "c", restart: "r", triggerElection: "e", transferLeadership: "t", snapshot: "s",
  partition: "P", heal: "h", cutLink: "x", restoreLink: "X", setDropRate: "d", setDuplicateRate: "D",
  setLatency: "l", dropMessage: "m", put: "p", append: "a", get: "g", delete: "k", setWorkload: "w",
  addNode: "N", addLearner: "L", promote: "V", removeMember: "R",
};
const OPS = Object.fromEntries(Object.entries(CODES).map(([op, c]) => [c, op]));
/** How many arguments each action takes in a link: [fewest, most]. */
const ARITY = {
  crash: [1, 1], restart: [1, 1], triggerElection: [1, 1], transferLeadership: [1, 1], snapshot: [1, 1],
  partition: [1, 1], heal: [0, 0], cutLink: [2, 2], restoreLink: [2, 2], setDropRate: [1, 1], setDuplicateRate: [1, 1],
  setLatency: [2, 2], dropMessage: [1, 1], put: [2, 3], append: [2, 3], get: [1, 2], delete: [1, 2], setWorkload: [1, 4],
  addNode: [0, 0], addLearner: [1, 1], promote: [1, 1], removeMember: [1, 1],
};

// ---------- the limits of a link (both modes) ----------
// Opening a link replays its run from the start, in the tab, before the page
// answers: these bound that work. Playing stops at LINK_MAX_MS too, so every
// link the page writes opens again (the guided tours end within seconds).

/** The latest virtual time (ms) a link may show or record an action at: one hour (replayed in about 2 to 10 s, the sharded mode under its workload being the slowest). */
export const LINK_MAX_MS = 3_600_000;
/** The most single events a position may count after its time (`at=<t>+<s>`; the tours count a dozen at most). */
export const LINK_MAX_STEPS = 100_000;
/** The most actions a link may carry (each is a click on the page). */
export const LINK_MAX_ACTIONS = 10_000;
/** The longest link read, in characters of the hash (10,000 short actions fit). */
export const LINK_MAX_CHARS = 200_000;
/** Real time (ms) opening a link may spend replaying its run: a link within the limits above can still ask for a run too dense to replay (a hundred clients each sending every millisecond). */
export const LINK_REPLAY_BUDGET_MS = 10_000;
/** Virtual time (ms) replayed between two looks at that budget. */
export const REPLAY_SLICE_MS = 1000;

/** The error of a replay that ran out of LINK_REPLAY_BUDGET_MS, at virtual time `now` of `target`. */
export function replayTooSlow(now, target) {
  return new Error(`replaying its run took more than ${LINK_REPLAY_BUDGET_MS / 1000} s here (it reached ${(now / 1000).toFixed(1)} s of ${(target / 1000).toFixed(1)} s of virtual time)`);
}

/**
 * sim.runUntil(t), in slices of REPLAY_SLICE_MS when there is a `deadline`
 * (a performance.now() time), throwing replayTooSlow once it passed
 * (`target`: where the replay is headed). runUntil(a); runUntil(b) is the
 * same run as runUntil(b), so slicing changes nothing else.
 */
export function runUntilWithin(sim, t, deadline, target = t) {
  if (deadline === null) { sim.runUntil(t); return; }
  for (let at = sim.now(); at < t;) {
    at = Math.min(t, at + REPLAY_SLICE_MS);
    sim.runUntil(at);
    if (performance.now() > deadline) throw replayTooSlow(at, target);
  }
}

/** The fields of a workload, in the order a link writes them (`w<clients>:<intervalMs>:<keys>:<readFraction>`). */
const WORKLOAD = ["clients", "intervalMs", "keys", "readFraction"];

const enc = encodeURIComponent;
/** Percent-decoding that says which text it could not read. */
export function dec(text) {
  try { return decodeURIComponent(text); } catch { throw new Error(`bad percent-encoding in "${text.slice(0, 40)}"`); }
}
/** A number as the page writes one (no empty text, no hex, no Infinity). */
export function readNumber(text) {
  if (typeof text !== "string" || !/^-?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(text)) throw new Error(`bad number "${text ?? ""}"`);
  const v = Number(text);
  if (!Number.isFinite(v)) throw new Error(`bad number "${text}"`);
  return v;
}

/** An action's arguments read by `read()`; what it cannot read is reported with the action's text. */
export function readArgs(text, read) {
  try { return read(); } catch (err) { throw new Error(`action "${text.slice(0, 40)}": ${err.message}`); }
}

/** Checks that an action carries `fewest` to `most` arguments. */
export function checkArity(text, op, parts, fewest, most = fewest) {
  if (parts.length >= fewest && parts.length <= most) return;
  const count = fewest === most ? `${fewest} argument${fewest === 1 ? "" : "s"}` : `${fewest} to ${most} arguments`;
  throw new Error(`action "${text.slice(0, 40)}": ${op} takes ${count}, not ${parts.length}`);
}

/** A partition as links write it: the sides separated by "-", the ids in a side by "." (`1.2-3.4.5`). */
export function readPartition(text) {
  return text.split("-").map((side) => {
    if (side === "") throw new Error("a side of the partition is empty");
    return side.split(".").map(readNumber);
  });
}

/** The key=value pairs of a hash; a key given twice, or a hash past LINK_MAX_CHARS, is refused. */
export function hashParams(hash) {
  const h = hash.replace(/^#/, "");
  if (h.length > LINK_MAX_CHARS) throw new Error(`the link is ${h.length} characters long, more than the ${LINK_MAX_CHARS} it may have`);
  const kv = Object.create(null);
  for (const part of h.split("&")) {
    const i = part.indexOf("=");
    if (i <= 0) continue;
    const k = part.slice(0, i);
    if (Object.hasOwn(kv, k)) throw new Error(`${k}= is given twice`);
    kv[k] = part.slice(i + 1);
  }
  return kv;
}

/** Checks a virtual time (ms) a link asks for against LINK_MAX_MS. */
export function checkTime(t, what) {
  if (t > LINK_MAX_MS) throw new Error(`${what} is past ${LINK_MAX_MS / 3_600_000} h of virtual time, the longest a link replays`);
}

/** Checks a link's actions: at most LINK_MAX_ACTIONS, in the order of their positions (t, then s), none past LINK_MAX_MS. */
export function checkActions(actions) {
  if (actions.length > LINK_MAX_ACTIONS) throw new Error(`${actions.length} actions, more than the ${LINK_MAX_ACTIONS} a link may carry`);
  for (const [i, a] of actions.entries()) {
    checkTime(a.t, `action ${i + 1} (at ${a.t} ms)`);
    const b = actions[i - 1];
    if (b && (a.t < b.t || (a.t === b.t && (a.s ?? 0) < (b.s ?? 0)))) throw new Error(`action ${i + 1} (at ${a.t} ms) comes before action ${i} (at ${b.t} ms): actions are listed in the order they happened`);
  }
}
const optClient = (args, i) => (args[i] === undefined || args[i] === null ? [] : [String(args[i])]);

function encodeArgs(op, args) {
  switch (op) {
    case "partition": return [args[0].map((g) => g.join(".")).join("-")];
    case "heal": return [];
    case "put": case "append": return [enc(args[0]), enc(args[1]), ...optClient(args, 2)];
    case "get": case "delete": return [enc(args[0]), ...optClient(args, 1)];
    case "setWorkload": {
      // as given: { clients: 0 } (off, as a tour writes it) is "w0", the page's full setting four numbers
      const w = args[0];
      const given = WORKLOAD.findLastIndex((k) => w[k] != null) + 1;
      return WORKLOAD.slice(0, given).map((k) => String(w[k]));
    }
    default: return args.map(String);
  }
}

function decodeArgs(op, parts) {
  const n = readNumber;
  const client = (x) => (x === undefined ? [] : [n(x)]);
  switch (op) {
    case "partition": return [readPartition(parts[0])];
    case "heal": return [];
    case "put": case "append": return [dec(parts[0]), dec(parts[1]), ...client(parts[2])];
    case "get": case "delete": return [dec(parts[0]), ...client(parts[1])];
    case "setWorkload": return [Object.fromEntries(parts.map((x, i) => [WORKLOAD[i], n(x)]))];
    default: return parts.map(n);
  }
}

export function encodeAction(a) {
  const pos = a.s ? `${a.t}+${a.s}` : `${a.t}`;
  return pos + CODES[a.op] + encodeArgs(a.op, a.args).join(":");
}

export function decodeAction(text) {
  const m = /^(\d+)(?:\+(\d+))?([a-zA-Z])(.*)$/.exec(text);
  if (!m) throw new Error(`cannot read action "${text.slice(0, 40)}"`);
  const op = OPS[m[3]];
  if (!op) throw new Error(`unknown action code "${m[3]}"`);
  const parts = m[4] === "" ? [] : m[4].split(":");
  const [fewest, most] = ARITY[op];
  checkArity(text, op, parts, fewest, most);
  const t = Number(m[1]);
  const s = Number(m[2] ?? 0);
  if (s > LINK_MAX_STEPS) throw new Error(`action "${text.slice(0, 40)}" counts more than ${LINK_MAX_STEPS} steps`);
  return { t, s, at: t, op, args: readArgs(text, () => decodeArgs(op, parts)) };
}

/** Build the hash for a run. `cursor` is { t, s, display }. */
export function encodeRun({ config, actions, cursor, scenario }) {
  const c = { ...DEFAULT_CONFIG, ...config };
  const parts = [
    `n=${c.nodes}`, `seed=${c.seed}`, `et=${c.electionTimeoutMs.join("-")}`, `hb=${c.heartbeatMs}`,
    `lat=${c.latencyMs.join("-")}`, `drop=${c.dropRate}`, `dup=${c.duplicateRate}`, `snap=${c.snapshotEvery}`,
    `pv=${c.preVote ? 1 : 0}`, `cq=${c.checkQuorum ? 1 : 0}`,
  ];
  // extensions of the wasm build, written only when a run (a guided tour) sets them
  if (c.maxEntriesPerMessage != null) parts.push(`mx=${c.maxEntriesPerMessage}`);
  if (c.snapshotChunkBytes != null) parts.push(`chunk=${c.snapshotChunkBytes}`);
  if (c.diskLatencyMs != null) parts.push(`disk=${c.diskLatencyMs.join("-")}`);
  // read paths, written only when on (links from before them read the same)
  if (c.leaseReads) parts.push("lr=1");
  if (c.followerReads) parts.push("fr=1");
  if (actions.length) parts.push(`a=${actions.map(encodeAction).join(",")}`);
  if (cursor) {
    const at = cursor.s ? `${cursor.t}+${cursor.s}` : `${Math.round(cursor.display * 100) / 100}`;
    parts.push(`at=${at}`);
  }
  if (scenario) parts.push(`sc=${enc(scenario.id)}.${scenario.step}`);
  return "#" + parts.join("&");
}

/** The keys of a single-group link: any of them makes a hash a link (the rest default). */
const LINK_KEYS = ["n", "seed", "et", "hb", "lat", "drop", "dup", "snap", "pv", "cq", "mx", "chunk", "disk", "lr", "fr", "a", "at", "sc"];

/** Read a hash back. Returns null if it carries no run; throws with a readable message if it is malformed. */
export function decodeRun(hash) {
  if (!hash.replace(/^#/, "")) return null;
  const kv = hashParams(hash);
  // a hash with none of a link's keys (`#`, `#mode=single`) is not a link; one with any of them is
  if (!LINK_KEYS.some((k) => k in kv)) return null;
  const bad = (k) => new Error(`bad ${k}=${kv[k].slice(0, 40)}`);
  const read = (k, text) => { try { return readNumber(text); } catch { throw bad(k); } };
  const num = (k, d) => (k in kv ? read(k, kv[k]) : d);
  const range = (k, d) => { if (!(k in kv)) return d; const r = kv[k].split("-").map((x) => read(k, x)); if (r.length !== 2) throw bad(k); return r; };
  const config = {
    nodes: num("n", DEFAULT_CONFIG.nodes), seed: num("seed", DEFAULT_CONFIG.seed),
    electionTimeoutMs: range("et", DEFAULT_CONFIG.electionTimeoutMs), heartbeatMs: num("hb", DEFAULT_CONFIG.heartbeatMs),
    latencyMs: range("lat", DEFAULT_CONFIG.latencyMs), dropRate: num("drop", 0), duplicateRate: num("dup", 0),
    snapshotEvery: num("snap", DEFAULT_CONFIG.snapshotEvery), preVote: num("pv", 1) !== 0, checkQuorum: num("cq", 1) !== 0,
  };
  if ("mx" in kv) config.maxEntriesPerMessage = num("mx");
  if ("chunk" in kv) config.snapshotChunkBytes = num("chunk");
  if ("disk" in kv) config.diskLatencyMs = range("disk");
  for (const [k, field] of [["lr", "leaseReads"], ["fr", "followerReads"]]) {
    if (!(k in kv)) continue;
    if (kv[k] !== "0" && kv[k] !== "1") throw bad(k);
    if (kv[k] === "1") config[field] = true;
  }
  const actions = kv.a ? kv.a.split(",").filter(Boolean).map(decodeAction) : [];
  checkActions(actions);
  let cursor = null;
  if (kv.at) {
    const m = /^(\d+(?:\.\d+)?)(?:\+(\d+))?$/.exec(kv.at);
    if (!m) throw new Error(`bad at=${kv.at.slice(0, 40)}`);
    cursor = m[2] ? { t: Number(m[1]), s: Number(m[2]), display: Number(m[1]) } : { t: Math.floor(Number(m[1])), s: 0, display: Number(m[1]) };
    checkTime(cursor.display, `at=${kv.at.slice(0, 40)}`);
    if (cursor.s > LINK_MAX_STEPS) throw new Error(`at=${kv.at.slice(0, 40)} counts more than ${LINK_MAX_STEPS} steps`);
  }
  let scenario = null;
  if (kv.sc) {
    const [id, step] = dec(kv.sc).split(".");
    scenario = { id, step: Number(step) || 0 };
  }
  // `#sc=<tour>.<step>` alone names a tour, not a run of its own
  const tourOnly = scenario !== null && LINK_KEYS.every((k) => k === "sc" || !(k in kv));
  return { config, actions, cursor, scenario, tourOnly };
}
