// The sharded mode's correctness checks, off the page's main thread.
// check() (linearizability of the whole history, Raft safety per group)
// costs tens of milliseconds once the history holds thousands of
// operations: on the main thread it would cost a few frames each time.
// The run is deterministic, so this worker keeps a replica of it (the same
// layout, seed and recorded actions, advanced to the moment asked) and
// checks that; the page shows the result for the moment it was taken.
//
// In:  { id, layout, seed, actions, t }   Out: { id, t, result, ms } or { id, error }

import { loadBackend } from "../sim-adapter.js";
import { ShardedTimeline, encodeAction } from "./timeline.js";

const backend = loadBackend();
let timeline = null;
let run = null; // layout/seed of the replica

self.onmessage = async ({ data }) => {
  const { id, layout, seed, actions, t } = data;
  try {
    const wasm = await backend;
    // a different run, a different past (the actions already replayed), or an earlier moment: replay from the start
    const done = timeline?.applied ?? 0;
    const samePast = timeline && done <= actions.length &&
      actions.slice(0, done).map(encodeAction).join(",") === timeline.actions.slice(0, done).map(encodeAction).join(",");
    if (!timeline || run !== `${layout}/${seed}` || !samePast || t < timeline.display) {
      timeline?.free();
      timeline = new ShardedTimeline(wasm, layout, seed, []);
      run = `${layout}/${seed}`;
    }
    timeline.actions = actions.map((a) => ({ ...a }));
    timeline.runUntil(t);
    const t0 = performance.now();
    const result = timeline.sim.check();
    self.postMessage({ id, t: timeline.display, result, ms: performance.now() - t0 });
  } catch (err) {
    self.postMessage({ id, error: String(err?.message ?? err) });
  }
};
