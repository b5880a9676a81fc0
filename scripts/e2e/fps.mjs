// Measure the page's frame rate with 9 nodes under a steady client workload.
// A measurement, not a test: prints what it saw.
//   node fps.mjs [--speed EXP] [--seconds N] [--clients N] [--width W --height H]
// E2E_MOCK=1 uses the JavaScript stand-in; the default is the wasm build.
import { launch, openPage, screenshot, USE_MOCK } from "./browser.mjs";

const arg = (name, d) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? Number(process.argv[i + 1]) : d; };
const speedExp = arg("speed", 0); // 10^0 = 1x virtual time
const seconds = arg("seconds", 6);
const clients = arg("clients", 5);
const width = arg("width", 1440), height = arg("height", 900);

const env = await launch();
const { page, errors } = await openPage(env, { hash: `#n=9&seed=1&a=0w${clients}:50:5:0.3` });
await page.setViewportSize({ width, height });
await page.$eval("#speed", (el, v) => { el.value = String(v); el.dispatchEvent(new Event("input", { bubbles: true })); }, speedExp);
await page.click("#play");
await page.waitForTimeout(2000); // warm up
const result = await page.evaluate((seconds) => new Promise((resolve) => {
  const times = [];
  const t0 = performance.now();
  const tick = (t) => {
    times.push(t);
    if (t - t0 < seconds * 1000) requestAnimationFrame(tick);
    else {
      const d = times.slice(1).map((x, i) => x - times[i]).sort((a, b) => a - b);
      const st = window.__distribkv.sim().state();
      resolve({
        fps: (times.length - 1) / ((times[times.length - 1] - times[0]) / 1000),
        p50: d[Math.floor(d.length * 0.5)], p95: d[Math.floor(d.length * 0.95)], max: d[d.length - 1],
        over20ms: d.filter((x) => x > 20).length, frames: d.length,
        app: window.__distribkv.frameStats(),
        virtualMs: window.__distribkv.timeline().display,
        ops: window.__distribkv.sim().history().length,
        inFlight: st.inFlight.length,
      });
    }
  };
  requestAnimationFrame(tick);
}), seconds);
await screenshot(page, "fps-9-nodes");
console.log(`backend: ${USE_MOCK ? "mock" : "wasm"} · 9 nodes · ${clients} clients every 50 ms · speed ${10 ** speedExp}x · ${width}x${height}`);
console.log(`frame rate: ${result.fps.toFixed(1)} fps over ${result.frames} frames (p50 ${result.p50.toFixed(1)} ms, p95 ${result.p95.toFixed(1)} ms, max ${result.max.toFixed(1)} ms, ${result.over20ms} frames over 20 ms)`);
console.log(`per frame: simulation ${result.app.simMs.toFixed(2)} ms, drawing ${result.app.drawMs.toFixed(2)} ms · ${result.inFlight} messages in flight · ${result.ops} client ops by ${(result.virtualMs / 1000).toFixed(1)} s virtual`);
if (errors.length) console.log("console errors:", errors);
await env.close();
