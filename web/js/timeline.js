// The recorded run: a config (seed, size, timing) plus the list of every
// action a person (or a guided scenario) took, each stamped with its position
// in virtual time. Because the simulation is deterministic, any moment can be
// rebuilt by replaying that list into a fresh Simulation: that is how the
// timeline is scrubbed and how share links reproduce a run.
//
// A position is (t, s): the simulation was advanced with runUntil(t), then
// s single events were processed with step(). Positions grow in that
// lexicographic order over a run, so replaying runUntil/step/action calls at
// the recorded positions repeats the run call for call (consecutive
// runUntil(a); runUntil(b) calls are replaced by runUntil(b)).
//
// Going back does not replay from the start: while the run moves forward,
// the timeline keeps checkpoints (checkpoints.js), forks of the simulation
// at positions (t, 0) on a grid of virtual time, with the number of actions
// applied there. A seek resumes from a fork of the latest checkpoint at or
// before its target and replays only the rest; every replay from the start
// passes through the same positions with the same actions applied, so it
// ends in the same state.

import { Sim } from "./sim-adapter.js";
import { Checkpoints } from "./checkpoints.js";
import { LINK_REPLAY_BUDGET_MS, replayTooSlow, runUntilWithin } from "./share.js";

/** The sim methods that count as actions (and may be recorded and shared). */
export const ACTIONS = new Set([
  "crash", "restart", "partition", "heal", "cutLink", "restoreLink", "setDropRate", "setDuplicateRate",
  "setLatency", "triggerElection", "transferLeadership", "snapshot", "dropMessage",
  "put", "append", "get", "delete", "setWorkload",
  "addNode", "addLearner", "promote", "removeMember",
]);

export class Timeline {
  constructor(backend, config, actions = []) {
    this.backend = backend;
    this.config = { ...config };
    this.actions = actions.map((a) => ({ ...a }));
    this.horizon = 0;
    this.revision = 0; // bumped whenever the action list changes
    this.version = 0; // bumped whenever the simulation changes
    this.replayErrors = [];
    /** While a link's moment is replayed (seekWithinBudget): the real time (performance.now()) it must be done by. */
    this.deadline = null;
    this.checkpoints = new Checkpoints({ memoryBytes: backend.memoryBytes });
    /** The last seek: the virtual time it ran the simulation from (0: the start) and how far (ms). */
    this.lastSeek = null;
    this.sim = null;
    this.rebuild();
  }

  rebuild() {
    if (this.sim) this.sim.free();
    this.sim = new Sim(this.backend, this.config);
    this.applied = 0;
    this.base = 0;
    this.steps = 0;
    this.display = 0;
    this.version++;
  }

  /** Continues from a fork of checkpoint `cp` (the checkpoint itself is never run). */
  _restore(cp) {
    this.sim.free();
    this.sim = cp.sim.fork();
    this.applied = cp.applied;
    this.base = cp.at;
    this.steps = 0;
    this.display = cp.at;
    this.version++;
  }

  /** The checkpoint to resume from before going to (t, s), or null: going back, the start; going forward, the run as it is. */
  _resumePoint(t, back) {
    const cp = this.checkpoints.latest((c) => c.at <= t);
    return back || (cp && cp.at > this.sim.now()) ? cp : null;
  }

  /** Before going to (t, s): resumes from the checkpoint _resumePoint picks (going back without one, from the start); returns the virtual time the run now goes on from. */
  _resumeFor(t, back) {
    const cp = this._resumePoint(t, back);
    if (cp) this._restore(cp); else if (back) this.rebuild();
    return this.sim.now();
  }

  /** The virtual time a seek to `time` would run the simulation from (a checkpoint's, 0 for the start, or the moment shown's). */
  replayStart(time) {
    const back = time < this.display || time < this.sim.now();
    const cp = this._resumePoint(Math.floor(Math.max(0, time)), back);
    return cp ? cp.at : back ? 0 : this.sim.now();
  }

  /** Are there recorded actions or time after the moment shown? */
  get hasFuture() { return this.applied < this.actions.length || this.horizon > this.display + 0.5; }
  /** Where the run can be scrubbed to. */
  get end() { return Math.max(this.horizon, this.display, this.actions.length ? this.actions[this.actions.length - 1].at : 0); }
  position() { return { t: this.base, s: this.steps, display: this.display }; }

  _apply(a) {
    a.at = this.sim.now();
    try {
      this.sim[a.op](...a.args);
    } catch (err) {
      this.replayErrors.push(`${a.op}(${a.args.join(", ")}) at ${a.at} ms: ${err.message}`);
    }
    this.applied++;
  }

  /** Move to position (t, s), never processing an event later than `limit`. Returns false if it stopped early. */
  _goto(t, s, limit = Infinity) {
    if (t > this.base) {
      if (t > limit) return false;
      if (t >= this.sim.now()) {
        this._runUntil(t);
        this.base = t;
        this.steps = 0;
      }
    }
    while (this.steps < s) {
      const next = this.sim.nextEventAt();
      if (next === null || next > limit) return false;
      this.sim.step();
      this.steps++;
      if (this.deadline !== null && this.steps % 1000 === 0 && performance.now() > this.deadline) throw replayTooSlow(this.sim.now(), t);
    }
    return true;
  }

  /**
   * runUntil(t), stopping at each checkpoint time on the way to take one;
   * under a deadline in slices, throwing once it passed (runUntil(a);
   * runUntil(b) is the same run as runUntil(b)).
   */
  _runUntil(t) {
    this.checkpoints.prepare(this.sim.now(), t);
    for (let at = this.checkpoints.nextAfter(this.sim.now()); at <= t; at = this.checkpoints.nextAfter(at)) {
      runUntilWithin(this.sim, at, this.deadline, t);
      if (this.checkpoints.isDue(at)) this.checkpoints.add(this.sim, { applied: this.applied });
    }
    runUntilWithin(this.sim, t, this.deadline);
  }

  /** seekPosition for a link: throws if the replay takes more than LINK_REPLAY_BUDGET_MS of real time. */
  seekWithinBudget(position) {
    this.deadline = performance.now() + LINK_REPLAY_BUDGET_MS;
    try { this.seekPosition(position); } finally { this.deadline = null; }
  }

  _before(a, t, s) { return a.t < t || (a.t === t && a.s <= s); }

  /** Bring the run to position (t, s), applying the recorded actions due on the way. */
  _reach(t, s, limit = Infinity) {
    for (;;) {
      const a = this.actions[this.applied];
      if (!a || !this._before(a, t, s)) break;
      if (a.at > limit) { this._goto(a.t, a.s, limit); return false; }
      this._goto(a.t, a.s);
      this._apply(a);
    }
    return this._goto(t, s, limit);
  }

  /** Play forward to virtual time `time` (fractional ms are kept for drawing). */
  advanceTo(time) {
    if (time < this.display) return;
    const target = Math.floor(time);
    this._reach(target, 0, time);
    this.display = Math.max(time, this.sim.now());
    this.horizon = Math.max(this.horizon, this.display);
    this.version++;
  }

  /** Show virtual time `time`: forward by playing on, backward by replaying from the latest checkpoint before it (or the start). */
  seek(time) {
    time = Math.max(0, time);
    const from = this._resumeFor(Math.floor(time), time < this.display || time < this.sim.now());
    this.advanceTo(time);
    this.lastSeek = { from, replayedMs: this.sim.now() - from };
  }

  /** Restore an exact position (used by share links and guided scenarios). */
  seekPosition({ t, s = 0, display = t }) {
    const from = this._resumeFor(t, t < this.base || (t === this.base && s < this.steps) || display < this.display);
    this._reach(t, s);
    this.display = Math.max(display, this.sim.now());
    this.horizon = Math.max(this.horizon, this.display);
    this.version++;
    this.lastSeek = { from, replayedMs: this.sim.now() - from };
  }

  /** Process one event (or the next recorded action, if it comes first). */
  stepOnce() {
    const a = this.actions[this.applied];
    const next = this.sim.nextEventAt();
    let result = null;
    if (a && a.t === this.base && a.s === this.steps) {
      this._apply(a);
      result = { at: this.sim.now(), node: null, kind: "action", text: `replayed ${a.op}` };
    } else if (a && a.t > this.base && (next === null || next > a.t)) {
      this._goto(a.t, 0);
      if (a.s === 0) this._apply(a);
      result = { at: this.sim.now(), node: null, kind: "action", text: `replayed ${a.op}` };
    } else if (next !== null) {
      result = this.sim.step();
      this.steps++;
    }
    this.display = Math.max(this.display, this.sim.now());
    this.horizon = Math.max(this.horizon, this.display);
    this.version++;
    return result;
  }

  /** Forget everything after the moment shown, the checkpoints past it included. */
  truncateFuture() {
    this.checkpoints.dropIf((c) => c.at > this.base || c.applied > this.applied);
    if (this.applied < this.actions.length || this.horizon > this.display) {
      this.actions.length = this.applied;
      this.horizon = this.display;
      this.revision++;
    }
  }

  /** Perform and record an action now. Acting in the past discards the future. Throws what the sim throws. */
  act(op, ...args) {
    if (!ACTIONS.has(op)) throw new Error(`not an action: ${op}`);
    const result = this.sim[op](...args);
    this.truncateFuture();
    this.actions.push({ t: this.base, s: this.steps, at: this.sim.now(), op, args });
    this.applied++;
    this.revision++;
    this.version++;
    return result;
  }

  /** Append actions planned elsewhere (a scratch timeline) as this run's future. */
  adoptFuture(actions) {
    this.truncateFuture();
    for (const a of actions) this.actions.push({ ...a });
    if (actions.length) this.revision++;
  }

  /** A copy of this run up to the current position, for planning ahead without touching what is shown. */
  scratch() {
    const tl = new Timeline(this.backend, this.config, this.actions.slice(0, this.applied));
    tl.seekPosition(this.position());
    return tl;
  }

  free() { if (this.sim) this.sim.free(); this.sim = null; this.checkpoints.clear(); }
}
