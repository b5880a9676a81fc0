// Screenshots of the page at a few telling moments, for a visual check:
//   node shots.mjs [out-dir]   (default artifacts/shots; WIDTH, HEIGHT, DARK=1 to change the look)
import { launch, openPage, ARTIFACTS } from "./browser.mjs";
import fs from "node:fs/promises";
import path from "node:path";

const out = process.argv[2] ?? path.join(ARTIFACTS, "shots");
await fs.mkdir(out, { recursive: true });
const env = await launch();
const W = Number(process.env.WIDTH ?? 1440), H = Number(process.env.HEIGHT ?? 900);

async function shot(page, name) {
  const file = path.join(out, `${name}.png`);
  await page.waitForTimeout(250);
  await page.screenshot({ path: file });
  console.log(file);
}
async function fresh(hash = "") {
  const { page, errors } = await openPage(env, { hash });
  if (process.env.DARK) await page.emulateMedia({ colorScheme: "dark" });
  await page.setViewportSize({ width: W, height: H });
  return { page, errors };
}
const at = (page, t) => page.evaluate((t) => { window.__distribkv.app.playback.seek(t); }, t);

// 1. an election in progress (5 nodes)
{
  const { page } = await fresh("#n=5&seed=42");
  await page.evaluate(() => { const app = window.__distribkv.app; app.timeline.stepOnce(); });
  await page.evaluate(() => {
    const app = window.__distribkv.app;
    while (!app.timeline.sim.state().nodes.some((n) => n.role === "candidate")) app.timeline.stepOnce();
    for (let i = 0; i < 3; i++) app.timeline.stepOnce();
    app.dirty = true;
  });
  await shot(page, "1-election");
  await page.close();
}
// 2. steady load, 9 nodes, a node selected
{
  const { page } = await fresh("#n=9&seed=1&a=0w5:50:5:0.3");
  await at(page, 3000);
  await page.keyboard.press("3");
  await shot(page, "2-load-9-nodes");
  await page.close();
}
// 3. a partition under load
{
  const { page } = await fresh("#n=5&seed=4&a=0w3:100:5:0.3,1000P1.2-3.4.5");
  await at(page, 2200);
  await shot(page, "3-partition");
  await page.close();
}
// 4. the leader crashed
{
  const { page } = await fresh("#n=5&seed=42&a=0w3:100:5:0.3");
  await at(page, 1500);
  const l = await page.evaluate(() => window.__distribkv.sim().state().nodes.find((n) => n.role === "leader").id);
  await page.keyboard.press(String(l));
  await page.keyboard.press("c");
  await page.evaluate(() => window.__distribkv.app.playback.seek(window.__distribkv.app.timeline.display + 250));
  await shot(page, "4-crash");
  await page.close();
}
// 5. a tour: snapshot install, step 3; 6. the Figure 8 step (c)
for (const [id, step, name] of [["snapshot", 3, "5-tour-snapshot-install"], ["figure-8", 4, "6-tour-figure8-c"], ["log-repair", 4, "7-tour-log-repair"]]) {
  const { page } = await fresh();
  await page.evaluate(({ id, step }) => {
    const g = window.__distribkv.app.guide;
    g.start(id);
    for (let i = 0; i < step; i++) { g.next(); g.skip(); }
  }, { id, step });
  await shot(page, name);
  await page.close();
}
// 8. the history over a longer window, and the correctness card scrolled into view
{
  const { page } = await fresh("#n=5&seed=7&a=0w4:60:3:0.4,1500c1,2500r1");
  await at(page, 4000);
  await page.click('.zoom button[data-span="10000"]');
  await page.evaluate(() => document.querySelector("#check-card").scrollIntoView());
  await shot(page, "8-history-and-correctness");
  await page.close();
}
// 9. a narrow window
{
  const { page } = await fresh("#n=7&seed=3&a=0w3:80:5:0.3");
  await page.setViewportSize({ width: 820, height: 1000 });
  await at(page, 2000);
  await shot(page, "9-narrow");
  await page.close();
}
await env.close();
