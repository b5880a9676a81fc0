// End-to-end tests of the page in Debian's Chromium, against the real wasm
// build in web/pkg/.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { launch, openPage, screenshot, pageUrl } from "../browser.mjs";

let env;
before(async () => { env = await launch(); await env.context.grantPermissions(["clipboard-read", "clipboard-write"]); });
after(async () => { await env?.close(); });

/** Run a test body with a fresh page; on failure save a screenshot to artifacts/. */
function pageTest(name, body, { timeout = 60000, open = {}, skip = false } = {}) {
  test(name, { timeout, skip }, async () => {
    const { page, errors } = await openPage(env, open);
    try {
      await body(page, errors);
      assert.deepEqual(errors, [], "no console errors");
    } catch (err) {
      const file = await screenshot(page, `fail-${name}`).catch(() => null);
      if (file) err.message += `\n(screenshot: ${file})`;
      throw err;
    } finally {
      await page.close();
    }
  });
}

const state = (page) => page.evaluate(() => window.__distribkv.sim().state());
const summary = (st) => st.nodes.map((n) => ({ id: n.id, up: n.up, role: n.role, term: n.term, commitIndex: n.commitIndex, lastIndex: n.lastIndex }));

async function setSpeed(page, exp) {
  await page.$eval("#speed", (el, v) => { el.value = String(v); el.dispatchEvent(new Event("input", { bubbles: true })); }, exp);
}
async function play(page) { if ((await page.getAttribute("#play", "aria-label")) === "Play") await page.click("#play"); }
/** Wait until the element's text matches: the side panels follow the run a few times a second, not at once. */
async function waitText(page, selector, re) {
  try {
    await page.waitForFunction(([sel, src]) => new RegExp(src).test(document.querySelector(sel)?.textContent ?? ""), [selector, re.source], { timeout: 5000 });
  } catch {
    assert.match(await page.textContent(selector), re);
  }
}
async function pause(page) { if ((await page.getAttribute("#play", "aria-label")) === "Pause") await page.click("#play"); }
async function waitLeader(page, { not = null, timeout = 20000 } = {}) {
  const h = await page.waitForFunction((not) => {
    const { leader } = window.__distribkv.sim().state();
    return leader !== null && leader !== not ? leader : null;
  }, not, { timeout });
  return h.jsonValue();
}
async function scrubTo(page, t) {
  await page.$eval("#timeline", (el, v) => {
    el.dispatchEvent(new PointerEvent("pointerdown", { bubbles: true }));
    el.value = String(v);
    el.dispatchEvent(new Event("input", { bubbles: true }));
    el.dispatchEvent(new Event("change", { bubbles: true }));
    el.dispatchEvent(new PointerEvent("pointerup", { bubbles: true }));
  }, t);
  await page.waitForFunction((t) => Math.abs(window.__distribkv.timeline().display - t) < 1.01, t);
}

pageTest("the page loads the simulation and a leader is elected", async (page) => {
  assert.equal(await page.evaluate(() => window.__distribkv.backend), "wasm");
  await setSpeed(page, 0);
  await play(page);
  const l = await waitLeader(page);
  assert.ok(l >= 1 && l <= 5);
  assert.ok(await page.evaluate(() => window.__distribkv.fps()) > 0, "frames are being drawn");
});

pageTest("crashing the leader from the UI elects a new one", async (page) => {
  await setSpeed(page, 0);
  await play(page);
  const first = await waitLeader(page);
  await page.keyboard.press(String(first)); // select it
  await page.click('#inspector button[data-act="crash"]');
  const st = await state(page);
  assert.equal(st.nodes.find((n) => n.id === first).up, false, "the node is down");
  const second = await waitLeader(page, { not: first });
  assert.notEqual(second, first);
  await page.click('#inspector button[data-act="restart"]');
  assert.equal((await state(page)).nodes.find((n) => n.id === first).up, true, "the node is back up");
});

pageTest("a put from the client form completes in the history", async (page) => {
  await setSpeed(page, 0);
  await play(page);
  await waitLeader(page);
  await page.fill("#op-key", "greeting");
  await page.fill("#op-value", "hello");
  await page.selectOption("#op-kind", "put");
  await page.click('#op-form button[type="submit"]');
  const op = await page.waitForFunction(() => window.__distribkv.sim().history().find((o) => o.key === "greeting" && o.status === "ok"), null, { timeout: 20000 });
  const o = await op.jsonValue();
  assert.equal(o.kind, "put");
  assert.equal(o.value, "hello");
  assert.ok(o.completedAt >= o.invokedAt);
  await page.waitForFunction(() => window.__distribkv.app.historyCache.some((o) => o.key === "greeting" && o.status === "ok"));
  // every live node applies it eventually
  await page.waitForFunction(() => window.__distribkv.sim().state().nodes.every((n) => !n.up || n.kv.greeting === "hello"), null, { timeout: 20000 });
});

pageTest("a share link reopens the same run at the same moment", async (page) => {
  await setSpeed(page, 0.3);
  await play(page);
  const l = await waitLeader(page);
  await page.click("#wl-on"); // steady workload
  await page.waitForTimeout(600);
  await page.keyboard.press(String(l));
  await page.keyboard.press("c"); // crash the leader
  await page.waitForTimeout(800);
  await pause(page);
  await page.keyboard.press("n"); // and one single event
  await page.keyboard.press("n");
  await page.click("#share-btn");
  await page.waitForFunction(() => location.hash.includes("a="));
  const url = await page.evaluate(() => location.href);
  const before = await state(page);
  const hist = await page.evaluate(() => window.__distribkv.sim().history().length);
  const other = await env.context.newPage();
  const errors = [];
  other.on("pageerror", (e) => errors.push(String(e)));
  await other.goto(url);
  await other.waitForFunction(() => window.__distribkv?.ready);
  const after = await state(other);
  assert.deepEqual(summary(after), summary(before));
  assert.equal(after.now, before.now);
  assert.equal(await other.evaluate(() => window.__distribkv.sim().history().length), hist);
  assert.deepEqual(errors, []);
  await other.close();
});

pageTest("the timeline scrubs back and forward to identical states", async (page) => {
  await setSpeed(page, 0.3);
  await play(page);
  const l = await waitLeader(page);
  await page.click("#wl-on");
  await page.waitForTimeout(700);
  await page.keyboard.press(String(l));
  await page.keyboard.press("c");
  await page.waitForTimeout(700);
  await pause(page);
  const end = await page.evaluate(() => Math.floor(window.__distribkv.timeline().display));
  await scrubTo(page, end);
  const atEnd = await state(page);
  await scrubTo(page, Math.floor(end / 2));
  const mid = await state(page);
  assert.ok(mid.now <= end / 2 + 1, "went back in time");
  await page.waitForSelector("#notice", { state: "visible", timeout: 5000 }); // says we are viewing the past
  assert.match(await page.textContent("#notice"), /discards/);
  await scrubTo(page, end);
  assert.deepEqual(await state(page), atEnd, "forward again gives the same state");
  await scrubTo(page, Math.floor(end / 2));
  assert.deepEqual(await state(page), mid, "and back again too");
  // acting in the past truncates the recorded future
  const applied = await page.evaluate(() => window.__distribkv.timeline().applied);
  await page.click("#heal");
  const tl = await page.evaluate(() => ({ n: window.__distribkv.timeline().actions.length, future: window.__distribkv.timeline().hasFuture }));
  assert.equal(tl.n, applied + 1, "later actions were dropped, the new one recorded");
  assert.equal(tl.future, false);
});

pageTest("a guided scenario runs through", async (page) => {
  await page.click("#guide-btn");
  await page.click('button[data-id="first-election"]');
  const steps = await page.evaluate(() => window.__distribkv.app.guide.scenario.steps.length);
  for (let i = 0; i <= steps; i++) {
    await page.click("#g-next");
    if (i === steps) break;
    const skip = page.locator('#guide button[data-g="skip"]');
    if (await skip.count()) await skip.click().catch(() => {});
    await page.waitForFunction(() => !window.__distribkv.app.playback.stopAt, null, { timeout: 20000 });
    assert.match(await page.textContent("#g-title"), /\S/);
    assert.doesNotMatch(await page.textContent("#guide"), /did not happen/, `step ${i + 1} reached what it explains`);
  }
  assert.equal(await page.isVisible("#guide"), false, "Finish closes the tour");
  const st = await state(page);
  assert.ok(st.leader, "the tour ends with a leader");
  const h = await page.evaluate(() => window.__distribkv.sim().history());
  assert.ok(h.some((o) => o.key === "x" && o.status === "ok"), "and the write it explains completed");
}, { timeout: 120000 });

/** Play the guide's current step to its end (skipping the animation) and return what the played run shows. */
async function finishStep(page) {
  const skip = page.locator('#guide button[data-g="skip"]');
  if (await skip.count()) await skip.click().catch(() => {});
  await page.waitForFunction(() => !window.__distribkv.app.playback.stopAt, null, { timeout: 20000 });
  return page.evaluate(async () => {
    const { failedClaims } = await import("./js/scenarios.js");
    const app = window.__distribkv.app, g = app.guide, i = g.step;
    const step = g.scenario.steps[i - 1];
    const sim = app.timeline.sim;
    return {
      title: document.querySelector("#g-title").textContent,
      text: document.querySelector("#guide .step-text").textContent,
      watch: document.querySelector("#guide .watch")?.textContent ?? "",
      miss: g.vars[i].miss ?? null,
      claims: step.expect ? step.expect(g.vars[i], (await import("./js/scenarios.js")).query(sim)).length : 0,
      failed: failedClaims(step, g.vars[i], sim),
      hash: sim.traceHash(), planned: g.hashes[i],
      vars: g.vars[i],
      display: app.timeline.display, end: g.ends[i].display,
    };
  });
}

pageTest("every guided tour reaches what it explains, step by step", async (page) => {
  const { SCENARIOS } = await page.evaluate(async () => ({ SCENARIOS: (await import("./js/scenarios.js")).SCENARIOS.map((s) => ({ id: s.id, steps: s.steps.length })) }));
  assert.deepEqual(SCENARIOS.map((s) => s.id), ["first-election", "split-vote", "leader-crash", "stale-leader", "figure-8", "log-repair", "snapshot", "read-index", "membership"]);
  const seen = {};
  for (const { id, steps } of SCENARIOS) {
    await page.keyboard.press("g");
    if (!(await page.isVisible(`button[data-id="${id}"]`))) await page.click('#guide button[data-g="list"]');
    await page.click(`button[data-id="${id}"]`);
    assert.ok(steps >= 3 && steps <= 6, `${id}: 3 to 6 steps`);
    for (let i = 1; i <= steps; i++) {
      await page.click("#g-next");
      const r = await finishStep(page);
      const where = `${id} step ${i} (${r.title})`;
      assert.equal(r.miss, null, `${where}: the plan reached what the step describes`);
      assert.ok(r.claims >= 1, `${where}: the step states what it claims`);
      assert.deepEqual(r.failed, [], `${where}: every claim holds in the run the page played`);
      assert.ok(r.hash, `${where}: the wasm build gives a trace hash`);
      assert.equal(r.hash, r.planned, `${where}: the played run is the planned one`);
      assert.equal(r.display, r.end, `${where}: playback stopped at the step's end`);
      assert.doesNotMatch(r.text + r.watch, /undefined|NaN|null|\?\?|node \?/, `${where}: the text names everything`);
      seen[`${id}/${i}`] = r.vars;
    }
    await page.click('#guide button[data-g="close"]');
  }
  // a few situations, checked here once more in plain terms
  const st = (id, i) => seen[`${id}/${i}`];
  assert.equal(st("split-vote", 2).tally.filter(([, votes]) => votes >= 3).length, 0, "split vote: nobody had a majority");
  assert.ok(st("figure-8", 4).commitIndex < st("figure-8", 4).index, "figure 8: the old entry was on a majority but not committed");
  assert.ok(st("snapshot", 4).followerSnapshot >= st("snapshot", 2).leaderSnapshot, "snapshot: the lagging node installed the leader's snapshot");
  assert.equal(st("read-index", 4).output, "2", "read index: the read returned the new value");
  assert.ok(st("log-repair", 4).rejections >= 1 && st("log-repair", 4).rejections <= 2, "log repair: one or two rejections");
}, { timeout: 300000 });

pageTest("a share link taken during a tour reopens the tour at that step, in the same run", async (page) => {
  await page.keyboard.press("g");
  await page.click('button[data-id="figure-8"]');
  for (let i = 1; i <= 3; i++) { await page.click("#g-next"); await finishStep(page); }
  await page.click("#share-btn");
  await page.waitForFunction(() => /sc=figure-8\.3/.test(location.hash) && /mx=1/.test(location.hash));
  const url = await page.evaluate(() => location.href);
  const before = await state(page);
  const other = await env.context.newPage();
  const errors = [];
  other.on("pageerror", (e) => errors.push(String(e)));
  try {
    await other.goto(url);
    await other.waitForFunction(() => window.__distribkv?.ready && window.__distribkv.app.guide.scenario);
    assert.equal(await other.textContent("#g-title"), await page.textContent("#g-title"), "the same step");
    assert.deepEqual(await state(other), before, "the same state");
    assert.equal(await other.evaluate(() => window.__distribkv.timeline().config.maxEntriesPerMessage), 1, "the tour's own settings");
    await other.click("#g-next");
    const r = await finishStep(other);
    assert.equal(r.miss, null);
    assert.deepEqual(r.failed, [], "the next step holds too");
    assert.deepEqual(errors, []);
  } finally {
    await other.close();
  }
});

/** Client coordinates of a point given in canvas (CSS pixel) coordinates. */
async function canvasPoint(page, x, y) {
  const r = await page.evaluate(() => document.querySelector("#cluster").getBoundingClientRect().toJSON());
  return [r.x + x, r.y + y];
}

pageTest("clicking a message shows it and drops it; clicking a link cuts one direction", async (page) => {
  await setSpeed(page, 0);
  await play(page);
  await waitLeader(page);
  await setSpeed(page, -2); // crawl, so messages stay put while we click
  await page.waitForFunction(() => window.__distribkv.app.cluster.msgPos.length > 0, null, { timeout: 10000 });
  await pause(page);
  await page.waitForTimeout(100);
  const m = await page.evaluate(() => window.__distribkv.app.cluster.msgPos[0]);
  await page.mouse.click(...(await canvasPoint(page, m.x, m.y)));
  await page.waitForFunction((id) => window.__distribkv.app.selected?.type === "msg" && window.__distribkv.app.selected.id === id, m.id);
  await page.waitForFunction(() => /→/.test(document.querySelector("#i-title")?.textContent ?? ""));
  await page.click("#i-drop");
  assert.equal(await page.evaluate((id) => window.__distribkv.sim().message(id), m.id), null, "the message is gone");
  // a link: click the middle of the segment between nodes 1 and 2, away from messages
  const [a, b] = await page.evaluate(() => [window.__distribkv.app.cluster.nodePos(1), window.__distribkv.app.cluster.nodePos(2)]);
  // drop everything in flight (messages travel along the links, one may sit on the midpoint),
  // then wait until a draw shows no message left to hit
  await page.evaluate(() => {
    const { timeline, sim } = window.__distribkv;
    for (const msg of sim().state().inFlight) timeline().act("dropMessage", msg.id);
  });
  assert.deepEqual((await state(page)).inFlight, [], "nothing left in flight");
  await page.waitForFunction(() => window.__distribkv.app.state.inFlight.length === 0 && window.__distribkv.app.cluster.msgPos.length === 0);
  await page.mouse.click(...(await canvasPoint(page, (a.x + b.x) / 2, (a.y + b.y) / 2)));
  await page.waitForFunction(() => window.__distribkv.app.selected?.type === "link");
  await page.click('#inspector button[data-act="cut"][data-from="1"][data-to="2"]');
  assert.deepEqual((await state(page)).links.cut, [[1, 2]]);
  await page.click('#inspector button[data-act="restore"][data-from="1"][data-to="2"]');
  assert.deepEqual((await state(page)).links.cut, []);
});

pageTest("membership from the page: add a node as a learner, promote it, remove it", async (page) => {
  await setSpeed(page, 0);
  await play(page);
  await waitLeader(page);
  await page.click("#wl-on"); // load while the membership changes
  await pause(page);
  const n0 = (await state(page)).nodes.length;
  const id = n0 + 1;
  await page.click("#add-node");
  assert.equal((await state(page)).nodes.length, id, "a new machine on the canvas");
  assert.equal(await page.evaluate(() => window.__distribkv.app.selected?.id), id, "and selected");
  await play(page);
  await page.waitForFunction((id) => {
    const st = window.__distribkv.sim().state();
    const me = st.nodes.find((n) => n.id === id);
    return st.membership.learners.includes(id) && me.appliedIndex > 0;
  }, id, { timeout: 20000 });
  await pause(page);
  await waitText(page, "#members-text", new RegExp(`learners ${id}`));
  await waitText(page, "#i-fields", /learner/);
  await page.click('#inspector button[data-act="promote"]');
  await play(page);
  await page.waitForFunction((id) => window.__distribkv.sim().state().membership.voters.includes(id), id, { timeout: 20000 });
  await pause(page);
  await waitText(page, "#members-text", new RegExp(`^voters (\\d )*${id}$`));
  await page.click('#inspector button[data-act="remove"]');
  await play(page);
  await page.waitForFunction(([id, n0]) => {
    const m = window.__distribkv.sim().state().membership;
    return !m.voters.includes(id) && !m.learners.includes(id) && m.voters.length === n0;
  }, [id, n0], { timeout: 20000 });
  await pause(page);
  await waitText(page, "#members-text", new RegExp(`not members ${id}$`));
  const ops = await page.evaluate(() => window.__distribkv.timeline().actions.map((a) => a.op).filter((op) => op !== "setWorkload"));
  assert.deepEqual(ops, ["addNode", "addLearner", "promote", "removeMember"], "recorded, so a share link replays them");
  assert.match(await page.evaluate(() => window.__distribkv.app.shareHash()), /\dN/, "the share link carries the new node");
  assert.equal(await page.evaluate(() => window.__distribkv.sim().check().ok), true, "safe and linearizable throughout");
});

pageTest("the inspector's node actions and the network card act on the real cluster", async (page) => {
  await setSpeed(page, 0);
  await play(page);
  const l = await waitLeader(page);
  await pause(page);
  const other = l === 1 ? 2 : 1;
  const st0 = await state(page);
  // make another node leader
  await page.keyboard.press(String(other));
  await page.click('#inspector button[data-act="transfer"]');
  await play(page);
  assert.equal(await waitLeader(page, { not: l }), other, "leadership moved to the selected node");
  await pause(page);
  const term = (await state(page)).nodes.find((n) => n.id === other).term;
  assert.ok(term > st0.nodes.find((n) => n.id === l).term, "in a higher term");
  // snapshot it
  await page.click('#inspector button[data-act="snapshot"]');
  const snap = (await state(page)).nodes.find((n) => n.id === other);
  assert.ok(snap.snapshotIndex > 0 && snap.snapshotIndex === snap.appliedIndex, "the node snapshotted what it applied");
  // fire a follower's election timer: it campaigns (PreVote first)
  await page.keyboard.press(String(l));
  await page.click('#inspector button[data-act="election"]');
  assert.match((await state(page)).nodes.find((n) => n.id === l).role, /candidate/, "the follower campaigns");
  // packet loss and latency from the network card are recorded actions
  await page.$eval("#drop", (el) => { el.value = "0.2"; el.dispatchEvent(new Event("input")); el.dispatchEvent(new Event("change")); });
  await page.fill("#lat-min", "30");
  await page.fill("#lat-max", "40");
  await page.click("#lat-apply");
  const ops = await page.evaluate(() => window.__distribkv.timeline().actions.map((a) => [a.op, ...a.args]));
  assert.deepEqual(ops.slice(-2), [["setDropRate", 0.2], ["setLatency", 30, 40]]);
  await play(page);
  await page.waitForFunction(() => window.__distribkv.sim().state().inFlight.some((m) => m.deliverAt - m.sentAt >= 30), null, { timeout: 10000 });
  await pause(page);
  // dragging a node onto empty space gives it a partition group of its own
  const p = await page.evaluate((id) => window.__distribkv.app.cluster.nodePos(id), other);
  const c = await page.evaluate(() => { const g = window.__distribkv.app.cluster.g; return { x: g.cx, y: g.cy }; });
  const [x0, y0] = await canvasPoint(page, p.x, p.y);
  const [x1, y1] = await canvasPoint(page, (p.x + c.x) / 2, (p.y + c.y) / 2);
  await page.mouse.move(x0, y0);
  await page.mouse.down();
  await page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, { steps: 4 });
  await page.mouse.move(x1, y1, { steps: 4 });
  await page.mouse.up();
  const part = (await state(page)).links.partition;
  assert.ok(part && part.some((g) => g.length === 1 && g[0] === other), `node ${other} is alone: ${JSON.stringify(part)}`);
});

pageTest("the partition editor splits the cluster and heal joins it", async (page) => {
  await setSpeed(page, 0);
  await play(page);
  await waitLeader(page);
  await page.click('#part-chips button[data-id="4"]');
  await page.click('#part-chips button[data-id="5"]');
  await page.click("#part-apply");
  const p = (await state(page)).links.partition;
  assert.ok(p && p.length === 2, "two groups");
  assert.deepEqual(p.map((g) => [...g].sort()).sort((x, y) => x[0] - y[0]), [[1, 2, 3], [4, 5]]);
  await page.click("#heal");
  assert.equal((await state(page)).links.partition, null);
});

pageTest("keyboard help and settings dialogs open and close", async (page) => {
  await page.keyboard.press("?");
  assert.ok(await page.isVisible("#help"));
  assert.match(await page.textContent("#help"), /play \/ pause/);
  await page.keyboard.press("Escape");
  assert.equal(await page.isVisible("#help"), false);
  await page.click("#settings-btn");
  await page.fill("#s-et-min", "200");
  await page.fill("#s-et-max", "400");
  await page.click("#settings-apply");
  assert.deepEqual(await page.evaluate(() => window.__distribkv.timeline().config.electionTimeoutMs), [200, 400]);
  await page.selectOption("#nodes", "7");
  await page.waitForFunction(() => window.__distribkv.sim().state().nodes.length === 7);
});

/** A check() result recorded from the real simulator when lease reads still had a bug (see the fixture's "about"). */
const RECORDED_VIOLATION = JSON.parse(await readFile(new URL("../fixtures/violation-check.json", import.meta.url), "utf8"));

pageTest("a correctness violation pauses the run, says so and outlines the operations involved", async (page) => {
  const recorded = RECORDED_VIOLATION.check;
  const involved = recorded.linearizability.ops;
  await setSpeed(page, 0.5);
  await page.keyboard.press("w"); // steady workload
  await play(page);
  // run until the operations the recorded result names have settled in this run's history
  await page.waitForFunction((ids) => ids.every((id) => window.__distribkv.app.historyCache.find((op) => op.id === id && op.status === "ok")), involved, { timeout: 60000 });
  const real = await page.evaluate(() => window.__distribkv.sim().check());
  assert.equal(real.ok, true, "the real simulator finds nothing wrong");
  const shape = (result) => [Object.keys(result).sort(), Object.keys(result.linearizability).sort()];
  assert.deepEqual(shape(recorded), shape(real), "the recorded result has the shape check() returns today");
  // from now on, check() answers with the recorded violation
  await page.evaluate((result) => { window.__distribkv.sim().check = () => structuredClone(result); }, recorded);
  await page.waitForFunction(() => window.__distribkv.app.checkResult?.ok === false, null, { timeout: 10000 });
  await page.waitForFunction(() => document.querySelector("#play").getAttribute("aria-label") === "Play", null, { timeout: 2000 });
  assert.match(await page.textContent("#notice"), /Correctness violation/);
  assert.ok((await page.textContent("#notice")).includes(recorded.violations[0]), "the notice quotes the violation");
  assert.match(await page.textContent("#check-pill"), /VIOLATION/);
  assert.ok((await page.textContent("#check-list")).includes(recorded.violations[0]), "the Correctness card lists it");
  const shown = await page.evaluate(() => ({ ops: [...window.__distribkv.app.highlightOps], center: window.__distribkv.app.historyView.center }));
  assert.deepEqual(shown.ops.sort(), [...involved].sort(), "the operations involved are outlined");
  const ops = await page.evaluate((ids) => window.__distribkv.app.historyCache.filter((op) => ids.includes(op.id)), involved);
  const from = Math.min(...ops.map((op) => op.invokedAt)), to = Math.max(...ops.map((op) => op.completedAt));
  assert.equal(shown.center, (from + to) / 2, "the history is centred on them");
}, { timeout: 90000 });

// ---------- the sharded mode ----------

const sharded = (page) => page.evaluate(() => window.__distribkv.sim().state());

pageTest("sharded mode: join, a routed write, a move from the UI, a host crash, checks per group, share link", async (page) => {
  await page.waitForFunction(() => window.__distribkv?.mode === "sharded");
  assert.equal(await page.inputValue("#mode"), "sharded");
  assert.ok(await page.isHidden("#network-card"), "the single-group cards are hidden");
  await setSpeed(page, 0);
  await play(page);
  // the groups join: every shard served
  await page.waitForFunction(() => { const s = window.__distribkv.sim().state(); return s.config && s.shards.every((x) => x.status === "serving"); }, null, { timeout: 20000 });
  let st = await sharded(page);
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
  st = await sharded(page);
  const from = st.shards[shard].owner;
  const to = [100, 101, 102].find((g) => g !== from);
  await page.selectOption("#sh-move-shard", String(shard));
  await page.selectOption("#sh-move-group", String(to));
  await setSpeed(page, -1);
  await page.click("#sh-move");
  await page.waitForFunction(([s, g]) => { const x = window.__distribkv.sim().state().shards[s]; return x.owner === g && x.status === "moving"; }, [shard, to], { timeout: 10000 });
  // a host of the old owner crashes mid-move, from the inspector
  const victim = (await sharded(page)).groups.find((g) => g.id === from).leader;
  await page.evaluate((h) => window.__distribkv.app.select({ type: "host", id: h }), victim);
  await page.click(`#sh-inspect-actions [data-act=crash]`);
  st = await sharded(page);
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
  const back = await sharded(page);
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
  let st = await sharded(page);
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
  assert.deepEqual((await sharded(page)).links.cut, []);
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
  const st = await sharded(page);
  assert.equal(st.hosts.length, 12, "the lab layout: a controller and 3 groups of 3 on hosts of their own");
  await waitText(page, "#check-pill", /OK/);
}, { timeout: 120000 });

test("without the wasm build the page says how to build it", async () => {
  const page = await env.context.newPage();
  try {
    // as if web/pkg/ had not been built
    await page.route("**/pkg/distribkv_wasm.js", (route) => route.fulfill({ status: 404, body: "not found" }));
    await page.goto(pageUrl(env.server));
    await page.waitForFunction(() => window.__distribkv && window.__distribkv.ready === false);
    assert.match(await page.textContent("#boot"), /scripts\/serve-web\.sh/);
    assert.match(await page.textContent("#boot"), /scripts\/build-web\.sh/);
  } catch (err) {
    await screenshot(page, "fail-no-build").catch(() => {});
    throw err;
  } finally {
    await page.close();
  }
});
