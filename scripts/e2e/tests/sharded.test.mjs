// End-to-end tests of the page's sharded mode in Debian's Chromium, against
// the real wasm build in web/pkg/.
import assert from "node:assert/strict";
import { env, pageTest, state, setSpeed, play, pause, waitText, scrubTo, canvasPoint } from "./page-kit.mjs";
import { openPage } from "../browser.mjs";

pageTest("sharded mode: join, a routed write, a move from the UI, a host crash, checks per group, share link", async (page) => {
  await page.waitForFunction(() => window.__distribkv?.mode === "sharded");
  assert.equal(await page.inputValue("#mode"), "sharded");
  assert.ok(await page.isHidden("#network-card"), "the single-group cards are hidden");
  await setSpeed(page, 0);
  await play(page);
  // the groups join: every shard served
  await page.waitForFunction(() => { const s = window.__distribkv.sim().state(); return s.config && s.shards.every((x) => x.status === "serving"); }, null, { timeout: 20000 });
  let st = await state(page);
  assert.equal(st.hosts.length, 5);
  assert.deepEqual(st.groups.map((g) => g.id), [0, 100, 101, 102]);
  // a routed write from the form
  await page.fill("#sh-op-key", "x");
  await page.fill("#sh-op-value", "hello");
  await page.click("#sh-op-form button[type=submit]");
  await waitText(page, "#sh-route", /"x" is in shard \d+, owned by group \d+/);
  await page.waitForFunction(() => window.__distribkv.sim().history().some((o) => o.key === "x" && o.status === "ok"), null, { timeout: 10000 });
  // the workload, then a move chosen in the UI
  await page.check("#sh-workload");
  const shard = await page.evaluate(() => window.__distribkv.sim().shardOf("k0"));
  st = await state(page);
  const from = st.shards[shard].owner;
  const to = [100, 101, 102].find((g) => g !== from);
  await page.selectOption("#sh-move-shard", String(shard));
  await page.selectOption("#sh-move-group", String(to));
  await setSpeed(page, -1);
  await page.click("#sh-move");
  await page.waitForFunction(([s, g]) => { const x = window.__distribkv.sim().state().shards[s]; return x.owner === g && x.status === "moving"; }, [shard, to], { timeout: 10000 });
  // a host of the old owner crashes mid-move, from the inspector
  const victim = (await state(page)).groups.find((g) => g.id === from).leader;
  await page.evaluate((h) => window.__distribkv.app.select({ type: "host", id: h }), victim);
  await page.click(`#sh-inspect-actions [data-act=crash]`);
  st = await state(page);
  assert.equal(st.hosts[victim - 1].up, false);
  assert.ok(st.hosts[victim - 1].replicas.every((r) => r.role === "down"), "every replica on the host stops");
  await setSpeed(page, 0);
  await page.waitForFunction(([s, g]) => { const x = window.__distribkv.sim().state().shards[s]; return x.owner === g && x.status === "serving"; }, [shard, to], { timeout: 20000 });
  await waitText(page, "#sh-admin", new RegExp(`move shard ${shard} to ${to}: ok`));
  // checks per group and linearizability in the correctness card
  await waitText(page, "#check-pill", /OK/);
  const list = await page.textContent("#check-list");
  for (const g of ["controller", "group 100", "group 101", "group 102"]) assert.ok(list.includes(`${g}: Raft safety holds`), `${g} is checked`);
  assert.match(list, /linearizability across moves: holds/);
  await page.click("#play");
  // the share link rebuilds the same moment
  const hash = await page.evaluate(() => window.__distribkv.app.copyLink());
  assert.match(hash, /^#mode=sharded&layout=small&seed=1&a=/);
  const before = await page.evaluate(() => { const s = window.__distribkv.sim().state(); return JSON.stringify([s.now, s.shards, s.hosts]); });
  const { page: other, errors } = await openPage(env, { hash });
  try {
    await other.waitForFunction(() => window.__distribkv?.mode === "sharded");
    const after = await other.evaluate(() => { const s = window.__distribkv.sim().state(); return JSON.stringify([s.now, s.shards, s.hosts]); });
    assert.equal(after, before, "the link rebuilds the run");
    assert.deepEqual(errors, []);
  } finally { await other.close(); }
  // scrubbing back rebuilds an earlier moment
  await page.$eval("#timeline", (el) => { el.value = "100"; el.dispatchEvent(new Event("input", { bubbles: true })); });
  const back = await state(page);
  assert.ok(back.now < JSON.parse(before)[0], "the timeline went back");
}, { timeout: 90000, open: { hash: "#mode=sharded&layout=small&seed=1" } });

pageTest("sharded mode: history lanes, the event log, a message inspected and dropped, a link cut from the canvas; the share link and the timeline keep them", async (page) => {
  await page.waitForFunction(() => window.__distribkv?.mode === "sharded");
  // the components the single-group mode has are shown here too
  for (const id of ["#history-panel", "#events-card"]) assert.ok(await page.isVisible(id), `${id} is shown`);
  assert.ok(await page.isHidden("#inspector"), "the inspector waits for a message or a link");
  await setSpeed(page, 0);
  await play(page);
  await page.waitForFunction(() => window.__distribkv.sim().state().now > 1500 && window.__distribkv.app.historyView.bars.length > 5, null, { timeout: 20000 });
  await pause(page);
  // the history lanes: one per workload client, bars for the operations the simulator recorded
  const lanes = await page.evaluate(() => {
    const app = window.__distribkv.app;
    const ids = new Set(window.__distribkv.sim().history().map((o) => o.id));
    return { clients: [...new Set(app.historyView.bars.map((b) => b.op.client))].sort(), known: app.historyView.bars.every((b) => ids.has(b.op.id)) };
  });
  assert.deepEqual(lanes.clients, [1, 2, 3]);
  assert.ok(lanes.known, "every bar is an operation of history()");
  const bar = await page.evaluate(() => { const b = window.__distribkv.app.historyView.bars.at(-1); return { x: (b.x + b.x2) / 2, y: b.y + b.h / 2 }; });
  const hbox = await page.locator("#history").boundingBox();
  await page.mouse.move(hbox.x + bar.x, hbox.y + bar.y);
  await waitText(page, "#tooltip", /op \d+ · client c\d · shard \d/);
  // the event log: the journal's lines, newest first (read while the card is in view)
  await page.locator("#events-card").scrollIntoViewIfNeeded();
  await waitText(page, "#event-log", /group 10\d (AppendEntries|Kv)|leader in term/);
  // a message: clicked on the canvas, read, dropped
  const msg = await page.evaluate(() => {
    const app = window.__distribkv.app, tl = app.timeline;
    // between two hosts (a client's requests are drawn as its line to the leader, not as dots)
    const wanted = (m) => typeof m.from === "number" && typeof m.to === "number" && m.from !== m.to && m.kinds.some((k) => k === "AppendEntries" || k === "AppendEntriesResponse");
    // paused wherever the frame loop stopped: move on 1 ms at a time to a moment with one in flight
    for (let i = 0; i < 500 && !tl.sim.state().inFlight.some(wanted); i++) tl.runUntil(tl.display + 1);
    app.state = tl.sim.state();
    app.dirty = true;
    app.draw();
    const ids = new Set(app.state.inFlight.filter(wanted).map((m) => m.id));
    return app.layout.msgs.find((m) => ids.has(m.id)) ?? null;
  });
  assert.ok(msg, "a message in flight is drawn");
  const cbox = await page.locator("#cluster").boundingBox();
  await page.mouse.click(cbox.x + msg.x, cbox.y + msg.y);
  assert.ok(await page.isVisible("#inspector"));
  await waitText(page, "#i-title", /AppendEntries/);
  const fields = await page.textContent("#i-fields");
  assert.match(fields, /group 10\d/, "each message names its group");
  assert.match(fields, /term/, "with its fields by the core's names");
  await page.click("#i-drop");
  assert.equal(await page.evaluate((id) => window.__distribkv.sim().message(id), msg.id), null, "dropped");
  assert.deepEqual(await page.evaluate(() => window.__distribkv.timeline().actions.at(-1).op), "dropMessage");
  // a link: clicked between two hosts of group 100, one direction cut from the inspector
  const mid = await page.evaluate(() => {
    const lay = window.__distribkv.app.layout;
    const [a, b] = [lay.hosts.find((h) => h.id === 4), lay.hosts.find((h) => h.id === 5)];
    return { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 };
  });
  await page.mouse.click(cbox.x + mid.x, cbox.y + mid.y);
  await waitText(page, "#inspector h2", /Link 4 ↔ 5/);
  await page.click('#inspector button[data-act="cut"][data-from="4"][data-to="5"]');
  let st = await state(page);
  assert.deepEqual(st.links.cut, [[4, 5]]);
  await page.keyboard.press("Escape");
  assert.ok(await page.isHidden("#inspector"));
  await setSpeed(page, -1);
  await play(page);
  await page.waitForFunction((t) => window.__distribkv.sim().now() > t + 300, st.now);
  await pause(page);
  // the correctness card is checked off the main thread, on a replica of the run: the same verdict as the page's own simulation
  assert.ok(await page.evaluate(() => window.__distribkv.app.checker !== null), "the checker worker runs");
  await page.waitForFunction(() => window.__distribkv.app.checkAt === window.__distribkv.sim().now(), null, { timeout: 10000 });
  const [fromWorker, here] = await page.evaluate(() => [JSON.stringify(window.__distribkv.app.checkResult), JSON.stringify(window.__distribkv.sim().check())]);
  assert.equal(fromWorker, here);
  assert.equal(JSON.parse(here).ok, true);
  await waitText(page, "#check-text", /checked at \d+\.\d\d s/);
  // the share link carries both actions and rebuilds the same moment
  const hash = await page.evaluate(() => window.__distribkv.app.copyLink());
  assert.match(hash, new RegExp(`d${msg.id}`));
  assert.match(hash, /x4:5/);
  const snap = () => page.evaluate(() => { const s = window.__distribkv.sim().state(); return JSON.stringify([s.now, s.hosts, s.shards, s.links, s.inFlight.map((m) => m.id)]); });
  const before = await snap();
  const { page: other, errors } = await openPage(env, { hash });
  try {
    await other.waitForFunction(() => window.__distribkv?.mode === "sharded");
    const after = await other.evaluate(() => { const s = window.__distribkv.sim().state(); return JSON.stringify([s.now, s.hosts, s.shards, s.links, s.inFlight.map((m) => m.id)]); });
    assert.equal(after, before, "the link rebuilds the run, the drop and the cut included");
    assert.deepEqual(errors, []);
  } finally { await other.close(); }
  // the timeline: before the cut, no cut; back to the end, the same moment
  const end = JSON.parse(before)[0];
  await page.evaluate((t) => { window.__distribkv.timeline().seek(t); window.__distribkv.app.dirty = true; }, st.now - 50);
  assert.deepEqual((await state(page)).links.cut, []);
  await page.evaluate((t) => { window.__distribkv.timeline().seek(t); window.__distribkv.app.dirty = true; }, end);
  assert.equal(await snap(), before, "replaying to the same moment gives the same state");
}, { timeout: 90000, open: { hash: "#mode=sharded&layout=lab&seed=1&a=0w1" } });

pageTest("sharded mode: a violation is shown per group in the correctness card and its operations are outlined in the history lanes", async (page) => {
  await page.waitForFunction(() => window.__distribkv?.mode === "sharded");
  await page.evaluate(() => window.__distribkv.timeline().runUntil(2500));
  // a check() result of today's shape, with a group's violation and a non-linearizable key (the real runs give the checkers nothing to find)
  const shown = await page.evaluate(() => {
    const app = window.__distribkv.app;
    const real = app.timeline.sim.check();
    const ops = app.historyCache.sync(app.timeline.sim).filter((o) => o.key === "k1" && o.status === "ok").slice(0, 2).map((o) => o.id);
    const bad = {
      ...real, ok: false,
      violations: ["group 101: Election Safety: two leaders in term 3 (hosts 4 and 5)", "not linearizable on key k1"],
      groups: real.groups.map((g) => (g.group === 101 ? { ...g, ok: false, violations: ["group 101: Election Safety: two leaders in term 3 (hosts 4 and 5)"] } : g)),
      linearizability: { ...real.linearizability, ok: false, key: "k1", ops, text: "not linearizable on key k1", decided: true },
    };
    app.checker = null; // the worker would replace it with the real verdict
    app.lastCheckAt = performance.now() + 1e9;
    app.checkResult = bad;
    app.checkAt = app.timeline.display;
    app.dirty = true;
    app.refreshPanels();
    return { ops, highlighted: [...app.highlightOps] };
  });
  assert.ok(shown.ops.length > 0, "operations on k1");
  assert.deepEqual(shown.highlighted.sort(), [...shown.ops].sort(), "the operations involved are outlined");
  assert.match(await page.textContent("#check-pill"), /VIOLATION/);
  assert.match(await page.textContent('#check-list li[data-group="101"]'), /group 101: .*two leaders in term 3/);
  assert.match(await page.textContent('#check-list li[data-group="100"]'), /Raft safety holds/);
  const colors = await page.evaluate(() => ["100", "101"].map((g) => getComputedStyle(document.querySelector(`#check-list li[data-group="${g}"]`)).color));
  assert.notEqual(colors[0], colors[1], "a group that holds is not shown in the violation's colour");
  assert.match(await page.textContent('#check-list li[data-check="linearizability"]'), /not linearizable on key k1/);
}, { open: { hash: "#mode=sharded&layout=lab&seed=1&a=0w1" } });

pageTest("sharded mode: Step processes one event; scrubbing back and stepping drops the recorded future", async (page) => {
  await page.waitForFunction(() => window.__distribkv?.mode === "sharded");
  await page.evaluate(() => window.__distribkv.timeline().runUntil(3000));
  assert.equal(await page.evaluate(() => window.__distribkv.timeline().actions.length), 2);
  assert.equal(await page.evaluate(() => window.__distribkv.sim().state().hosts[1].up), false, "the recorded crash of host 2 was replayed");
  await page.$eval("#timeline", (el) => { el.value = "100"; el.dispatchEvent(new Event("input", { bubbles: true })); });
  const t0 = await page.evaluate(() => window.__distribkv.sim().now());
  assert.ok(t0 < 1000, "scrubbed back");
  await page.click("#step");
  assert.ok(await page.evaluate(() => window.__distribkv.sim().now()) >= t0, "time moved to the next event");
  assert.equal(await page.evaluate(() => window.__distribkv.timeline().actions.length), 0, "the crash at 1.5 s and the move at 2 s are dropped");
}, { open: { hash: "#mode=sharded&layout=small&seed=2&a=1500c2,2000m1:101" } });

pageTest("the mode selector switches modes; single-group links keep their mode", async (page) => {
  await page.waitForFunction(() => window.__distribkv?.mode === "single");
  assert.equal(await page.inputValue("#mode"), "single");
  await Promise.all([page.waitForEvent("load"), page.selectOption("#mode", "sharded")]);
  await page.waitForFunction(() => window.__distribkv?.mode === "sharded");
  assert.ok(await page.isVisible("#shard-card"));
  await Promise.all([page.waitForEvent("load"), page.selectOption("#mode", "single")]);
  await page.waitForFunction(() => window.__distribkv?.mode === "single");
  assert.ok(await page.isVisible("#network-card"));
}, { open: { hash: "#n=3&seed=4" } });

pageTest("sharded tour: a shard moves while clients write, a host fails mid-move; every claim holds", async (page) => {
  // listed with the single-group tours; the link opens the sharded mode at the tour
  await page.waitForFunction(() => window.__distribkv?.mode === "single");
  await page.click("#guide-btn");
  await Promise.all([page.waitForEvent("load"), page.click("[data-sharded-tour=shard-move]")]);
  await page.waitForFunction(() => window.__distribkv?.mode === "sharded" && window.__distribkv.app.guide !== null);
  const steps = await page.evaluate(() => window.__distribkv.app.guide.tour.steps.length);
  for (let i = 0; i < steps; i++) {
    await page.waitForFunction(() => window.__distribkv.app.stopAt === null, null, { timeout: 60000 });
    const g = await page.evaluate(() => { const g = window.__distribkv.app.guide; return { step: g.step, failed: g.failed, miss: g.facts.miss ?? null }; });
    assert.equal(g.step, i);
    assert.equal(g.miss, null, `step ${i + 1}: the plan ran`);
    assert.deepEqual(g.failed, [], `step ${i + 1}: what the text claims holds on the run the page played`);
    assert.ok(await page.isVisible("#guide [data-holds]"));
    if (i + 1 < steps) await page.click("#sh-next");
  }
  const st = await state(page);
  assert.equal(st.hosts.length, 12, "the lab layout: a controller and 3 groups of 3 on hosts of their own");
  await waitText(page, "#check-pill", /OK/);
}, { timeout: 120000 });
