// What the sharded mode's guided tours are written with (the same step
// format as the single-group tours, see scenarios.js): a step's plan acts on
// a scratch ShardedTimeline through planContext, and its expect claims are
// checked against query(sim), the run at the step's end.

import { unmetClaims } from "../tour-kit.js";

/** The run at a step's end, for claims. */
export function query(sim) {
  const state = sim.state();
  return {
    state,
    shard: (s) => state.shards[s],
    group: (g) => state.groups.find((x) => x.id === g),
    host: (h) => state.hosts[h - 1],
    history: () => sim.history(),
    check: () => sim.check(),
  };
}

/** The claims of `step` that do not hold on `sim`. */
export const failedClaims = (step, facts, sim) => unmetClaims(step, facts, () => query(sim));

/** What a step's plan works with. */
export function planContext(timeline) {
  return {
    act: (op, ...args) => timeline.act(op, ...args),
    runFor: (ms) => timeline.runUntil(timeline.sim.now() + ms),
    now: () => timeline.sim.now(),
    state: () => timeline.sim.state(),
    history: () => timeline.sim.history(),
    shardOf: (key) => timeline.sim.shardOf(key),
    /** Runs in slices of `slice` ms until `done(state)`; whether it held within `limit` ms. */
    waitFor(done, limit = 10_000, slice = 5) {
      const end = timeline.sim.now() + limit;
      while (timeline.sim.now() < end) {
        if (done(timeline.sim.state())) return true;
        timeline.runUntil(timeline.sim.now() + slice);
      }
      return done(timeline.sim.state());
    },
  };
}

/** Plays a sharded tour to its end on `timeline` (Node, tests): per step, the claims that fail. */
export function walkTour(tour, timeline) {
  const facts = {};
  return tour.steps.map((step) => {
    let error = null;
    try { step.plan(planContext(timeline), facts); } catch (err) { error = err; }
    return { step, failed: error ? [`the step threw: ${error.message}`] : failedClaims(step, facts, timeline.sim), facts: { ...facts } };
  });
}
