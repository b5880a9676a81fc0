// Measures the browser simulation: virtual time simulated per wall-clock
// second, for 5 and 9 nodes under a steady client workload (3 clients, one
// operation every ~50 ms each), in Node and, with --chromium, in headless
// Chromium (driven through chromedriver). A measurement, not a test.
//
//   scripts/build-web.sh
//   node scripts/bench-wasm.mjs [--chromium] [--pkg DIR] [--seconds N] [--repeat N]
//
// CHROMEDRIVER (default /usr/bin/chromedriver) and CHROME (default
// /usr/bin/chromium) locate the browser. Each figure is the median of
// --repeat runs (default 5) of --seconds of virtual time (default 60),
// after a warm-up run.

import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import { spawn } from "node:child_process";
import { fileURLToPath, pathToFileURL } from "node:url";
import path from "node:path";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const argv = process.argv.slice(2);
const option = (name, fallback) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : fallback;
};
const pkg = path.resolve(option("--pkg", path.join(root, "web/pkg")));
const seconds = Number(option("--seconds", 60));
const repeat = Number(option("--repeat", 5));
const inChromium = argv.includes("--chromium");

/** The cases measured: cluster size and the configuration on top of the page's defaults. */
const CASES = [
  { nodes: 5, label: "defaults (safety checks, 5000-line trace)", extra: {} },
  { nodes: 5, label: "no trace (traceCapacity: 0)", extra: { traceCapacity: 0 } },
  { nodes: 5, label: "no trace, no safety checks", extra: { traceCapacity: 0, checkSafety: false } },
  { nodes: 9, label: "defaults (safety checks, 5000-line trace)", extra: {} },
  { nodes: 9, label: "no trace (traceCapacity: 0)", extra: { traceCapacity: 0 } },
  { nodes: 9, label: "no trace, no safety checks", extra: { traceCapacity: 0, checkSafety: false } },
];

/**
 * Runs every case; self-contained so that it can be sent to the browser as
 * source text. Returns one row per case.
 */
function measure(Simulation, cases, seconds, repeat) {
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const once = (nodes, extra, virtualMs) => {
    const sim = new Simulation({ nodes, seed: 1, ...extra });
    sim.setWorkload({ clients: 3, intervalMs: 50, keys: 5, readFraction: 0.3 });
    sim.runFor(1000);
    const events = sim.stats().events;
    const start = performance.now();
    for (let left = virtualMs; left > 0; left -= 100_000_000) sim.runFor(Math.min(left, 100_000_000)); // at most 1e8 ms a call
    const wallMs = performance.now() - start;
    const result = { speed: virtualMs / wallMs, eventsPerSec: ((sim.stats().events - events) / wallMs) * 1000, ops: sim.history().length };
    // What the page pays per frame and per refresh at the end of that run.
    let t = performance.now();
    for (let i = 0; i < 10; i++) sim.state({ logTail: 20 });
    result.stateMs = (performance.now() - t) / 10;
    t = performance.now();
    sim.history();
    result.historyMs = performance.now() - t;
    t = performance.now();
    sim.check();
    result.checkMs = performance.now() - t;
    sim.free();
    return result;
  };
  for (const c of cases) once(c.nodes, c.extra, 10000); // warm-up: let the engine tier up
  return cases.map((c) => {
    const runs = [];
    for (let i = 0; i < repeat; i++) runs.push(once(c.nodes, c.extra, seconds * 1000));
    return {
      nodes: c.nodes,
      label: c.label,
      speed: median(runs.map((r) => r.speed)),
      min: Math.min(...runs.map((r) => r.speed)),
      max: Math.max(...runs.map((r) => r.speed)),
      eventsPerSec: median(runs.map((r) => r.eventsPerSec)),
      ops: runs[0].ops,
      stateMs: median(runs.map((r) => r.stateMs)),
      historyMs: median(runs.map((r) => r.historyMs)),
      checkMs: median(runs.map((r) => r.checkMs)),
    };
  });
}

function print(where, rows) {
  console.log(`\n${where}: ${seconds} s of virtual time per run, median of ${repeat} runs`);
  console.log("nodes  configuration                                  x real time (min..max)   events/s   ops   state() ms  history() ms  check() ms");
  for (const r of rows) {
    console.log(
      `${String(r.nodes).padEnd(6)} ${r.label.padEnd(46)} ${r.speed.toFixed(0).padStart(6)} (${r.min.toFixed(0)}..${r.max.toFixed(0)})`.padEnd(82) +
        `${(r.eventsPerSec / 1000).toFixed(0).padStart(6)}k ${String(r.ops).padStart(6)} ${r.stateMs.toFixed(2).padStart(10)} ${r.historyMs.toFixed(2).padStart(13)} ${r.checkMs.toFixed(2).padStart(11)}`,
    );
  }
}

async function inNode() {
  const mod = await import(pathToFileURL(path.join(pkg, "distribkv_wasm.js")).href);
  await mod.default({ module_or_path: await readFile(path.join(pkg, "distribkv_wasm_bg.wasm")) });
  print(`Node ${process.version}`, measure(mod.Simulation, CASES, seconds, repeat));
}

/** Serves the package, drives Chromium through chromedriver's WebDriver API. */
async function inBrowser() {
  const server = createServer(async (req, res) => {
    try {
      const url = new URL(req.url, "http://localhost");
      if (url.pathname === "/") {
        res.writeHead(200, { "content-type": "text/html" });
        res.end("<!doctype html><title>bench</title>");
        return;
      }
      const file = path.join(pkg, path.basename(url.pathname));
      const body = await readFile(file);
      const type = file.endsWith(".wasm") ? "application/wasm" : "text/javascript";
      res.writeHead(200, { "content-type": type });
      res.end(body);
    } catch {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const page = `http://127.0.0.1:${server.address().port}/`;
  const port = 9500 + Math.floor(Math.random() * 400);
  const driver = spawn(process.env.CHROMEDRIVER ?? "/usr/bin/chromedriver", [`--port=${port}`], { stdio: "ignore" });
  const base = `http://127.0.0.1:${port}`;
  const call = async (method, url, body) => {
    const res = await fetch(base + url, { method, headers: { "content-type": "application/json" }, body: body && JSON.stringify(body) });
    const json = await res.json();
    if (json.value && json.value.error) throw new Error(`${json.value.error}: ${json.value.message}`);
    return json.value;
  };
  let session = null;
  try {
    for (let i = 0; ; i++) {
      try { await call("GET", "/status"); break; } catch (e) { if (i > 50) throw e; await new Promise((r) => setTimeout(r, 100)); }
    }
    const created = await call("POST", "/session", {
      capabilities: {
        alwaysMatch: {
          browserName: "chrome",
          "goog:chromeOptions": {
            binary: process.env.CHROME ?? "/usr/bin/chromium",
            args: ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
          },
          timeouts: { script: 600000 },
        },
      },
    });
    session = created.sessionId;
    const version = created.capabilities.browserVersion;
    await call("POST", `/session/${session}/url`, { url: page });
    const script = `
      const done = arguments[arguments.length - 1];
      (async () => {
        const mod = await import("./distribkv_wasm.js");
        await mod.default();
        const measure = ${measure.toString()};
        return measure(mod.Simulation, ${JSON.stringify(CASES)}, ${seconds}, ${repeat});
      })().then(done, (e) => done({ error: String(e && e.stack || e) }));`;
    const rows = await call("POST", `/session/${session}/execute/async`, { script, args: [] });
    if (rows.error) throw new Error(rows.error);
    print(`Chromium ${version} (headless)`, rows);
  } finally {
    if (session) await call("DELETE", `/session/${session}`).catch(() => {});
    driver.kill();
    server.close();
  }
}

await inNode();
if (inChromium) await inBrowser();
