// fork() of both classes: a copy of the run at that moment, which runs on
// as the original does given the same calls, and which can be driven
// elsewhere without touching the original. Each check compares with a
// reference built by the same calls from the start, so a fork that were a
// fresh simulation, or that shared state with its original, fails.
//
//   scripts/build-web.sh && node --test wasm/tests/js/fork.test.mjs

import { test } from "node:test";
import assert from "node:assert/strict";
import { Simulation, ShardedSimulation } from "./support.mjs";

/** Everything a run exposes, as one string. */
const observe = (sim) => JSON.stringify({
  now: sim.now(), state: sim.state(), history: sim.history(), events: sim.events(0), check: sim.check(),
  hash: sim.traceHash?.(),
});

const single = {
  /** Mid-run: a workload, a crashed leader, a partition, a lossy network. */
  start() {
    const sim = new Simulation({ nodes: 5, seed: 7 });
    sim.setWorkload({ clients: 3, intervalMs: 40, keys: 3, readFraction: 0.3 });
    sim.runFor(900);
    sim.crash(sim.leader());
    sim.partition([[1, 2], [3, 4, 5]]);
    sim.setDropRate(0.1);
    sim.put("x", "1");
    sim.runFor(450);
    return sim;
  },
  drive(sim) {
    sim.runFor(700);
    sim.heal();
    for (let i = 0; i < 40; i++) sim.step();
    sim.append("x", "2");
    sim.runFor(1200);
  },
  diverge(sim) {
    sim.heal();
    sim.setDropRate(0);
    sim.crash(3);
    sim.runFor(1500);
  },
};

const sharded = {
  /** Mid-run: the workload on, a host down, a shard move under way. */
  start() {
    const sim = new ShardedSimulation({ seed: 3, traceCapacity: 5000 });
    sim.setWorkload(true);
    sim.runFor(1500);
    sim.crash(2);
    sim.move(3, 101);
    sim.put("k", "v");
    sim.runFor(60);
    return sim;
  },
  drive(sim) {
    sim.runFor(500);
    sim.partition([[1, 3], [4, 5]]);
    sim.runFor(700);
    sim.heal();
    sim.restart(2);
    for (let i = 0; i < 60; i++) sim.step();
    sim.move(7, 102);
    sim.runFor(1500);
  },
  diverge(sim) {
    sim.crash(1);
    sim.setWorkload(false);
    sim.runFor(1500);
  },
};

for (const [name, kind] of [["Simulation", single], ["ShardedSimulation", sharded]]) {
  test(`${name}.fork(): driven as the original, the fork runs on identically`, () => {
    const original = kind.start();
    const reference = kind.start();
    const fork = original.fork();
    assert.equal(observe(fork), observe(reference), "the fork is the run at that moment");
    kind.drive(original);
    kind.drive(fork);
    kind.drive(reference);
    const seen = observe(reference);
    assert.equal(observe(original), seen, "the original runs on as if it had not been forked");
    assert.equal(observe(fork), seen, "the fork runs on as the original does");
    for (const sim of [original, fork, reference]) sim.free();
  });

  test(`${name}.fork(): acting on the fork leaves the original unchanged`, () => {
    const original = kind.start();
    const reference = kind.start();
    const fork = original.fork();
    const before = observe(original);
    kind.diverge(fork);
    assert.equal(observe(original), before, "nothing done to the fork shows in the original");
    assert.notEqual(observe(fork), before);
    kind.drive(original);
    kind.drive(reference);
    assert.equal(observe(original), observe(reference), "the original runs on untouched");
    for (const sim of [original, fork, reference]) sim.free();
  });

  test(`${name}.fork(): a fork of a fork, and a fork outliving its original`, () => {
    const original = kind.start();
    const reference = kind.start();
    const fork = original.fork();
    original.free();
    const grandchild = fork.fork();
    fork.free();
    kind.drive(grandchild);
    kind.drive(reference);
    assert.equal(observe(grandchild), observe(reference));
    grandchild.free();
    reference.free();
  });
}
