// The only module that talks to the simulation: the Rust simulator of the
// core, compiled to WebAssembly (web/pkg/, built by scripts/build-web.sh).
// Everything else in the page goes through `Sim`, which forwards calls and
// normalises what comes back (BigInt -> Number, Map -> plain object).

export const WASM_MODULE = "./pkg/distribkv_wasm.js";

/**
 * Load the wasm build: `{ name: "wasm", Simulation, ShardedSimulation, memoryBytes }`
 * (`memoryBytes()`: the size of the instance's memory, which only grows). Throws if web/pkg/ is not built.
 */
export async function loadBackend() {
  const url = new URL(WASM_MODULE, new URL("../", import.meta.url));
  const mod = await import(url.href);
  const exports = typeof mod.default === "function" ? await mod.default() : null;
  if (typeof mod.Simulation !== "function") throw new Error(`${url.pathname} does not export a Simulation class`);
  const memoryBytes = exports?.memory ? () => exports.memory.buffer.byteLength : null;
  return { name: "wasm", Simulation: mod.Simulation, ShardedSimulation: mod.ShardedSimulation, memoryBytes };
}

/** Deep-convert what the simulation returns into plain JSON-shaped data with Number ids and times. */
export function norm(x) {
  if (x === null || x === undefined) return x ?? null;
  switch (typeof x) {
    case "bigint": return Number(x);
    case "object": {
      if (Array.isArray(x)) {
        const out = new Array(x.length);
        for (let i = 0; i < x.length; i++) out[i] = norm(x[i]);
        return out;
      }
      if (x instanceof Map) {
        const out = {};
        for (const [k, v] of x) out[String(k)] = norm(v);
        return out;
      }
      const out = {};
      for (const k in x) out[k] = norm(x[k]);
      return out;
    }
    default: return x;
  }
}

const num = (v) => (v === null || v === undefined ? null : Number(v));
const toBig = (a) => (typeof a === "number" && Number.isInteger(a) ? BigInt(a) : a);

/**
 * Call a method with plain numbers; if the build wants BigInt for a u64 parameter
 * (wasm-bindgen throws a TypeError), retry with BigInt and remember that for the method.
 */
function callNum(sim, name, args) {
  if (sim.bigArgs.has(name)) return sim.raw[name](...args.map(toBig));
  try {
    return sim.raw[name](...args);
  } catch (err) {
    if (err instanceof TypeError && /BigInt/i.test(err.message) && args.some((a) => typeof a === "number")) {
      sim.bigArgs.add(name);
      return sim.raw[name](...args.map(toBig));
    }
    throw err;
  }
}

/** The most virtual time one runFor/runUntil call of the wasm build may cover (ms; it refuses more): longer spans are split. */
export const MAX_RUN_MS = 100_000_000;

/** Trace lines the simulation keeps for events(). */
export const TRACE_LINES = 1000;

/** Config fields the page may pass to `new Simulation(config)`. */
export const CONFIG_FIELDS = ["nodes", "seed", "electionTimeoutMs", "heartbeatMs", "latencyMs", "dropRate", "duplicateRate", "snapshotEvery", "preVote", "checkQuorum",
  // extensions of the wasm build, used by some guided tours
  "maxEntriesPerMessage", "snapshotChunkBytes", "diskLatencyMs",
  // read paths, from the settings dialog
  "leaseReads", "followerReads"];

export class Sim {
  constructor(backend, config) {
    const cfg = {};
    for (const k of CONFIG_FIELDS) if (config[k] !== undefined && config[k] !== null) cfg[k] = config[k];
    // the event log shows the newest lines only; a short trace keeps events() cheap when the page
    // reads it after a long stretch (the trace does not change the run: same trace hash)
    cfg.traceCapacity = TRACE_LINES;
    this.backend = backend.name;
    this.raw = new backend.Simulation(cfg);
    this.bigArgs = new Set();
  }
  // time
  now() { return Number(this.raw.now()); }
  nextEventAt() { return num(this.raw.nextEventAt()); }
  runUntil(t) {
    for (let now = this.now(); t - now > MAX_RUN_MS; now = this.now()) callNum(this, "runUntil", [now + MAX_RUN_MS]);
    callNum(this, "runUntil", [t]);
  }
  runFor(ms) { if (ms > MAX_RUN_MS) this.runUntil(this.now() + ms); else callNum(this, "runFor", [ms]); }
  step() { return norm(this.raw.step()); }
  /** An independent copy of the run at this moment (Simulation.fork()). */
  fork() {
    const copy = Object.create(Sim.prototype);
    copy.backend = this.backend;
    copy.raw = this.raw.fork();
    copy.bigArgs = new Set(this.bigArgs);
    return copy;
  }
  // observation
  state(opts) { return norm(opts ? this.raw.state(opts) : this.raw.state()); }
  events(sinceSeq) { return norm(callNum(this, "events", [sinceSeq])); }
  /** Every operation, or with { from } only those with id >= from. */
  history(opts) { return norm(opts ? this.raw.history(opts) : this.raw.history()); }
  clients() { return norm(this.raw.clients()); }
  check() { return norm(this.raw.check()); }
  message(id) { return norm(callNum(this, "message", [id])); }
  /** A fingerprint of everything that happened (equal for equal runs). */
  traceHash() { return String(this.raw.traceHash()); }
  // actions (each is also an entry of the recorded timeline; see timeline.js)
  crash(id) { callNum(this, "crash", [id]); }
  restart(id) { callNum(this, "restart", [id]); }
  partition(groups) { this.raw.partition(groups); }
  heal() { this.raw.heal(); }
  cutLink(from, to) { callNum(this, "cutLink", [from, to]); }
  restoreLink(from, to) { callNum(this, "restoreLink", [from, to]); }
  setDropRate(p) { this.raw.setDropRate(p); }
  setDuplicateRate(p) { this.raw.setDuplicateRate(p); }
  setLatency(lo, hi) { callNum(this, "setLatency", [lo, hi]); }
  triggerElection(id) { callNum(this, "triggerElection", [id]); }
  transferLeadership(id) { callNum(this, "transferLeadership", [id]); }
  snapshot(id) { callNum(this, "snapshot", [id]); }
  dropMessage(id) { return !!callNum(this, "dropMessage", [id]); }
  put(key, value, client) { return num(callNum(this, "put", client == null ? [key, value] : [key, value, client])); }
  append(key, value, client) { return num(callNum(this, "append", client == null ? [key, value] : [key, value, client])); }
  get(key, client) { return num(callNum(this, "get", client == null ? [key] : [key, client])); }
  delete(key, client) { return num(callNum(this, "delete", client == null ? [key] : [key, client])); }
  setWorkload(w) { this.raw.setWorkload(w); }
  // membership
  addNode() { return num(this.raw.addNode()); }
  addLearner(id) { callNum(this, "addLearner", [id]); }
  promote(id) { callNum(this, "promote", [id]); }
  removeMember(id) { callNum(this, "removeMember", [id]); }
  free() { if (typeof this.raw.free === "function") this.raw.free(); }
}

/** Is this endpoint one of the cluster's nodes (1..n)? Anything else is a client. */
export function isNodeId(x, n) {
  if (typeof x === "string" && !/^\d+$/.test(x)) return false;
  const v = Number(x);
  return Number.isInteger(v) && v >= 1 && v <= n;
}
