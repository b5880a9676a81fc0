// The replay both timelines share (timeline.js, sharded/timeline.js): a
// recorded run's simulation brought to a position, applying the recorded
// actions due on the way, with checkpoints (checkpoints.js) taken while it
// moves forward and resumed from when it goes back.
//
// A position is (t, s): the simulation was advanced with runUntil(t), then s
// single events were processed with step(). Actions are recorded at
// positions, in their lexicographic order, so replaying runUntil/step/action
// calls at the recorded positions repeats the run call for call
// (consecutive runUntil(a); runUntil(b) calls are the same run as
// runUntil(b)). Checkpoints are forks at positions (t, 0) on a grid of
// virtual time, with the number of actions applied there: every replay from
// the start passes through the same positions with the same actions
// applied, so one resumed from a checkpoint ends in the same state.
//
// A timeline extends Replay with what differs between the modes: its
// simulation (`_newSim()`), its action encoding and how it applies an action
// (`_apply(a)`, counting it in `applied`), what it displays, its links, and
// its seeks (which call _resumeFor, then _reach). What differs between them,
// and why:
// - Only the single-group simulation tells when its next event comes
//   (nextEventAt), so only that timeline plays with a `limit` (a frame's
//   virtual time, fractional) and stops where the next event lies past it
//   (`_canStep`); the sharded timeline always goes to whole positions. A
//   `limit` also holds back an action whose `at` (the virtual time it was
//   applied at, which only the single-group timeline records) lies past it.
// - What counts as going back: the single-group timeline shows a moment
//   (`display`) that may lie ahead of the simulation's clock (a frame's
//   fractional time; playing stops short of an event or action due after
//   it), and compares with that; the sharded one shows its clock.
// - Their scratch copies (for planning a guided step) start at different
//   points: the single-group guide plans from the exact position shown, the
//   sharded one from the time shown, as runUntil reaches it.

import { LINK_REPLAY_BUDGET_MS, replayTooSlow, runUntilWithin } from "./share.js";

/** Whether position (a.t, a.s) comes at or before (t, s) (a missing `s` counts as 0). */
const atOrBefore = (a, t, s) => a.t < t || (a.t === t && (a.s ?? 0) <= s);

export class Replay {
  /** `actions`: the recorded run (copied); `checkpoints`: the Checkpoints the replay keeps. The subclass builds the simulation (rebuild()). */
  constructor(backend, actions, checkpoints) {
    this.backend = backend;
    this.actions = actions.map((a) => ({ ...a }));
    this.replayErrors = [];
    /** While a link's moment is replayed (_withinBudget): the real time (performance.now()) it must be done by. */
    this.deadline = null;
    this.checkpoints = checkpoints;
    /** The last seek: the virtual time it ran the simulation from (0: the start) and how far (ms). */
    this.lastSeek = null;
    /** How many of `actions` the simulation has applied. */
    this.applied = 0;
    /**
     * The position of the run, (base, steps): the virtual time it last ran
     * to, then how many single events (step()) it processed since. A replay
     * processes a whole millisecond at once, so an action taken after
     * single events of a millisecond needs the count to come at the same
     * point.
     */
    this.base = 0;
    this.steps = 0;
    this.sim = null;
  }

  /** A fresh simulation of this run's config, at time 0 (the subclass's). */
  _newSim() { throw new Error("a timeline builds its own simulation"); }

  /**
   * Sets the run going: from a fork of `start` (a checkpoint, as _restore
   * takes it) or, without one, from time 0 (rebuild()). A subclass's
   * constructor calls it once its own fields are set.
   */
  _begin(start) {
    if (start) this._restore(start); else this.rebuild();
  }

  /** This run's position, as a checkpoint (its simulation is not copied: fork it before running it). */
  _here() {
    return { sim: this.sim, at: this.base, steps: this.steps, applied: this.applied };
  }

  /** Starts the run again from time 0, no action applied. */
  rebuild() {
    if (this.sim) this.sim.free();
    this.sim = this._newSim();
    this.applied = 0;
    this.base = 0;
    this.steps = 0;
  }

  /**
   * Continues from a fork of checkpoint `cp` (the checkpoint itself is never
   * run): `cp.sim` at position (cp.at, cp.steps, 0 if absent) with
   * `cp.applied` actions applied.
   */
  _restore(cp) {
    if (this.sim) this.sim.free();
    this.sim = cp.sim.fork();
    this.applied = cp.applied;
    this.base = cp.at;
    this.steps = cp.steps ?? 0;
  }

  /** The checkpoint to resume from before going to time `t`, or null: going back, the start; going forward, the run as it is. */
  _resumePoint(t, back) {
    const cp = this.checkpoints.latest((c) => c.at <= t);
    return back || (cp && cp.at > this.sim.now()) ? cp : null;
  }

  /** Before going to time `t`: resumes from the checkpoint _resumePoint picks (going back without one, from the start); returns the virtual time the run now goes on from. */
  _resumeFor(t, back) {
    const cp = this._resumePoint(t, back);
    if (cp) this._restore(cp); else if (back) this.rebuild();
    return this.sim.now();
  }

  /** Whether a single event may be processed without passing virtual time `limit` (the sharded simulation cannot tell: always). */
  _canStep(limit) { return true; }

  /**
   * Moves forward to position (t, s), never processing an event later than
   * `limit`; `target`: where the replay is headed (for replayTooSlow).
   * Returns false if it stopped early. A time behind the simulation's clock
   * (single events ran past it) is not run to: only the steps are counted.
   */
  _goto(t, s, limit = Infinity, target = t) {
    if (t > this.base) {
      if (t > limit) return false;
      if (t >= this.sim.now()) {
        this._runUntil(t, target);
        this.base = t;
        this.steps = 0;
      }
    }
    while (this.steps < s) {
      if (!this._canStep(limit)) return false;
      this.sim.step();
      this.steps++;
      if (this.deadline !== null && this.steps % 1000 === 0 && performance.now() > this.deadline) throw replayTooSlow(this.sim.now(), target);
    }
    return true;
  }

  /**
   * sim.runUntil(t), stopping at each checkpoint time on the way to take
   * one; under a deadline in slices, throwing once it passed (`target`:
   * where the replay is headed). A checkpoint is where a replay brings the
   * simulation: single events of a millisecond processed before runUntil
   * finishes it are the ones runUntil processes first.
   */
  _runUntil(t, target = t) {
    this.checkpoints.prepare(this.sim.now(), t);
    for (let at = this.checkpoints.nextAfter(this.sim.now()); at <= t; at = this.checkpoints.nextAfter(at)) {
      runUntilWithin(this.sim, at, this.deadline, target);
      if (this.checkpoints.isDue(at)) this.checkpoints.add(this.sim, { applied: this.applied });
    }
    runUntilWithin(this.sim, t, this.deadline, target);
  }

  /**
   * Brings the run forward to position (t, s), applying the recorded actions
   * due on the way, never processing an event later than `limit` nor
   * applying an action applied later than it (`a.at`). Returns false if it
   * stopped early.
   */
  _reach(t, s, limit = Infinity) {
    for (;;) {
      const a = this.actions[this.applied];
      if (!a || !atOrBefore(a, t, s)) break;
      if (a.at > limit) { this._goto(a.t, a.s ?? 0, limit, t); return false; }
      this._goto(a.t, a.s ?? 0, Infinity, t);
      this._apply(a);
    }
    return this._goto(t, s, limit, t);
  }

  /** Runs `seek()` (a seek to a link's moment), throwing if its replay takes more than LINK_REPLAY_BUDGET_MS of real time. */
  _withinBudget(seek) {
    this.deadline = performance.now() + LINK_REPLAY_BUDGET_MS;
    try { seek(); } finally { this.deadline = null; }
  }

  /** Frees the checkpoints past the run's position or taken with more actions applied (their future is being replaced). */
  _dropFutureCheckpoints() {
    this.checkpoints.dropIf((c) => c.at > this.base || c.applied > this.applied);
  }

  /** Frees the simulation and the checkpoints. */
  free() { if (this.sim) this.sim.free(); this.sim = null; this.checkpoints.clear(); }
}
