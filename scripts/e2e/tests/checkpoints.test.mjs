// The timelines' checkpoints (web/js/checkpoints.js) driven through the
// replay both timelines share (web/js/replay.js), in Node, over a stand-in
// simulation that only keeps its clock and counts its forks: how many
// checkpoints a long run keeps, where, how far a seek back replays, that a
// long replay forks nothing it frees again, that every freed fork is freed
// once, and that the memory budget stops the set from growing the memory.
import { test } from "node:test";
import assert from "node:assert/strict";

import { CHECKPOINT_CAP, Checkpoints, FIRST_SPACING_MS, MEMORY_BUDGET, MIN_CAP } from "../../../web/js/checkpoints.js";
import { Replay } from "../../../web/js/replay.js";

const MiB = 2 ** 20;

/** What the stand-in simulations share: forks made, forks alive, and a wasm-like memory that never shrinks. */
class World {
  constructor({ forkBytes = 0, baseBytes = 0 } = {}) {
    this.made = 0;
    this.alive = 0;
    this.forkBytes = forkBytes;
    this.baseBytes = baseBytes;
    this.peakAlive = 0;
  }
  memoryBytes() { return this.baseBytes + this.peakAlive * this.forkBytes; }
}

/** A simulation that keeps only its clock (runUntil, now) and its forks' count. */
class FakeSim {
  constructor(world, at = 0, isFork = false) {
    this.world = world;
    this.at = at;
    this.isFork = isFork;
    this.freed = false;
  }
  runUntil(t) { this.at = Math.max(this.at, t); }
  now() { return this.at; }
  step() { this.at += 1; }
  fork() {
    this.world.made++;
    this.world.alive++;
    this.world.peakAlive = Math.max(this.world.peakAlive, this.world.alive);
    return new FakeSim(this.world, this.at, true);
  }
  free() {
    assert.ok(!this.freed, "a simulation is freed once");
    this.freed = true;
    if (this.isFork) this.world.alive--;
  }
}

/** A replay of a run with no recorded actions over FakeSims. */
class FakeReplay extends Replay {
  constructor(world, options = {}) {
    super(null, [], new Checkpoints({ memoryBytes: () => world.memoryBytes(), ...options }));
    this.world = world;
    this.rebuild();
  }
  _newSim() { return new FakeSim(this.world); }
  _apply() { this.applied++; }
  /** Goes to time `t`, from a checkpoint when that goes back, as the timelines' seeks do. */
  seek(t) {
    const from = this._resumeFor(t, t < this.sim.now());
    this._reach(t, 0);
    return t - from;
  }
}

/** Checks the set after a run to `end`: within the cap, on the spacing's grid, in order, each fork alive once. */
function checkSet(replay, end) {
  const { list, spacing, cap } = replay.checkpoints;
  assert.ok(list.length <= cap, `${list.length} checkpoints kept, cap ${cap}`);
  for (const [i, c] of list.entries()) {
    assert.equal(c.at % spacing, 0, `checkpoint at ${c.at} is off the grid of ${spacing} ms`);
    assert.ok(c.at > 0 && c.at <= end, `checkpoint at ${c.at} outside (0, ${end}]`);
    if (i > 0) assert.ok(c.at > list[i - 1].at, "checkpoints in order, one per time");
    assert.ok(!c.sim.freed, "a kept checkpoint is not freed");
  }
  assert.equal(replay.world.alive, list.length, "every fork not kept was freed");
}

test("playing an hour keeps at most the cap, on its grid, and a seek back replays less than two spacings' share of the run", () => {
  const world = new World();
  const replay = new FakeReplay(world);
  const end = 3_600_000;
  // Played as the page plays: a frame's worth at a time.
  for (let t = 16; t <= end; t += 16) replay.seek(t);
  checkSet(replay, end);
  const { list, spacing } = replay.checkpoints;
  assert.ok(list.length > CHECKPOINT_CAP / 2, `only ${list.length} checkpoints kept`);
  // The promise in checkpoints.js: a seek replays less than 2 T / CHECKPOINT_CAP.
  assert.ok(spacing < (2 * end) / CHECKPOINT_CAP, `spacing ${spacing} ms for a run of ${end} ms`);
  for (const target of [end - 1, end - 5_000, end - 60_000, end - 600_000, 1_000, 0]) {
    replay.seek(end);
    const replayed = replay.seek(target);
    assert.ok(replayed < spacing && replayed < Math.max(FIRST_SPACING_MS, (2 * end) / CHECKPOINT_CAP),
      `seek back to ${target} replayed ${replayed} ms (spacing ${spacing})`);
    assert.equal(replay.sim.now(), target);
  }
  checkSet(replay, end);
  replay.free();
  assert.equal(world.alive, 0, "free() frees every checkpoint");
});

test("a short run keeps a checkpoint every FIRST_SPACING_MS", () => {
  const world = new World();
  const replay = new FakeReplay(world);
  const end = FIRST_SPACING_MS * (CHECKPOINT_CAP - 1) + 500;
  replay.seek(end);
  assert.equal(replay.checkpoints.spacing, FIRST_SPACING_MS);
  assert.deepEqual(replay.checkpoints.list.map((c) => c.at),
    Array.from({ length: CHECKPOINT_CAP - 1 }, (_, i) => (i + 1) * FIRST_SPACING_MS));
  checkSet(replay, end);
});

test("one long replay (a link's moment) forks only the checkpoints it keeps", () => {
  const world = new World();
  const replay = new FakeReplay(world);
  const end = 2_345_678;
  replay.seek(end);
  checkSet(replay, end);
  assert.equal(world.made, replay.checkpoints.list.length, `${world.made} forks made for ${replay.checkpoints.list.length} kept`);
  // Going further in another jump thins again, and still leaks nothing.
  replay.seek(3 * end);
  checkSet(replay, 3 * end);
});

test("past the memory budget the cap falls to what is kept, and the memory stops growing", () => {
  // 8 MiB a fork from 200 MiB: the budget (256 MiB) is passed at the eighth fork.
  const world = new World({ baseBytes: 200 * MiB, forkBytes: 8 * MiB });
  const replay = new FakeReplay(world);
  let lowered = null;
  for (let t = 1_000; t <= 3_600_000; t += 1_000) {
    replay.seek(t);
    if (lowered === null && replay.checkpoints.cap < CHECKPOINT_CAP) lowered = { at: t, memory: world.memoryBytes(), cap: replay.checkpoints.cap };
  }
  assert.ok(lowered, "the cap was lowered");
  assert.ok(lowered.memory > MEMORY_BUDGET);
  assert.ok(lowered.cap >= MIN_CAP && lowered.cap < CHECKPOINT_CAP, `cap lowered to ${lowered.cap}`);
  assert.equal(world.memoryBytes(), lowered.memory, "no fork grew the memory after the cap was lowered");
  checkSet(replay, 3_600_000);
  assert.ok(replay.checkpoints.list.length >= MIN_CAP - 1, "checkpoints are still kept");
});

test("the cap never falls below MIN_CAP, however large a fork", () => {
  const world = new World({ baseBytes: MEMORY_BUDGET, forkBytes: 64 * MiB });
  const replay = new FakeReplay(world);
  replay.seek(600_000);
  assert.equal(replay.checkpoints.cap, MIN_CAP);
  checkSet(replay, 600_000);
});

test("a scratch copy (spacing Infinity) takes no checkpoint", () => {
  const world = new World();
  const replay = new FakeReplay(world, { spacing: Infinity });
  replay.seek(1_000_000);
  assert.equal(replay.checkpoints.list.length, 0);
  assert.equal(world.made, 0);
});
