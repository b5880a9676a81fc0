// Measure the page's frame rate with 9 nodes under a steady client workload.
// A measurement, not a test: prints what it saw.
//
//   node fps.mjs [--speed EXP] [--seconds N] [--warmup N] [--clients N] [--interval MS]
//                [--width W --height H] [--trace FILE] [--sharded]
//
// --sharded measures the sharded mode instead: the lab layout (a controller
// and 3 groups of 3, 12 hosts) under its workload of 3 clients, a shard
// moved every 2 s of virtual time.
//
// --profile (with --sharded) then pauses and times, one by one, what a frame
// and the side panels call: the simulation's advance, state(), the history's
// incremental read, the stage and the history lanes drawn, the panels,
// events(), check() (after new operations), and history() read whole.
//
// --speed is the exponent of the speed slider (0 = 1x, 1 = 10x, 2 = 100x).
// The run starts at virtual time 0 and plays for --warmup seconds before the
// measured --seconds. --trace FILE records a Chromium performance trace of
// the measured seconds (open it in chrome://tracing or Perfetto).
import fs from "node:fs/promises";
import { launch, openPage, screenshot } from "./browser.mjs";

const argv = process.argv.slice(2);
const arg = (name, d) => { const i = argv.indexOf(`--${name}`); return i >= 0 ? argv[i + 1] : d; };
const speedExp = Number(arg("speed", 0));
const seconds = Number(arg("seconds", 10));
const warmup = Number(arg("warmup", 2));
const clients = Number(arg("clients", 5));
const interval = Number(arg("interval", 50));
const width = Number(arg("width", 1440)), height = Number(arg("height", 900));
const traceFile = arg("trace", null);
const shardedMode = argv.includes("--sharded");
const profile = argv.includes("--profile");
// the sharded run: workload on at 0, then shard i moved to the next group every 2 s
const shardedActions = ["0w1", ...Array.from({ length: 30 }, (_, i) => `${2000 * (i + 1)}m${i % 10}:${100 + ((i + 1) % 3)}`)];

const env = await launch();
let failed = false;
try {
  const hash = shardedMode ? `#mode=sharded&layout=lab&seed=1&a=${shardedActions.join(",")}&at=0` : `#n=9&seed=1&a=0w${clients}:${interval}:5:0.3`;
  const { page, errors } = await openPage(env, { hash });
  await page.setViewportSize({ width, height });
  await page.$eval("#speed", (el, v) => { el.value = String(v); el.dispatchEvent(new Event("input", { bubbles: true })); }, speedExp);
  await page.click("#play");
  await page.waitForTimeout(warmup * 1000);

  let cdp = null;
  if (traceFile) {
    cdp = await env.context.newCDPSession(page);
    await cdp.send("Tracing.start", {
      transferMode: "ReturnAsStream",
      traceConfig: { includedCategories: ["devtools.timeline", "disabled-by-default-devtools.timeline", "disabled-by-default-devtools.timeline.frame", "v8.execute", "blink.user_timing"] },
    });
  }
  const result = await page.evaluate((seconds) => new Promise((resolve) => {
    const times = [];
    const t0 = performance.now();
    const virtual0 = window.__distribkv.timeline().display;
    const tick = (t) => {
      times.push(t);
      if (t - t0 < seconds * 1000) { requestAnimationFrame(tick); return; }
      const d = times.slice(1).map((x, i) => x - times[i]).sort((a, b) => a - b);
      const app = window.__distribkv.app;
      resolve({
        fps: (times.length - 1) / ((times[times.length - 1] - times[0]) / 1000),
        p50: d[Math.floor(d.length * 0.5)], p95: d[Math.floor(d.length * 0.95)], max: d[d.length - 1],
        over20ms: d.filter((x) => x > 20).length, frames: d.length,
        app: app.frameStats(),
        virtualMs: app.timeline.display, virtualSpan: app.timeline.display - virtual0,
        ops: Array.isArray(app.historyCache) ? app.historyCache.length : app.history.length,
        inFlight: app.state.inFlight.length,
      });
    };
    requestAnimationFrame(tick);
  }), seconds);
  if (cdp) {
    const done = new Promise((r) => cdp.once("Tracing.tracingComplete", r));
    await cdp.send("Tracing.end");
    const { stream } = await done;
    const chunks = [];
    for (;;) {
      const { data, eof, base64Encoded } = await cdp.send("IO.read", { handle: stream });
      chunks.push(base64Encoded ? Buffer.from(data, "base64") : Buffer.from(data));
      if (eof) break;
    }
    await cdp.send("IO.close", { handle: stream });
    await fs.writeFile(traceFile, Buffer.concat(chunks));
  }
  await screenshot(page, shardedMode ? `fps-sharded-lab-speed-${speedExp}` : `fps-9-nodes-speed-${speedExp}`);
  const a = result.app;
  if (shardedMode) console.log(`wasm build · sharded mode, lab layout: controller + 3 groups of 3 on 12 hosts, 10 shards · 3 workload clients back to back · a shard moved every 2 s · speed ${10 ** speedExp}x · ${width}x${height}`);
  else console.log(`wasm build · 9 nodes · ${clients} clients, one operation each every 0–${2 * interval} ms · speed ${10 ** speedExp}x · ${width}x${height}`);
  console.log(`frame rate: ${result.fps.toFixed(1)} fps over ${result.frames} frames (p50 ${result.p50.toFixed(1)} ms, p95 ${result.p95.toFixed(1)} ms, max ${result.max.toFixed(1)} ms, ${result.over20ms} frames over 20 ms)`);
  console.log(`per frame (moving averages): simulation ${a.simMs.toFixed(2)} ms, state/history/check ${a.dataMs.toFixed(2)} ms, drawing ${a.drawMs.toFixed(2)} ms; last check() ${a.checkMs.toFixed(1)} ms`);
  console.log(`${result.inFlight} messages in flight · ${result.ops} client operations by ${(result.virtualMs / 1000).toFixed(1)} s virtual · ${(result.virtualSpan / 1000).toFixed(1)} s virtual in the ${seconds} s measured: ${(result.virtualSpan / 1000 / seconds).toFixed(1)}x real time reached`);
  if (traceFile) console.log(`trace: ${traceFile}`);
  if (profile && shardedMode) {
    if ((await page.getAttribute("#play", "aria-label")) === "Pause") await page.click("#play");
    const p = await page.evaluate(() => {
      const app = window.__distribkv.app, tl = app.timeline, sim = tl.sim;
      const time = (n, f) => { const t = performance.now(); for (let i = 0; i < n; i++) f(i); return (performance.now() - t) / n; };
      const out = {};
      out["advance 16 ms (1x frame)"] = time(100, () => tl.runUntil(sim.now() + 16));
      out["state()"] = time(200, () => { app.state = sim.state(); });
      out["history, incremental read"] = time(200, () => { app.history = app.historyCache.sync(sim); });
      out["stage drawn"] = time(200, () => { app.dirty = false; app.draw(); });
      out["stage + history lanes drawn"] = time(200, () => { app.dirty = true; app.draw(); });
      out["side panels"] = time(50, () => app.refreshPanels());
      const last = sim.events().at(-1)?.seq ?? 0;
      out["events(), 40 new lines"] = time(50, () => sim.events(Math.max(0, last - 40)));
      out["check() after 50 ms more"] = time(5, () => { tl.runUntil(sim.now() + 50); sim.check(); });
      out["history() whole"] = time(10, () => sim.history());
      out.operations = sim.history().length;
      return out;
    });
    console.log("profile (ms per call, paused at the end):");
    for (const [k, v] of Object.entries(p)) console.log(`  ${k}: ${typeof v === "number" && k !== "operations" ? v.toFixed(2) : v}`);
  }
  if (errors.length) { console.log("console errors:", errors); failed = true; }
} finally {
  await env.close();
}
process.exitCode = failed ? 1 : 0;
