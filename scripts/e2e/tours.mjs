// Walk every guided tour in Node (no browser) against the built web/pkg and
// print, step by step, whether what the text claims holds in the real
// simulator. A tool for writing tours; the browser test checks the same.
//   node tours.mjs [id,id,...] [seed]      (VERBOSE=1 prints every step's text and names)
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const web = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../web");
const mod = await import(pathToFileURL(path.join(web, "pkg/distribkv_wasm.js")).href);
await mod.default({ module_or_path: await readFile(path.join(web, "pkg/distribkv_wasm_bg.wasm")) });
const { Timeline } = await import(pathToFileURL(path.join(web, "js/timeline.js")).href);
const { SCENARIOS, planContext, failedClaims } = await import(pathToFileURL(path.join(web, "js/scenarios.js")).href);

const { SHARDED_SCENARIOS } = await import(pathToFileURL(path.join(web, "js/sharded/tours.js")).href);
const { ShardedTimeline } = await import(pathToFileURL(path.join(web, "js/sharded/timeline.js")).href);
const { walkTour } = await import(pathToFileURL(path.join(web, "js/sharded/tour-kit.js")).href);

const ids = process.argv[2] ? process.argv[2].split(",") : [...SCENARIOS, ...SHARDED_SCENARIOS].map((s) => s.id);
const seed = process.argv[3] !== undefined ? Number(process.argv[3]) : null;
const summary = (st) => st.nodes.map((n) => `${n.id}: ${n.up ? n.role : "down"} term ${n.term} voted ${n.votedFor ?? "-"} last ${n.lastIndex} commit ${n.commitIndex} snapshot ${n.snapshotIndex}`);
let problems = 0;
for (const id of ids) {
  const sharded = SHARDED_SCENARIOS.find((x) => x.id === id);
  if (sharded) {
    // the sharded mode's tours: a ShardedTimeline, the same claims
    const tl = new ShardedTimeline({ ShardedSimulation: mod.ShardedSimulation }, sharded.layout, seed ?? sharded.seed);
    for (const [i, r] of walkTour(sharded, tl).entries()) {
      const text = r.step.text(r.facts).replace(/<[^>]+>/g, "").replace(/\s+/g, " ").trim();
      const bad = r.failed.length || /undefined|NaN|null|host \?/.test(text);
      if (bad) problems++;
      console.log(`${bad ? "FAIL" : "ok  "} ${id} ${i + 1}/${sharded.steps.length} ${r.step.title}${r.failed.length ? `\n     claims that do not hold: ${r.failed.join("; ")}` : ""}`);
      if (bad || process.env.VERBOSE) console.log(`     ${text}\n     facts: ${JSON.stringify(r.facts)}`);
    }
    tl.free();
    continue;
  }
  const s = SCENARIOS.find((x) => x.id === id);
  if (!s) throw new Error(`no tour ${id}`);
  const tl = new Timeline({ name: "wasm", Simulation: mod.Simulation }, seed === null ? s.config : { ...s.config, seed });
  const facts = {};
  for (const [i, step] of s.steps.entries()) {
    delete facts.miss;
    try { step.plan(planContext(tl), facts); } catch (err) { facts.miss = `the step threw: ${err.stack}`; }
    const failed = failedClaims(step, facts, tl.sim);
    const text = step.text(facts).replace(/<[^>]+>/g, "").replace(/\s+/g, " ").trim();
    const bad = facts.miss || failed.length || /undefined|NaN|null|node \?/.test(text);
    if (bad) problems++;
    console.log(`${bad ? "FAIL" : "ok  "} ${id} ${i + 1}/${s.steps.length} ${step.title} (at ${tl.sim.now()} ms)${facts.miss ? `\n     missed: ${facts.miss}` : ""}${failed.length ? `\n     claims that do not hold: ${failed.join("; ")}` : ""}`);
    if (bad || process.env.VERBOSE) {
      console.log(`     ${text}\n     facts: ${JSON.stringify(facts)}`);
      for (const line of summary(tl.sim.state())) console.log(`       ${line}`);
    }
  }
  tl.free();
}
console.log(problems ? `${problems} step(s) with problems` : "every step holds");
process.exitCode = problems ? 1 : 0;
