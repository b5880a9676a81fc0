// Measure seeking back in a long run, in Chromium, with the timeline's
// checkpoints and without them (every seek back replaying from the start),
// and what the checkpoints cost: the wasm memory they take and the time of
// a fork; then what planning a guided tour's step at the end costs: its
// scratch copy of the run (scratch(): a fork) against the copy replayed
// from the start that it replaced. A measurement, not a test: prints what
// it saw.
//
//   node seek.mjs [--minutes N] [--sharded] [--repeat N]
//
// The single-group run: 9 nodes, seed 1, from time 0 the workload of the
// frame-rate measurement (5 clients, 50 ms apart, 5 keys, 30% reads).
// --sharded: the lab layout (12 hosts, a controller and 3 groups of 3),
// seed 1, its workload on, a shard moved every 2 s for the first minute.
// The run is played to --minutes (20) of virtual time through the
// timeline (as the page plays or replays a link), then each seek goes back
// to a moment 5 to 60 s before the end, from the end.
import { launch, openPage } from "./browser.mjs";

const argv = process.argv.slice(2);
const arg = (name, d) => { const i = argv.indexOf(`--${name}`); return i >= 0 ? argv[i + 1] : d; };
const minutes = Number(arg("minutes", 20));
const repeat = Number(arg("repeat", 3));
const sharded = argv.includes("--sharded");

const env = await launch();
try {
  const { page, errors } = await openPage(env, { hash: sharded ? "#mode=sharded" : "" });
  const result = await page.evaluate(async ({ minutes, repeat, sharded }) => {
    const wasm = await (await import("./pkg/distribkv_wasm.js")).default();
    const mib = () => wasm.memory.buffer.byteLength / 2 ** 20;
    const tl0 = window.__distribkv.timeline();
    const end = minutes * 60_000;
    const make = () => {
      if (sharded) {
        const moves = Array.from({ length: 30 }, (_, i) => ({ t: 2000 * (i + 1), op: "move", args: [i % 10, 100 + ((i + 1) % 3)] }));
        return new tl0.constructor(tl0.backend, "lab", 1, [{ t: 0, op: "setWorkload", args: [true] }, ...moves]);
      }
      return new tl0.constructor(tl0.backend, { ...tl0.config, nodes: 9, seed: 1 },
        [{ t: 0, s: 0, at: 0, op: "setWorkload", args: [{ clients: 5, intervalMs: 50, keys: 5, readFraction: 0.3 }] }]);
    };
    const toEnd = (tl) => { const t0 = performance.now(); tl.seek(end); return performance.now() - t0; };
    const Checkpoints = tl0.checkpoints.constructor;
    const add = Checkpoints.prototype.add;

    // the run without checkpoints, then with: the wasm memory after each (it never shrinks, and the
    // second run reuses what the first freed, so the difference is what the checkpoints hold)
    const before = mib();
    Checkpoints.prototype.add = function () {};
    const plain = make();
    const playPlain = toEnd(plain);
    const ops = plain.sim.history().length;
    plain.free();
    const withoutCheckpoints = mib();
    Checkpoints.prototype.add = add;
    const tl = make();
    const playWith = toEnd(tl);
    const withCheckpoints = mib();
    const checkpoints = tl.checkpoints.list.map((c) => c.at);

    // a fork at the end: its time, and its size (memory grown by 5 of them, if it grew)
    const m0 = mib();
    const f0 = performance.now();
    const forks = Array.from({ length: 5 }, () => tl.sim.fork());
    const forkMs = (performance.now() - f0) / forks.length;
    const forkMiB = (mib() - m0) / forks.length;
    forks.forEach((f) => f.free());

    const targets = [5_000, 20_000, 60_000].map((d) => end - d);
    const seekBack = (t) => { tl.seek(end); const t0 = performance.now(); tl.seek(t); return { t, ms: performance.now() - t0, replayedMs: tl.lastSeek.replayedMs }; };
    const after = [];
    for (let r = 0; r < repeat; r++) for (const t of targets) after.push(seekBack(t));
    // a tour step's scratch copy at the end: a fork, or (as before) a replay of the run from the start
    const timed = (copy) => { const t0 = performance.now(); const c = copy(); const ms = performance.now() - t0; c.free(); return ms; };
    const replayed = () => {
      if (sharded) { const c = new tl.constructor(tl.backend, tl.layout, tl.seed, tl.actions); c.runUntil(tl.display); return c; }
      const c = new tl.constructor(tl.backend, tl.config, tl.actions.slice(0, tl.applied));
      c.seekPosition(tl.position());
      return c;
    };
    tl.seek(end);
    const scratch = { forkMs: [], replayMs: [] };
    for (let r = 0; r < repeat; r++) {
      scratch.forkMs.push(timed(() => (sharded ? tl.scratch(tl.display) : tl.scratch())));
      scratch.replayMs.push(timed(replayed));
    }
    // without checkpoints: every seek back replays from the start, as before them
    tl.checkpoints.clear();
    tl.checkpoints.add = () => {};
    const fromStart = targets.map(seekBack);
    tl.free();
    return {
      end, ops, playPlainMs: playPlain, playWithMs: playWith, checkpoints, spacing: tl.checkpoints.spacing,
      memory: { before, withoutCheckpoints, withCheckpoints, forkMiB }, forkMs, after, fromStart, scratch,
      jsHeapMiB: performance.memory ? performance.memory.usedJSHeapSize / 2 ** 20 : null,
    };
  }, { minutes, repeat, sharded });
  const med = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
  console.log(`${sharded ? "sharded lab" : "9 nodes"}, ${minutes} min of virtual time, ${result.ops} operations`);
  console.log(`played to the end in ${(result.playPlainMs / 1000).toFixed(2)} s without checkpoints, ${(result.playWithMs / 1000).toFixed(2)} s with`);
  console.log(`${result.checkpoints.length} checkpoints, ${result.spacing / 1000} s apart: ${result.checkpoints.map((t) => t / 1000).join(" ")}`);
  const m = result.memory;
  console.log(`wasm memory: ${m.before.toFixed(0)} MiB at the start, ${m.withoutCheckpoints.toFixed(0)} MiB after the run without checkpoints, ${m.withCheckpoints.toFixed(0)} MiB with (${(m.withCheckpoints - m.withoutCheckpoints).toFixed(0)} MiB more); a fork at the end ${result.forkMs.toFixed(1)} ms, ${m.forkMiB.toFixed(1)} MiB`);
  for (const t of new Set(result.after.map((s) => s.t))) {
    const a = result.after.filter((s) => s.t === t), b = result.fromStart.find((s) => s.t === t);
    console.log(`seek back to ${(t / 1000).toFixed(0)} s: ${med(a.map((s) => s.ms)).toFixed(0)} ms (median of ${a.length}; replayed ${a[0].replayedMs} ms) with checkpoints, ${b.ms.toFixed(0)} ms from the start`);
  }
  const sc = result.scratch;
  console.log(`a tour step's scratch copy at the end: ${med(sc.forkMs).toFixed(0)} ms from a fork, ${med(sc.replayMs).toFixed(0)} ms replayed from the start (medians of ${sc.forkMs.length})`);
  if (result.jsHeapMiB !== null) console.log(`JS heap ${result.jsHeapMiB.toFixed(0)} MiB`);
  if (errors.length) console.log(`page errors: ${errors.join("; ")}`);
} finally {
  await env.close();
}
