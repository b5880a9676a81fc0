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

const enc = encodeURIComponent;
const dec = decodeURIComponent;
const optClient = (args, i) => (args[i] === undefined || args[i] === null ? [] : [String(args[i])]);

function encodeArgs(op, args) {
  switch (op) {
    case "partition": return [args[0].map((g) => g.join(".")).join("-")];
    case "heal": return [];
    case "put": case "append": return [enc(args[0]), enc(args[1]), ...optClient(args, 2)];
    case "get": case "delete": return [enc(args[0]), ...optClient(args, 1)];
    case "setWorkload": { const w = args[0]; return [w.clients, w.intervalMs, w.keys, w.readFraction].map(String); }
    default: return args.map(String);
  }
}

function decodeArgs(op, parts) {
  const n = (x) => { const v = Number(x); if (!Number.isFinite(v)) throw new Error(`bad number ${x}`); return v; };
  const client = (x) => (x === undefined ? [] : [n(x)]);
  switch (op) {
    case "partition": return [parts[0].split("-").map((g) => g.split(".").map(n))];
    case "heal": return [];
    case "put": case "append": return [dec(parts[0]), dec(parts[1] ?? ""), ...client(parts[2])];
    case "get": case "delete": return [dec(parts[0]), ...client(parts[1])];
    case "setWorkload": return [{ clients: n(parts[0]), intervalMs: n(parts[1]), keys: n(parts[2]), readFraction: n(parts[3]) }];
    default: return parts.map(n);
  }
}

export function encodeAction(a) {
  const pos = a.s ? `${a.t}+${a.s}` : `${a.t}`;
  return pos + CODES[a.op] + encodeArgs(a.op, a.args).join(":");
}

export function decodeAction(text) {
  const m = /^(\d+)(?:\+(\d+))?([a-zA-Z])(.*)$/.exec(text);
  if (!m) throw new Error(`cannot read action "${text}"`);
  const op = OPS[m[3]];
  if (!op) throw new Error(`unknown action code "${m[3]}"`);
  const parts = m[4] === "" ? [] : m[4].split(":");
  const t = Number(m[1]);
  return { t, s: Number(m[2] ?? 0), at: t, op, args: decodeArgs(op, parts) };
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
  if (actions.length) parts.push(`a=${actions.map(encodeAction).join(",")}`);
  if (cursor) {
    const at = cursor.s ? `${cursor.t}+${cursor.s}` : `${Math.round(cursor.display * 100) / 100}`;
    parts.push(`at=${at}`);
  }
  if (scenario) parts.push(`sc=${enc(scenario.id)}.${scenario.step}`);
  return "#" + parts.join("&");
}

/** Read a hash back. Returns null if it carries no run; throws with a readable message if it is malformed. */
export function decodeRun(hash) {
  const h = hash.replace(/^#/, "");
  if (!h) return null;
  const kv = {};
  for (const part of h.split("&")) {
    const i = part.indexOf("=");
    if (i > 0) kv[part.slice(0, i)] = part.slice(i + 1);
  }
  if (!("seed" in kv) && !("n" in kv) && !("a" in kv)) return null;
  const num = (k, d) => { if (!(k in kv)) return d; const v = Number(kv[k]); if (!Number.isFinite(v)) throw new Error(`bad ${k}=${kv[k]}`); return v; };
  const range = (k, d) => { if (!(k in kv)) return d; const r = kv[k].split("-").map(Number); if (r.length !== 2 || r.some((x) => !Number.isFinite(x))) throw new Error(`bad ${k}=${kv[k]}`); return r; };
  const config = {
    nodes: num("n", DEFAULT_CONFIG.nodes), seed: num("seed", DEFAULT_CONFIG.seed),
    electionTimeoutMs: range("et", DEFAULT_CONFIG.electionTimeoutMs), heartbeatMs: num("hb", DEFAULT_CONFIG.heartbeatMs),
    latencyMs: range("lat", DEFAULT_CONFIG.latencyMs), dropRate: num("drop", 0), duplicateRate: num("dup", 0),
    snapshotEvery: num("snap", DEFAULT_CONFIG.snapshotEvery), preVote: num("pv", 1) !== 0, checkQuorum: num("cq", 1) !== 0,
  };
  if ("mx" in kv) config.maxEntriesPerMessage = num("mx");
  if ("chunk" in kv) config.snapshotChunkBytes = num("chunk");
  if ("disk" in kv) config.diskLatencyMs = range("disk");
  const actions = kv.a ? kv.a.split(",").filter(Boolean).map(decodeAction) : [];
  let cursor = null;
  if (kv.at) {
    const m = /^(\d+(?:\.\d+)?)(?:\+(\d+))?$/.exec(kv.at);
    if (!m) throw new Error(`bad at=${kv.at}`);
    cursor = m[2] ? { t: Number(m[1]), s: Number(m[2]), display: Number(m[1]) } : { t: Math.floor(Number(m[1])), s: 0, display: Number(m[1]) };
  }
  let scenario = null;
  if (kv.sc) {
    const [id, step] = dec(kv.sc).split(".");
    scenario = { id, step: Number(step) || 0 };
  }
  return { config, actions, cursor, scenario };
}
