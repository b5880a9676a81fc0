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
import { ShardedTimeline } from "./timeline.js";

const backend = loadBackend();
let timeline = null;
/** Checkpoints the replica keeps: a few, as its memory comes on top of the page's. */
const WORKER_CHECKPOINTS = 4;
let run = null; // layout/seed of the replica

self.onmessage = async ({ data }) => {
  const { id, layout, seed, actions, t } = data;
  try {
    const wasm = await backend;
    // a different run starts afresh; a different past or an earlier moment replays from the replica's latest checkpoint that still holds
    if (!timeline || run !== `${layout}/${seed}`) {
      timeline?.free();
      timeline = new ShardedTimeline(wasm, layout, seed, [], { checkpointCap: WORKER_CHECKPOINTS });
      run = `${layout}/${seed}`;
    }
    timeline.setActions(actions);
    timeline.seek(t);
    const t0 = performance.now();
    const result = timeline.sim.check();
    self.postMessage({ id, t: timeline.display, result, ms: performance.now() - t0 });
  } catch (err) {
    self.postMessage({ id, error: String(err?.message ?? err) });
  }
};
