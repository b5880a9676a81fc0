// Checkpoints of a recorded run: forks of the simulation (fork()) kept at
// moments along it, with what its timeline needs to resume there (how many
// recorded actions were applied, its position). Going back then replays
// from the latest checkpoint at or before the target instead of from the
// start. Both timelines keep one, through the replay they share (replay.js).
//
// Checkpoints sit on a grid of virtual time: one at every multiple of
// `spacing` the run passes, taken while it moves forward (playing,
// seeking, replaying a link). A full set (CHECKPOINT_CAP) is thinned:
// the spacing doubles and the checkpoints off the new grid (every other
// one) are freed. So a run of T ms keeps at most CHECKPOINT_CAP forks, and
// a seek replays less than 2 T / CHECKPOINT_CAP ms of virtual time (at
// most FIRST_SPACING_MS while T < CHECKPOINT_CAP * FIRST_SPACING_MS).
//
// A fork shares the client history with the simulation it came from
// (its older operations; core's check::Chunked), so it costs what the
// hosts, disks, trace and journal hold: about 1 MiB, late in an hour of the
// sharded mode under load too. The wasm memory never shrinks, so should a
// fork still make it grow past MEMORY_BUDGET, the cap is lowered to the
// checkpoints kept (not below MIN_CAP): the set then reuses what thinning
// frees instead of growing the memory further.
// Figures (the size and time of a fork): docs/BENCHMARKS.md, "Browser
// page (seeking back)".
//
// A checkpoint is only valid for the recorded actions it was taken with:
// the timelines drop those past a moment whose future they replace.

/** Most checkpoints kept. */
export const CHECKPOINT_CAP = 64;
/** Virtual ms between checkpoints until the first thinning. */
export const FIRST_SPACING_MS = 2000;
/** Bytes of wasm memory past which a fork that grows it lowers the cap. */
export const MEMORY_BUDGET = 256 * 2 ** 20;
/** The cap is never lowered below this. */
export const MIN_CAP = 4;

export class Checkpoints {
  /**
   * `memoryBytes`: the size of the wasm memory (the backend's), or null to
   * ignore memory. `spacing` Infinity takes none (a scratch copy of a run,
   * which only plans ahead).
   */
  constructor({ cap = CHECKPOINT_CAP, spacing = FIRST_SPACING_MS, memoryBytes = null } = {}) {
    this.cap = cap;
    this.spacing = spacing;
    this.memoryBytes = memoryBytes;
    /** `{ at, sim, ... }`, by `at` (virtual ms), at most one per `at`; `sim` is never run, only forked. */
    this.list = [];
  }

  /** The first grid time after `now`. */
  nextAfter(now) { return (Math.floor(now / this.spacing) + 1) * this.spacing; }

  /** Whether a checkpoint is due at `now` (a grid time with none yet). */
  isDue(now) { return now > 0 && now % this.spacing === 0 && !this.list.some((c) => c.at === now); }

  /** Keeps a fork of `sim` at `sim.now()`, with `resume` (what the timeline needs to resume there). */
  add(sim, resume) {
    const at = sim.now();
    const i = this.list.findIndex((c) => c.at > at);
    const before = this.memoryBytes?.() ?? 0;
    const checkpoint = { ...resume, at, sim: sim.fork() };
    if (i < 0) this.list.push(checkpoint); else this.list.splice(i, 0, checkpoint);
    const after = this.memoryBytes?.() ?? 0;
    if (after > before && after > MEMORY_BUDGET) this.cap = Math.max(MIN_CAP, Math.min(this.cap, this.list.length - 1));
    while (this.list.length > this.cap) this.thin();
  }

  /**
   * Before running from virtual time `from` to `until`: thins now if the
   * checkpoints due on the way would overfill the set, so that a long
   * replay (a link's moment) does not fork what it would soon free.
   */
  prepare(from, until) {
    const due = (spacing) => Math.floor(until / spacing) - Math.floor(from / spacing) -
      this.list.filter((c) => c.at > from && c.at <= until && c.at % spacing === 0).length;
    while (this.list.length + due(this.spacing) > this.cap) this.thin();
  }

  /** Doubles the spacing and frees the checkpoints off the new grid. */
  thin() {
    this.spacing *= 2;
    this.dropIf((c) => c.at % this.spacing !== 0);
  }

  /** The latest checkpoint `fits` accepts (they are tried latest first), or null. */
  latest(fits) {
    for (let i = this.list.length - 1; i >= 0; i--) if (fits(this.list[i])) return this.list[i];
    return null;
  }

  /** Frees the checkpoints `stale` says no longer match the run. */
  dropIf(stale) {
    const kept = [];
    for (const c of this.list) if (stale(c)) c.sim.free(); else kept.push(c);
    this.list = kept;
  }

  /** Frees every checkpoint. */
  clear() { this.dropIf(() => true); }
}
