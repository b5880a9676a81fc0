// What the JS API tests share: the built package (web/pkg, from
// scripts/build-web.sh; DISTRIBKV_PKG=path/to/pkg loads another build),
// loaded once, and a few helpers.

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import path from "node:path";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const pkg = path.resolve(process.env.DISTRIBKV_PKG ?? path.join(root, "web/pkg"));
const jsFile = path.join(pkg, "distribkv_wasm.js");
const wasmFile = path.join(pkg, "distribkv_wasm_bg.wasm");
if (!existsSync(jsFile) || !existsSync(wasmFile)) {
  throw new Error(`${pkg} has no build: run scripts/build-web.sh first`);
}
const mod = await import(pathToFileURL(jsFile).href);
await mod.default({ module_or_path: await readFile(wasmFile) });
export const { Simulation, ShardedSimulation } = mod;
export { mod };

/** Asserts that a value is plain JSON data: no Map, no BigInt, no undefined, no class instances. */
export function assertPlain(value, where = "value") {
  if (value === null) return;
  switch (typeof value) {
    case "string": case "boolean": return;
    case "number": assert.ok(Number.isFinite(value), `${where} is ${value}`); return;
    case "object": {
      if (Array.isArray(value)) { value.forEach((v, i) => assertPlain(v, `${where}[${i}]`)); return; }
      assert.equal(Object.getPrototypeOf(value), Object.prototype, `${where} is not a plain object`);
      for (const [k, v] of Object.entries(value)) assertPlain(v, `${where}.${k}`);
      return;
    }
    default: assert.fail(`${where} has type ${typeof value}`);
  }
}

/** The up leader with the highest term; `state.leader` (the simulator's) must name the same one. */
export const leaderOf = (state) => {
  const leaders = state.nodes.filter((n) => n.up && n.role === "leader");
  leaders.sort((a, b) => b.term - a.term);
  const highest = leaders[0]?.id ?? null;
  assert.equal(state.leader, highest, "state().leader");
  return highest;
};

export function waitForLeader(sim, limitMs) {
  for (let t = 0; t < limitMs; t += 10) {
    const id = leaderOf(sim.state({ logTail: 0 }));
    if (id !== null) return id;
    sim.runFor(10);
  }
  return leaderOf(sim.state({ logTail: 0 }));
}

/** One scripted run: every kind of call, at fixed virtual times. */
export function script(sim) {
  sim.setWorkload({ clients: 3, intervalMs: 40, keys: 3, readFraction: 0.3 });
  sim.runFor(800);
  const leader = sim.leader();
  assert.notEqual(leader, null);
  sim.crash(leader);
  sim.put("x", "1");
  sim.runFor(600);
  sim.partition([[1, 2], [3, 4, 5]]);
  sim.setDropRate(0.1);
  sim.setDuplicateRate(0.05);
  sim.setLatency(2, 30);
  sim.runFor(700.5);
  sim.heal();
  sim.setDropRate(0);
  sim.restart(leader);
  sim.cutLink(1, 2);
  sim.append("x", "2", 2);
  for (let i = 0; i < 25; i++) sim.step();
  sim.restoreLink(1, 2);
  try { sim.triggerElection(3); } catch { /* refused by the node: part of the script */ }
  sim.runUntil(3500);
  try { sim.transferLeadership(4); } catch { /* no leader right now */ }
  sim.snapshot(5);
  sim.get("x");
  sim.runFor(1000);
  return sim;
}
