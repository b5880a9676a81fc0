// End-to-end tests of the page's sharded mode in Debian's Chromium, against
// the real wasm build in web/pkg/.
import assert from "node:assert/strict";
import { env, pageTest, state, setSpeed, play, pause, waitText, scrubTo, canvasPoint, openLink } from "./page-kit.mjs";
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

pageTest("sharded mode: a follower-reads layout: the workload's gets are answered at followers, the host card counts them, the link keeps the layout", async (page) => {
  await page.waitForFunction(() => window.__distribkv?.mode === "sharded");
  assert.equal(await page.inputValue("#sh-layout"), "small-fr");
  await page.evaluate(() => window.__distribkv.timeline().runUntil(6000));
  const hosts = await page.evaluate(() => window.__distribkv.sim().state().hosts);
  const count = (h) => h.replicas.reduce((sum, r) => sum + r.followerReadsServed, 0);
  const busiest = hosts.reduce((a, b) => (count(b) > count(a) ? b : a));
  assert.ok(count(busiest) > 0, "some replica answered a read while not leading its group");
  for (const h of hosts) for (const r of h.replicas) if (r.role === "leader" && r.group === 0) assert.equal(r.followerReadsServed, 0);
  assert.equal((await page.evaluate(() => window.__distribkv.sim().check())).ok, true);
  await page.evaluate((id) => window.__distribkv.app.select({ type: "host", id }), busiest.id);
  await page.waitForFunction(() => /follower reads served/.test(document.querySelector("#sh-inspect")?.textContent ?? ""));
  await page.waitForFunction(() => /layout=small-fr/.test(location.hash));
}, { open: { hash: "#mode=sharded&layout=small-fr&seed=1&a=0w1" } });

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

pageTest("sharded mode: an action after single events, and the moment between events, reopen exactly from a share link", async (page) => {
  await page.waitForFunction(() => window.__distribkv?.mode === "sharded");
  const moment = () => { const sim = window.__distribkv.sim(); return JSON.stringify([sim.state(), sim.history().length]); };
  await page.evaluate(() => window.__distribkv.timeline().runUntil(1500));
  // single events, an action among them, then more single events: each at a point inside a millisecond
  for (let i = 0; i < 3; i++) await page.click("#step");
  const victim = await page.evaluate(() => window.__distribkv.sim().state().hosts.find((h) => h.up).id);
  await page.evaluate((h) => window.__distribkv.app.act("crash", h), victim);
  for (let i = 0; i < 2; i++) await page.click("#step");
  const hash = await page.evaluate(() => window.__distribkv.app.copyLink());
  assert.match(hash, new RegExp(`a=0w1,1500\\+3c${victim}&at=1500\\+5$`), "the positions count the single events");
  const before = await page.evaluate(moment);
  const link = await openLink(hash);
  try {
    assert.equal(await link.page.evaluate(moment), before, "the link rebuilds the same moment");
    assert.deepEqual(link.errors, []);
  } finally {
    await link.close();
  }
  // scrubbing back and forth replays the action at its point too
  await page.evaluate(() => { const tl = window.__distribkv.timeline(); tl.seek(200); tl.seekPosition(1500, 5); });
  assert.equal(await page.evaluate(moment), before, "a replay on the page reaches the same moment");
}, { open: { hash: "#mode=sharded&layout=small&seed=2&a=0w1" } });

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

pageTest("sharded tour: a link at a step opens the tour at that step and moment, and one that acted on the run opens its own run", async () => {
  const moment = () => { const s = window.__distribkv.sim().state(); return JSON.stringify([s.now, s.shards, s.hosts]); };
  const guide = () => { const a = window.__distribkv.app; return { step: a.guide?.step ?? null, playing: a.stopAt !== null, failed: a.guide?.failed ?? null, actions: a.timeline.actions.length }; };
  const stopped = (page) => page.waitForFunction(() => window.__distribkv.app.stopAt === null, null, { timeout: 60000 });
  // a link naming a step without a moment: the steps before are replayed, that one plays
  const first = await openLink("#mode=sharded&sc=shard-move.2");
  let hash, end, planned;
  try {
    assert.equal((await first.page.evaluate(guide)).step, 2);
    await stopped(first.page);
    const g = await first.page.evaluate(guide);
    assert.deepEqual([g.step, g.failed], [2, []], "step 3 played and what it says holds");
    hash = await first.page.evaluate(() => window.__distribkv.app.copyLink());
    assert.match(hash, /&at=\d+&sc=shard-move\.2$/);
    end = await first.page.evaluate(moment);
    planned = g.actions;
    assert.deepEqual(first.errors, []);
  } finally {
    await first.close();
  }
  const at = Number(/&at=(\d+)/.exec(hash)[1]);
  // the link at the step's end: the same moment, the step done and checked, Next goes on
  const same = await openLink(hash);
  let next, nextEnd;
  try {
    assert.deepEqual(await same.page.evaluate(guide), { step: 2, playing: false, failed: [], actions: planned });
    assert.equal(await same.page.evaluate(moment), end, "the link rebuilds the tour's run");
    assert.ok(await same.page.isVisible("#guide [data-holds]"));
    await same.page.click("#sh-next");
    await stopped(same.page);
    const g = await same.page.evaluate(guide);
    assert.deepEqual([g.step, g.failed], [3, []], "the next step plays on from the link");
    next = await same.page.evaluate(() => window.__distribkv.app.copyLink());
    assert.match(next, /&sc=shard-move\.3$/);
    nextEnd = await same.page.evaluate(moment);
    assert.deepEqual(same.errors, []);
  } finally {
    await same.close();
  }
  // a moment inside a step (just after the previous one ended; this step
  // waits for the shard to arrive, then 600 ms more, so it is still
  // playing when the page is asked): it plays on to its end, to the same run
  const nextAt = Number(/&at=(\d+)/.exec(next)[1]);
  const mid = await openLink(next.replace(`&at=${nextAt}`, `&at=${at + 1}`));
  try {
    const g = await mid.page.evaluate(guide);
    assert.deepEqual([g.step, g.playing], [3, true], "the step goes on playing");
    await stopped(mid.page);
    assert.equal(await mid.page.evaluate(moment), nextEnd, "and ends where the tour's step ends");
    assert.deepEqual((await mid.page.evaluate(guide)).failed, []);
    assert.deepEqual(mid.errors, []);
  } finally {
    await mid.close();
  }
  // a link that crashed a host after the step: its own run, still at that step of the tour
  const victim = JSON.parse(end)[2].find((h) => h.up).id;
  const acted = await openLink(hash.replace(`&at=${at}`, `,${at}c${victim}&at=${at + 50}`));
  try {
    const g = await acted.page.evaluate(guide);
    assert.deepEqual([g.step, g.playing, g.actions], [2, false, planned + 1]);
    const shown = await acted.page.evaluate(() => ({ now: window.__distribkv.sim().now(), down: window.__distribkv.sim().state().hosts.filter((h) => !h.up).map((h) => h.id) }));
    assert.equal(shown.now, at + 50);
    assert.ok(shown.down.includes(victim), "the link's own crash is in the run");
    assert.deepEqual(acted.errors, []);
  } finally {
    await acted.close();
  }
}, { timeout: 180000 });

// Sharded links as anyone can craft or mangle them, read by the same rules as
// the single-group mode's (web/js/share.js): a link that cannot be read, or
// asks for more than the page replays, opens the default run (small layout,
// seed 1); actions the simulator refuses, and an unknown tour, are left out of
// a run that opens otherwise. Each says so; none freezes or throws.
const DEFAULT_SHARDED = { layout: "small", seed: 1, actions: 0 };
const BAD_SHARDED_LINKS = [
  ["#mode=sharded&seed=7&at=99999999999", /This link could not be read: at=99999999999 is past 1 h of virtual time/, DEFAULT_SHARDED],
  ["#mode=sharded&seed=7&at=1e300", /This link could not be read: bad at=1e300/, DEFAULT_SHARDED],
  ["#mode=sharded&seed=7&a=99999999999c1&at=10", /This link could not be read: action 1 \(at 99999999999 ms\) is past 1 h/, DEFAULT_SHARDED],
  ["#mode=sharded&seed=7&a=500c1,100r1&at=600", /This link could not be read: action 2 \(at 100 ms\) comes before action 1 \(at 500 ms\)/, DEFAULT_SHARDED],
  ["#mode=sharded&seed=1e30", /This link could not be read: bad seed=1e30/, DEFAULT_SHARDED],
  ["#mode=sharded&seed=7&a=0pk%E0%A4%A:v", /This link could not be read: action "0pk%E0%A4%A:v": bad percent-encoding in "k%E0%A4%A"/, DEFAULT_SHARDED],
  ["#mode=sharded&seed=7&sc=%E0%A4%A", /This link could not be read: bad percent-encoding in "%E0%A4%A"/, DEFAULT_SHARDED],
  ["#mode=sharded&seed=7&a=0j&at=10", /This link could not be read: action "0j": join takes 1 argument, not 0/, DEFAULT_SHARDED],
  ["#mode=sharded&seed=7&a=0c1:2:3", /This link could not be read: action "0c1:2:3": crash takes 1 argument, not 3/, DEFAULT_SHARDED],
  ["#mode=sharded&seed=7&a=0P1.2-", /This link could not be read: action "0P1.2-": a side of the partition is empty/, DEFAULT_SHARDED],
  ["#mode=sharded&seed=7&a=0w2", /This link could not be read: action "0w2": workload must be 0 or 1, not "2"/, DEFAULT_SHARDED],
  ["#mode=sharded&seed=1&seed=2", /This link could not be read: seed= is given twice/, DEFAULT_SHARDED],
  [`#mode=sharded&seed=7&a=${"0pk:v,".repeat(200000)}&at=10`, /This link could not be read: the link is \d+ characters long, more than the 200000/, DEFAULT_SHARDED],
  ["#mode=sharded&seed=7&a=0c99,5c2&at=10", /Some recorded actions failed on replay: crash\(99\) at 0 ms: unknown host 99/, { layout: "small", seed: 7, actions: 2, down: [2] }],
  ["#mode=sharded&seed=7&sc=nope.1", /The link's guided tour "nope" does not exist: its run opens without it/, { layout: "small", seed: 7, actions: 0 }],
];

pageTest("sharded mode: a bad share link says why, opens the default run or what of it is valid, and the page keeps working", async () => {
  for (const [hash, message, run] of BAD_SHARDED_LINKS) {
    const where = hash.slice(0, 60);
    const started = Date.now();
    const link = await openLink(hash);
    try {
      await link.page.waitForFunction((src) => new RegExp(src).test(window.__messages.join(" | ")), message.source, { timeout: 5000 }).catch(() => {});
      assert.match(await link.messages(), message, `${where}: says why`);
      const shown = await link.page.evaluate(() => {
        const tl = window.__distribkv.timeline();
        return { layout: tl.layout, seed: tl.seed, actions: tl.actions.length, down: tl.sim.state().hosts.filter((h) => !h.up).map((h) => h.id) };
      });
      assert.deepEqual(shown, { down: [], ...run }, `${where}: the run opened`);
      await link.respond(); // Step, then a put from the form
      assert.deepEqual(link.errors, [], `${where}: no page errors`);
      assert.ok(Date.now() - started < 15000, `${where}: answered in seconds`);
    } finally {
      await link.close();
    }
  }
}, { timeout: 240000 });

pageTest("sharded mode: a link pasted into an open tab opens as on a fresh page, a bad one with the default run", async () => {
  const link = await openLink("#mode=sharded&seed=7");
  try {
    await link.page.evaluate(() => { location.hash = "#mode=sharded&seed=8&a=0c2&at=10"; });
    await link.page.waitForFunction(() => window.__distribkv?.app?.timeline?.seed === 8, null, { timeout: 8000 }).catch(() => {});
    assert.deepEqual(await link.page.evaluate(() => ({ seed: window.__distribkv.timeline().seed, at: window.__distribkv.timeline().display })), { seed: 8, at: 10 }, "a good link opens");
    await link.page.evaluate(() => { location.hash = "#mode=sharded&seed=7&at=99999999999"; });
    await link.page.waitForFunction(() => window.__distribkv?.app?.timeline?.seed === 1, null, { timeout: 8000 }).catch(() => {});
    assert.match(await link.messages(), /This link could not be read: at=99999999999 is past 1 h/);
    assert.equal(await link.page.evaluate(() => window.__distribkv.timeline().seed), 1, "a bad one opens the default run");
    await link.respond();
    assert.deepEqual(link.errors, []);
  } finally {
    await link.close();
  }
});

pageTest("sharded mode: a run ends where a share link stops replaying, and its link opens", async () => {
  const first = await openLink("#mode=sharded&seed=1&at=3599500", { ms: 60000 });
  let hash;
  try {
    const { page } = first;
    await setSpeed(page, 2);
    await play(page);
    await page.waitForFunction(() => window.__distribkv.app.playing === false, null, { timeout: 20000 });
    assert.equal(await page.evaluate(() => window.__distribkv.timeline().display), 3600000, "playing stops at 1 h");
    await page.click("#step");
    assert.equal(await page.evaluate(() => window.__distribkv.timeline().display), 3600000, "so does stepping");
    assert.match(await first.messages(), /The run ends at 1 h of virtual time: a share link replays no further/);
    hash = await page.evaluate(() => window.__distribkv.app.copyLink());
    assert.deepEqual(first.errors, []);
  } finally {
    await first.close();
  }
  assert.match(hash, /&at=3600000$/);
  const again = await openLink(hash, { ms: 60000 });
  try {
    assert.equal(await again.page.evaluate(() => window.__distribkv.timeline().display), 3600000, "the link opens at that moment");
    assert.doesNotMatch(await again.messages(), /could not be read/);
    assert.deepEqual(again.errors, []);
  } finally {
    await again.close();
  }
}, { timeout: 180000 });

pageTest("sharded mode: a seed the simulator refuses, typed in the run form, changes nothing and says why", async (page, errors) => {
  await page.waitForFunction(() => window.__distribkv?.mode === "sharded");
  const seed = () => page.evaluate(() => window.__distribkv.app.timeline.seed);
  assert.equal(await seed(), 3);
  await page.fill("#seed", "99999999999999999999");
  assert.equal(await page.$eval("#seed", (el) => el.checkValidity()), false, "the field refuses a seed past 2^53 - 1");
  await page.$eval("#run-form", (form) => form.requestSubmit());
  assert.equal(await seed(), 3, "the run is unchanged");
  await page.$eval("#run-form", (form) => form.dispatchEvent(new Event("submit", { cancelable: true })));
  await waitText(page, "#notice-text", /Cannot start this run: .*2\^53 - 1/);
  assert.equal(await seed(), 3, "the run is unchanged");
  await page.fill("#seed", "7");
  await page.$eval("#run-form", (form) => form.requestSubmit());
  await page.waitForFunction(() => window.__distribkv.app.timeline.seed === 7);
  assert.deepEqual(errors, []);
}, { open: { hash: "#mode=sharded&layout=small&seed=3" } });

/** What the page shows of the run, precisely: the whole state (every replica's term and commit index, shards, messages in flight, clients), the history's length and the last event logged. */
const shardedDigest = (page) => page.evaluate(() => {
  const sim = window.__distribkv.sim();
  return { state: sim.state(), ops: sim.history().length, last: sim.events(0).at(-1) ?? null };
});
/** The same, for a fresh replay from the start of the page's recorded actions to time `t`. */
const freshShardedDigest = (page, t) => page.evaluate((t) => {
  const tl = window.__distribkv.timeline();
  const fresh = new tl.constructor(tl.backend, tl.layout, tl.seed, tl.actions);
  fresh.seek(t);
  const seen = { state: fresh.sim.state(), ops: fresh.sim.history().length, last: fresh.sim.events(0).at(-1) ?? null };
  fresh.free();
  return seen;
}, t);

pageTest("sharded mode: seeking back replays from a checkpoint, to the state a replay from the start shows; acting in the past drops the later checkpoints", async (page) => {
  await page.waitForFunction(() => window.__distribkv?.mode === "sharded" && window.__distribkv.timeline().display === 40000);
  const tl = (fn, arg) => page.evaluate(fn, arg);
  const seek = (t) => tl((t) => { window.__distribkv.timeline().seek(t); window.__distribkv.app.dirty = true; }, t);
  const lastSeek = () => tl(() => window.__distribkv.timeline().lastSeek);
  assert.ok((await tl(() => window.__distribkv.timeline().checkpoints.list.length)) > 5, "the link's replay left checkpoints");
  // the scrubber (per mille of the run), then exact times: at, just before and just after actions
  await page.$eval("#timeline", (el) => { el.value = "900"; el.dispatchEvent(new Event("input", { bubbles: true })); });
  assert.deepEqual(await shardedDigest(page), await freshShardedDigest(page, 36000), "at 36 s, by the scrubber");
  for (const t of [29999, 30000, 30001, 11999, 12000, 12001, 25000, 39999]) {
    await seek(t);
    assert.deepEqual(await shardedDigest(page), await freshShardedDigest(page, t), `at ${t}`);
    const { from, replayedMs } = await lastSeek();
    assert.ok(from > 0 && replayedMs <= 4000, `${t} replayed ${replayedMs} ms from a checkpoint at ${from}, not from the start`);
  }
  // acting in the past: the future (the move at 30 s) and the checkpoints after that moment go
  await seek(20500);
  await tl(() => window.__distribkv.app.act("crash", 4));
  assert.deepEqual(await tl(() => window.__distribkv.timeline().actions.map((a) => a.t)), [0, 5000, 9000, 12000, 16000, 17000, 20500]);
  assert.equal(await tl(() => window.__distribkv.timeline().checkpoints.list.filter((c) => c.at > 20500).length), 0, "no checkpoint after the new action");
  await tl(() => window.__distribkv.timeline().runUntil(40000));
  for (const t of [38000, 31000, 22000, 26000]) {
    await seek(t);
    assert.deepEqual(await shardedDigest(page), await freshShardedDigest(page, t), `at ${t}, after the new action`);
    const { from } = await lastSeek();
    assert.ok(from > 0 && (t < 24500 || from > 20500), `${t}: from a checkpoint (${from}), taken after the new action if one is 4 s before`);
    assert.equal((await shardedDigest(page)).state.hosts[3].up, false, "host 4 is down: the new action holds");
  }
}, { open: { hash: "#mode=sharded&layout=small&seed=4&a=0w1,5000c2,9000m3:101,12000P1.2-3.4.5,16000h,17000r2,30000m7:102&at=40000" }, timeout: 120000 });
