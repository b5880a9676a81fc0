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
// The replay itself (replay.js, shared with the sharded mode) moves the
// simulation to positions and keeps checkpoints: forks of the simulation at
// positions (t, 0) on a grid of virtual time, with the number of actions
// applied there. Going back resumes from a fork of the latest checkpoint at
// or before the target and replays only the rest. This timeline adds what
// the page draws: `display`, the virtual time shown, which playing moves
// by fractions of a millisecond (a frame's worth), and which is never
// behind the simulation's clock.

import { Sim } from "./sim-adapter.js";
import { Checkpoints } from "./checkpoints.js";
import { Replay } from "./replay.js";

/** The sim methods that count as actions (and may be recorded and shared). */
export const ACTIONS = new Set([
  "crash", "restart", "partition", "heal", "cutLink", "restoreLink", "setDropRate", "setDuplicateRate",
  "setLatency", "triggerElection", "transferLeadership", "snapshot", "dropMessage",
  "put", "append", "get", "delete", "setWorkload",
  "addNode", "addLearner", "promote", "removeMember",
]);

export class Timeline extends Replay {
  /**
   * `start`: a checkpoint (replay.js, _restore) to go on from, instead of
   * time 0; `checkpoints`: the Checkpoints to keep, instead of the page's.
   */
  constructor(backend, config, actions = [], { start = null, checkpoints = null } = {}) {
    super(backend, actions, checkpoints ?? new Checkpoints({ memoryBytes: backend.memoryBytes }));
    this.config = { ...config };
    this.horizon = 0;
    this.revision = 0; // bumped whenever the action list changes
    this.version = 0; // bumped whenever the simulation changes
    this._begin(start);
  }

  _newSim() { return new Sim(this.backend, this.config); }

  /** Starts again from time 0, showing it. */
  rebuild() {
    super.rebuild();
    this.display = 0;
    this.version++;
  }

  /** Continues from a fork of checkpoint `cp` (Replay._restore), showing its time. */
  _restore(cp) {
    super._restore(cp);
    this.display = cp.at;
    this.version++;
  }

  /** Whether the next event comes no later than `limit` (none: false). */
  _canStep(limit) {
    const next = this.sim.nextEventAt();
    return next !== null && next <= limit;
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

  /** seekPosition for a link: throws if the replay takes more than LINK_REPLAY_BUDGET_MS of real time. */
  seekWithinBudget(position) { this._withinBudget(() => this.seekPosition(position)); }

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
    this._dropFutureCheckpoints();
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

  /**
   * A copy of this run up to the current position, for planning ahead
   * without touching what is shown (free() it): a fork of the simulation
   * with the actions applied so far, at the same position, instead of a
   * replay of them from the start. It takes no checkpoints: a plan only
   * goes forward.
   */
  scratch() {
    const tl = new Timeline(this.backend, this.config, this.actions.slice(0, this.applied), {
      start: this._here(),
      checkpoints: new Checkpoints({ spacing: Infinity }),
    });
    tl.seekPosition(this.position());
    return tl;
  }
}
