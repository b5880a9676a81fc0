// The sharded mode's recorded run: a layout and seed plus every action a
// person (or the guided tour) took, each stamped with the virtual time it
// happened at. The simulation is deterministic, so any moment is rebuilt by
// replaying the actions into a fresh ShardedSimulation: that is how the
// timeline is scrubbed and how share links reproduce a run. The replay is
// the single-group mode's (replay.js): positions (t, s), and going back
// from the latest checkpoint (checkpoints.js: a fork of the simulation
// kept at a moment the run passed, with the number of actions applied
// there) at or before the target, not from the start. The moment shown is
// the simulation's clock (`display`): this mode plays whole milliseconds.
//
// Share link (the URL hash):
//   #mode=sharded&layout=<small|lab|small-fr|lab-fr>&seed=<n>&a=<action>,...&at=<ms>[&sc=<tour>.<step>]
// An action is <t>[+<s>]<code><arg>:<arg>...; strings are percent-encoded.
// Its position is (t, s): the run up to virtual time t, then s single
// events (Step); at=<t>[+<s>] is the moment shown, the same way.
//   a=0w1,1200m3:101,1500c2,1800pk1:hello   (workload on, move shard 3 to 101, crash host 2, put k1=hello)
//   x1:3 / X1:3 cut / restore the link from host 1 to host 3; d57 drops the message in flight with id 57

import { MAX_RUN_MS } from "../sim-adapter.js";
import { Checkpoints } from "../checkpoints.js";
import { Replay } from "../replay.js";
import { LINK_MAX_STEPS, checkActions, checkArity, checkTime, dec, hashParams, readArgs, readNumber, readPartition } from "../share.js";

/** The layouts the page offers: the small one (groups share hosts) and the lab's (a controller and 3 groups of 3, each on hosts of its own). */
export const LAYOUTS = {
  small: { label: "5 hosts · 3 groups of 3, sharing hosts", config: { hosts: 5, groups: 3, replicas: 3, shards: 10 } },
  lab: { label: "12 hosts · controller + 3 groups of 3", config: { hosts: 12, placement: [[4, 5, 6], [7, 8, 9], [10, 11, 12]], shards: 10 } },
  // the same with the workload's gets answered at any replica of the key's group (after a ReadIndex round with its leader)
  "small-fr": { label: "5 hosts · 3 groups of 3, sharing hosts · follower reads", config: { hosts: 5, groups: 3, replicas: 3, shards: 10, followerReads: true } },
  "lab-fr": { label: "12 hosts · controller + 3 groups of 3 · follower reads", config: { hosts: 12, placement: [[4, 5, 6], [7, 8, 9], [10, 11, 12]], shards: 10, followerReads: true } },
};

const CODES = { crash: "c", restart: "r", partition: "P", heal: "h", cutLink: "x", restoreLink: "X", dropMessage: "d", put: "p", append: "a", get: "g", setWorkload: "w", join: "j", leave: "l", move: "m" };
const OPS = Object.fromEntries(Object.entries(CODES).map(([op, c]) => [c, op]));
export const ACTIONS = new Set(Object.keys(CODES));
/** How many arguments each action takes in a link. */
const ARITY = { crash: 1, restart: 1, partition: 1, heal: 0, cutLink: 2, restoreLink: 2, dropMessage: 1, put: 2, append: 2, get: 1, setWorkload: 1, join: 1, leave: 1, move: 2 };
const enc = encodeURIComponent;

function encodeArgs(op, args) {
  switch (op) {
    case "partition": return [args[0].map((g) => g.join(".")).join("-")];
    case "put": case "append": return [enc(args[0]), enc(args[1])];
    case "get": return [enc(args[0])];
    case "setWorkload": return [args[0] ? "1" : "0"];
    case "join": case "leave": return [[].concat(args[0]).join(".")];
    default: return args.map(String);
  }
}

function decodeArgs(op, parts) {
  const n = readNumber;
  switch (op) {
    case "partition": return [readPartition(parts[0])];
    case "heal": return [];
    case "put": case "append": return [dec(parts[0]), dec(parts[1])];
    case "get": return [dec(parts[0])];
    case "setWorkload": if (parts[0] !== "0" && parts[0] !== "1") throw new Error(`workload must be 0 or 1, not "${parts[0]}"`); return [parts[0] === "1"];
    case "join": case "leave": return [parts[0].split(".").map(n)];
    default: return parts.map(n);
  }
}

/** `<t>` or, after single events, `<t>+<s>`. */
const encodePosition = (t, s) => (s ? `${t}+${s}` : `${t}`);

export const encodeAction = (a) => `${encodePosition(a.t, a.s)}${CODES[a.op]}${encodeArgs(a.op, a.args).join(":")}`;

export function decodeAction(text) {
  const m = /^(\d+)(?:\+(\d+))?([a-zA-Z])(.*)$/.exec(text);
  if (!m) throw new Error(`cannot read action "${text.slice(0, 40)}"`);
  const op = OPS[m[3]];
  if (!op) throw new Error(`unknown action code "${m[3]}"`);
  const parts = m[4] === "" ? [] : m[4].split(":");
  checkArity(text, op, parts, ARITY[op]);
  const s = Number(m[2] ?? 0);
  if (s > LINK_MAX_STEPS) throw new Error(`action "${text.slice(0, 40)}" counts more than ${LINK_MAX_STEPS} steps`);
  return { t: Number(m[1]), s, op, args: readArgs(text, () => decodeArgs(op, parts)) };
}

/** The hash of a sharded run. */
export function encodeShardedRun({ layout, seed, actions, at, atSteps = 0, scenario }) {
  const parts = ["mode=sharded", `layout=${layout}`, `seed=${seed}`];
  if (actions.length) parts.push(`a=${actions.map(encodeAction).join(",")}`);
  if (at != null) parts.push(`at=${encodePosition(Math.round(at), atSteps)}`);
  if (scenario) parts.push(`sc=${enc(scenario.id)}.${scenario.step}`);
  return "#" + parts.join("&");
}

/** Whether a hash asks for the sharded mode. */
export const isShardedHash = (hash) => /(^#|&)mode=sharded(&|$)/.test(hash);

/** Reads a sharded hash back; throws with a readable message if malformed or past the limits of a link (share.js). */
export function decodeShardedRun(hash) {
  const kv = hashParams(hash);
  const layout = kv.layout ?? "small";
  if (!Object.hasOwn(LAYOUTS, layout)) throw new Error(`unknown layout ${layout.slice(0, 40)} (known: ${Object.keys(LAYOUTS).join(", ")})`);
  const seed = kv.seed === undefined ? 1 : Number(kv.seed);
  if (!/^\d+$/.test(kv.seed ?? "1") || !Number.isSafeInteger(seed)) throw new Error(`bad seed=${kv.seed.slice(0, 40)}`);
  const actions = kv.a ? kv.a.split(",").filter(Boolean).map(decodeAction) : [];
  checkActions(actions);
  const m = kv.at ? /^(\d+)(?:\+(\d+))?$/.exec(kv.at) : null;
  if (kv.at && !m) throw new Error(`bad at=${kv.at.slice(0, 40)}`);
  const at = m ? Number(m[1]) : null;
  const atSteps = m ? Number(m[2] ?? 0) : 0;
  if (at !== null) checkTime(at, `at=${kv.at.slice(0, 40)}`);
  if (atSteps > LINK_MAX_STEPS) throw new Error(`at=${kv.at.slice(0, 40)} counts more than ${LINK_MAX_STEPS} steps`);
  let scenario = null;
  if (kv.sc) { const [id, step] = dec(kv.sc).split("."); scenario = { id, step: Number(step) || 0 }; }
  return { layout, seed, actions, at, atSteps, scenario };
}

/**
 * A ShardedSimulation as the page uses it. Its results are plain JSON data
 * already (numbers, never BigInt: it renders with serde-wasm-bindgen's
 * JSON-compatible serializer), so, unlike Simulation's, they are not walked
 * again: that walk cost more than state() itself.
 */
export class ShardedSim {
  constructor(backend, config) {
    this.raw = new backend.ShardedSimulation(config);
  }
  now() { return Number(this.raw.now()); }
  runFor(ms) { return this.runUntil(this.now() + ms); }
  /** Advances to `t`, in calls of at most MAX_RUN_MS (the most one call may cover). */
  runUntil(t) {
    while (t - this.now() > MAX_RUN_MS) this.raw.runUntil(this.now() + MAX_RUN_MS);
    return Number(this.raw.runUntil(t));
  }
  step() { return Number(this.raw.step()); }
  /** An independent copy of the run at this moment (ShardedSimulation.fork()). */
  fork() {
    const copy = Object.create(ShardedSim.prototype);
    copy.raw = this.raw.fork();
    return copy;
  }
  state() { return this.raw.state(); }
  history(opts) { return this.raw.history(opts); }
  events(since) { return this.raw.events(since); }
  message(id) { return this.raw.message(id); }
  check() { return this.raw.check(); }
  shardOf(key) { return Number(this.raw.shardOf(key)); }
  put(k, v) { return Number(this.raw.put(k, v)); }
  append(k, v) { return Number(this.raw.append(k, v)); }
  get(k) { return Number(this.raw.get(k)); }
  setWorkload(on) { this.raw.setWorkload(on); }
  join(groups) { this.raw.join(groups); }
  leave(groups) { this.raw.leave(groups); }
  move(shard, group) { this.raw.move(shard, group); }
  crash(host) { this.raw.crash(host); }
  restart(host) { this.raw.restart(host); }
  partition(sides) { this.raw.partition(sides); }
  heal() { this.raw.heal(); }
  cutLink(from, to) { this.raw.cutLink(from, to); }
  restoreLink(from, to) { this.raw.restoreLink(from, to); }
  dropMessage(id) { return this.raw.dropMessage(id); }
  free() { this.raw.free(); }
}

/** The recorded run and the simulation at the moment shown. */
export class ShardedTimeline extends Replay {
  /**
   * `checkpointCap`: the most checkpoints kept (checkpoints.js);
   * `checkpoints`: the Checkpoints to keep instead; `start`: a checkpoint
   * (replay.js, _restore) to go on from, instead of time 0.
   */
  constructor(backend, layout, seed, actions = [], { checkpointCap, checkpoints = null, start = null } = {}) {
    super(backend, actions, checkpoints ?? new Checkpoints({ cap: checkpointCap, memoryBytes: backend.memoryBytes }));
    this.layout = layout;
    this.seed = seed;
    this.horizon = 0;
    this._begin(start);
  }

  get config() { return { ...LAYOUTS[this.layout].config, seed: this.seed }; }
  get display() { return this.sim.now(); }
  get end() { return Math.max(this.horizon, this.sim.now(), this.actions.length ? this.actions[this.actions.length - 1].t : 0); }

  _newSim() { return new ShardedSim(this.backend, this.config); }

  /** Drops the recorded actions not applied yet, and the checkpoints past the run's position. */
  _forgetFuture() {
    this.actions.length = this.applied;
    this._dropFutureCheckpoints();
  }

  _apply(a) {
    try { this.sim[a.op](...a.args); } catch (err) { this.replayErrors.push(`${a.op}(${a.args.join(", ")}) at ${a.t} ms: ${err.message}`); }
    this.applied++;
  }

  /** Where the run is: `{ t, s }` (see `base` and `steps`, replay.js). */
  position() { return { t: this.base, s: this.steps }; }

  /** Advances to `t`, replaying the recorded actions on the way. */
  runUntil(t) { this.seekPosition(t, 0, false); }

  /** Whether going to position (t, s) goes back: behind the run's position, or before the simulation's clock. */
  _isBack(t, s) { return t < this.base || (t === this.base && s < this.steps) || t < this.sim.now(); }

  /** seekPosition for a link: throws if the replay takes more than LINK_REPLAY_BUDGET_MS of real time. */
  seekWithinBudget(t, s = 0) { this._withinBudget(() => this.seekPosition(t, s)); }

  /** Shows the moment `t` (replaying from the latest checkpoint before it, or the start, if `t` is in the past). */
  seek(t) { this.seekPosition(t, 0); }

  /**
   * Shows position (t, s), replaying the recorded actions on the way; with
   * `mayGoBack`, a position behind the run is replayed from the latest
   * checkpoint before it (or the start).
   */
  seekPosition(t, s = 0, mayGoBack = true) {
    const from = mayGoBack ? this._resumeFor(t, this._isBack(t, s)) : this.sim.now();
    this._reach(t, s);
    this.horizon = Math.max(this.horizon, this.sim.now());
    if (mayGoBack) this.lastSeek = { from, replayedMs: this.sim.now() - from };
  }

  /**
   * A copy of the run at time `t` (free() it), for planning ahead without
   * touching what is shown: every recorded action, and the simulation as
   * replaying them from the start to (t, 0) (runUntil(t)) brings it. Unless
   * `t` lies behind the run, the copy starts from a fork of the simulation
   * (runUntil(t) then finishes a millisecond single events stopped in, as
   * the replay does); otherwise from a fork of the latest checkpoint at or
   * before `t`, or from the start. It takes no checkpoints: a plan only
   * goes forward.
   */
  scratch(t) {
    const goesOn = !this._isBack(t, 0);
    const cp = this.checkpoints.latest((c) => c.at <= t);
    const start = goesOn && !(cp && cp.at > this.sim.now()) ? this._here() : cp;
    const copy = new ShardedTimeline(this.backend, this.layout, this.seed, this.actions, {
      start,
      checkpoints: new Checkpoints({ spacing: Infinity }),
    });
    copy.runUntil(t);
    return copy;
  }

  /**
   * Makes `actions` the recorded run (a tour's planned future; the page's
   * run, in the check worker). Checkpoints whose past they keep stay; if the
   * simulation's own past changed, it goes back to the latest of those (or
   * the start): seek() then.
   */
  setActions(actions) {
    let same = 0;
    while (same < actions.length && same < this.actions.length && encodeAction(actions[same]) === encodeAction(this.actions[same])) same++;
    const next = actions[same]?.t ?? Infinity;
    const holds = (applied, at) => applied < same || (applied === same && next >= at);
    this.actions = actions.map((a) => ({ ...a }));
    this.checkpoints.dropIf((c) => !holds(c.applied, c.at));
    if (!holds(this.applied, this.sim.now())) this._resumeFor(this.base, true);
  }

  /** Processes the next event. A recorded future (left by scrubbing back) is dropped: the run now differs from it. */
  step() {
    this._forgetFuture();
    this.sim.step();
    this.steps++;
    this.horizon = this.sim.now();
  }

  /** Does an action now: later recorded actions (a future left by scrubbing back) are dropped. */
  act(op, ...args) {
    if (!ACTIONS.has(op)) throw new Error(`${op} is not an action`);
    const result = this.sim[op](...args); // throws on bad arguments: nothing recorded then
    this._forgetFuture();
    this.actions.push({ t: this.base, s: this.steps, op, args });
    this.applied++;
    this.horizon = this.sim.now();
    return result;
  }
}
