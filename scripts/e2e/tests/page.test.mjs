// End-to-end tests of the page's single-group mode in Debian's Chromium,
// against the real wasm build in web/pkg/ (the sharded mode's are in
// sharded.test.mjs).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { pageUrl, screenshot } from "../browser.mjs";
import { env, pageTest, state, summary, setSpeed, play, pause, waitText, waitLeader, scrubTo, canvasPoint, openLink } from "./page-kit.mjs";

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
  assert.deepEqual(SCENARIOS.map((s) => s.id), ["first-election", "split-vote", "leader-crash", "stale-leader", "figure-8", "log-repair", "snapshot", "read-index", "follower-reads", "membership"]);
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
  assert.deepEqual([st("follower-reads", 2).output1, st("follower-reads", 4).output2], ["1", "2"], "follower reads: at the follower, then elsewhere after the cut");
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

// Share links as anyone can craft or mangle them. A link that cannot be read,
// or asks for more than the page replays, opens the default run (seed 42);
// actions the simulator refuses on replay, and an unknown tour, are left out
// of a run that opens otherwise. Each says so; none freezes or throws.
const DEFAULT_RUN = { nodes: 5, seed: 42, actions: 0 };
const BAD_LINKS = [
  ["#n=5&seed=7&a=0pk%E0%A4%A:v&at=10", /Could not read the link: action "0pk%E0%A4%A:v": bad percent-encoding in "k%E0%A4%A"/, DEFAULT_RUN],
  ["#n=5&seed=7&at=99999999999", /Could not read the link: at=99999999999 is past 1 h of virtual time/, DEFAULT_RUN],
  ["#n=5&seed=7&at=9007199254740993+5", /Could not read the link: at=9007199254740993\+5 is past 1 h/, DEFAULT_RUN],
  ["#n=5&seed=7&a=99999999999c1&at=10", /Could not read the link: action 1 \(at 99999999999 ms\) is past 1 h/, DEFAULT_RUN],
  ["#n=5&seed=7&a=500c1,100r1&at=600", /Could not read the link: action 2 \(at 100 ms\) comes before action 1 \(at 500 ms\)/, DEFAULT_RUN],
  ["#n=5&seed=7&at=100+99999999", /Could not read the link: at=100\+99999999 counts more than 100000 steps/, DEFAULT_RUN],
  ["#n=5&seed=7&a=0+99999999c1", /Could not read the link: action "0\+99999999c1" counts more than 100000 steps/, DEFAULT_RUN],
  ["#n=0&seed=7", /Could not read the link: .*nodes must be 1 to 9, not 0/, DEFAULT_RUN],
  ["#n=1000&seed=7", /Could not read the link: .*nodes must be 1 to 9, not 1000/, DEFAULT_RUN],
  ["#n=3.5&seed=7", /Could not read the link: config.nodes must be a non-negative integer, not 3.5/, DEFAULT_RUN],
  ["#n=5&seed=7&et=300-150", /Could not read the link: config.electionTimeoutMs must have min <= max/, DEFAULT_RUN],
  ["#n=5&seed=7&lat=0-1e12", /Could not read the link: config.latencyMs must be at most 1000000000 ms/, DEFAULT_RUN],
  ["#n=5&seed=7&drop=2", /Could not read the link: drop rate must be between 0 and 1, not 2/, DEFAULT_RUN],
  ["#n=5&seed=7&fr=yes", /Could not read the link: bad fr=yes/, DEFAULT_RUN],
  ["#drop=2", /Could not read the link: drop rate must be between 0 and 1, not 2/, DEFAULT_RUN],
  ["#n=5&seed=7&mx=0", /Could not read the link: .*limits must be non-zero/, DEFAULT_RUN],
  ["#n=5&seed=7&chunk=-1", /Could not read the link: config.snapshotChunkBytes must be a non-negative integer, not -1/, DEFAULT_RUN],
  ["#n=5&seed=7&a=0c1:2:3&at=10", /Could not read the link: action "0c1:2:3": crash takes 1 argument, not 3/, DEFAULT_RUN],
  ["#n=5&seed=7&a=0pk&at=10", /Could not read the link: action "0pk": put takes 2 to 3 arguments, not 1/, DEFAULT_RUN],
  ["#n=5&seed=7&a=0P1.2-&at=10", /Could not read the link: action "0P1.2-": a side of the partition is empty/, DEFAULT_RUN],
  ["#n=3&seed=7&n=5", /Could not read the link: n= is given twice/, DEFAULT_RUN],
  [`#n=5&seed=7&a=${"0pk:v,".repeat(200000)}&at=10`, /Could not read the link: the link is \d+ characters long, more than the 200000/, DEFAULT_RUN],
  // within the limits, but a hundred clients each sending every millisecond for an hour: minutes of replay
  ["#n=9&seed=7&a=0w100:1:5:0&at=3600000", /Could not read the link: replaying its run took more than 10 s here/, DEFAULT_RUN],
  ["#n=5&seed=7&a=0c99,5c2&at=10", /Some recorded actions failed on replay: crash\(99\) at 0 ms: unknown node 99/, { nodes: 5, seed: 7, actions: 2, down: [2] }],
  ["#n=5&seed=7&a=0c4294967297", /Some recorded actions failed on replay: crash\(4294967297\) at 0 ms: unknown node 4294967297/, { nodes: 5, seed: 7, actions: 1 }],
  ["#n=4&seed=7&sc=nope.1", /The link's guided tour "nope" does not exist: its run opens without it/, { nodes: 4, seed: 7, actions: 0 }],
];

pageTest("a bad share link says why, opens the default run or what of it is valid, and the page keeps working", async () => {
  for (const [hash, message, run] of BAD_LINKS) {
    const where = hash.slice(0, 60);
    const started = Date.now();
    const link = await openLink(hash, { ms: 20000 });
    try {
      await link.respond(); // Step (which replays a link's first action if it has no at=), then a put from the form
      await link.page.waitForFunction((src) => new RegExp(src).test(window.__messages.join(" | ")), message.source, { timeout: 5000 }).catch(() => {});
      assert.match(await link.messages(), message, `${where}: says why`);
      const shown = await link.page.evaluate(() => {
        const tl = window.__distribkv.timeline();
        return { nodes: tl.config.nodes, seed: tl.config.seed, actions: tl.actions.length, down: tl.sim.state().nodes.filter((n) => !n.up).map((n) => n.id) };
      });
      // the put from the form is recorded too
      assert.deepEqual(shown, { down: [], ...run, actions: run.actions + 1 }, `${where}: the run opened`);
      assert.deepEqual(link.errors, [], `${where}: no page errors`);
      assert.ok(Date.now() - started < 15000, `${where}: answered in seconds`);
    } finally {
      await link.close();
    }
  }
}, { timeout: 240000 });

pageTest("a link with some of its keys opens with the others at their defaults; one with only a tour opens the tour", async () => {
  const partial = await openLink("#drop=0.25&et=400-800");
  try {
    const c = await partial.page.evaluate(() => window.__distribkv.timeline().config);
    assert.deepEqual([c.nodes, c.seed, c.dropRate, c.electionTimeoutMs], [5, 42, 0.25, [400, 800]], "the link's settings, the rest defaults");
    assert.deepEqual(partial.errors, []);
  } finally {
    await partial.close();
  }
  const tour = await openLink("#sc=figure-8.2");
  try {
    const shown = await tour.page.evaluate(() => { const a = window.__distribkv.app; return { id: a.guide.scenario?.id, step: a.guide.step, mx: a.timeline.config.maxEntriesPerMessage }; });
    assert.deepEqual(shown, { id: "figure-8", step: 2, mx: 1 }, "the tour at that step, in its own configuration");
    assert.deepEqual(tour.errors, []);
  } finally {
    await tour.close();
  }
});

pageTest("a seed the simulator refuses, typed in the run form, changes nothing and says why", async (page, errors) => {
  const seed = () => page.evaluate(() => window.__distribkv.timeline().config.seed);
  assert.equal(await seed(), 42);
  await page.fill("#seed", "99999999999999999999");
  // the field's own bound stops the form ...
  assert.equal(await page.$eval("#seed", (el) => el.checkValidity()), false, "the field refuses a seed past 2^53 - 1");
  await page.$eval("#run-form", (form) => form.requestSubmit());
  assert.equal(await seed(), 42, "the run is unchanged");
  // ... and a submit that skips it is refused by the page with a message, the run unchanged
  await page.$eval("#run-form", (form) => form.dispatchEvent(new Event("submit", { cancelable: true })));
  await waitText(page, "#toast", /Cannot start this run: .*2\^53 - 1/);
  assert.equal(await seed(), 42, "the run is unchanged");
  await page.fill("#seed", "7");
  await page.$eval("#run-form", (form) => form.requestSubmit());
  await page.waitForFunction(() => window.__distribkv.timeline().config.seed === 7);
  assert.deepEqual(errors, []);
});

pageTest("a bad link pasted into an open tab says why and opens the default run, as on a fresh page", async () => {
  const link = await openLink("#n=4&seed=7");
  try {
    await link.page.evaluate(() => { location.hash = "#n=4&seed=7&at=99999999999"; });
    await link.page.waitForFunction(() => window.__distribkv.timeline().config.seed === 42, null, { timeout: 5000 }).catch(() => {});
    assert.match(await link.messages(), /Could not read the link: at=99999999999 is past 1 h/);
    assert.deepEqual(await link.page.evaluate(() => ({ nodes: window.__distribkv.timeline().config.nodes, seed: window.__distribkv.timeline().config.seed })), { nodes: 5, seed: 42 }, "the default run");
    await link.respond();
    assert.deepEqual(link.errors, []);
  } finally {
    await link.close();
  }
});

pageTest("the share link of every guided tour step reads back, a workload switched off included", async (page) => {
  const { refused, logRepair } = await page.evaluate(async () => {
    const { SCENARIOS, planContext } = await import("./js/scenarios.js");
    const { Timeline } = await import("./js/timeline.js");
    const { encodeRun, decodeRun } = await import("./js/share.js");
    const out = { refused: [], logRepair: null };
    for (const s of SCENARIOS) {
      const tl = new Timeline(window.__distribkv.app.backend, s.config);
      const facts = {};
      for (const [i, step] of s.steps.entries()) {
        step.plan(planContext(tl), facts);
        const hash = encodeRun({ config: tl.config, actions: tl.actions, cursor: tl.position(), scenario: { id: s.id, step: i + 1 } });
        try { decodeRun(hash); } catch (err) { out.refused.push(`${s.id} step ${i + 1}: ${err.message}`); }
        if (s.id === "log-repair" && i === 3) out.logRepair = hash;
      }
      tl.free();
    }
    return out;
  });
  assert.deepEqual(refused, [], "every link reads back");
  assert.match(logRepair, /\dw0,/, "log repair switches its workload off");
  const link = await openLink(logRepair);
  try {
    await link.page.waitForFunction(() => window.__distribkv.app.guide.step === 4, null, { timeout: 20000 });
    assert.equal(await link.page.evaluate(() => window.__distribkv.app.guide.scenario.id), "log-repair");
    assert.doesNotMatch(await link.messages(), /Could not read/);
    assert.deepEqual(link.errors, []);
  } finally {
    await link.close();
  }
}, { timeout: 120000 });

pageTest("a run ends where a share link stops replaying: playing and stepping stop there, and its link opens", async () => {
  const first = await openLink("#n=3&seed=1&at=3599000", { ms: 30000 });
  let hash;
  try {
    const { page } = first;
    await setSpeed(page, 2);
    await play(page);
    await page.waitForFunction(() => !window.__distribkv.app.playback.playing, null, { timeout: 20000 });
    assert.equal(await page.evaluate(() => window.__distribkv.timeline().display), 3600000, "playing stops at 1 h");
    await page.click("#step");
    assert.equal(await page.evaluate(() => window.__distribkv.timeline().display), 3600000, "so does stepping");
    assert.match(await first.messages(), /The run ends at 1 h of virtual time: a share link replays no further/);
    hash = await page.evaluate(() => window.__distribkv.app.shareHash());
    assert.deepEqual(first.errors, []);
  } finally {
    await first.close();
  }
  assert.match(hash, /&at=3600000$/);
  const again = await openLink(hash, { ms: 30000 });
  try {
    assert.equal(await again.page.evaluate(() => window.__distribkv.timeline().display), 3600000, "the link opens at that moment");
    assert.doesNotMatch(await again.messages(), /Could not read/);
    assert.deepEqual(again.errors, []);
  } finally {
    await again.close();
  }
}, { timeout: 120000 });

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

pageTest("follower reads from the settings: followers answer reads after a ReadIndex round, the inspector counts them, the link carries them", async (page) => {
  await page.click("#settings-btn");
  await page.check("#s-followerreads");
  await page.click("#settings-apply");
  assert.equal(await page.evaluate(() => window.__distribkv.timeline().config.followerReads), true);
  await setSpeed(page, 0);
  await page.keyboard.press("w"); // steady workload
  await play(page);
  // a follower asks its leader for a read index: the message is drawn in its own colour
  await page.waitForFunction(() => window.__distribkv.sim().state().inFlight.some((m) => m.kind === "ReadIndex"), null, { timeout: 20000 });
  assert.ok(await page.evaluate(() => window.__distribkv.app.theme.msgColor("ReadIndex") !== window.__distribkv.app.theme.muted), "ReadIndex has a colour");
  await page.waitForFunction(() => window.__distribkv.sim().state().nodes.some((n) => n.followerReadsServed > 0), null, { timeout: 20000 });
  await pause(page);
  const node = await page.evaluate(() => window.__distribkv.sim().state().nodes.find((n) => n.followerReadsServed > 0));
  assert.notEqual(node.role, "leader");
  await page.evaluate((id) => window.__distribkv.app.selectNode(id), node.id);
  await page.waitForFunction(() => /follower reads served\s*\d+ since it started/.test(document.querySelector("#i-fields")?.textContent ?? ""));
  assert.equal((await page.evaluate(() => window.__distribkv.sim().check())).ok, true);
  await page.waitForFunction(() => /(^|&|#)fr=1(&|$)/.test(location.hash));
  const link = await openLink(await page.evaluate(() => location.hash));
  try {
    assert.equal(await link.page.evaluate(() => window.__distribkv.timeline().config.followerReads), true, "the link opens with follower reads");
    assert.deepEqual(link.errors, []);
  } finally {
    await link.close();
  }
}, { timeout: 90000 });

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

/** What the page shows of the run, precisely: the trace hash, every node's term, commit index and log length, the history's length. */
const digest = (page) => page.evaluate(() => {
  const sim = window.__distribkv.sim();
  const { now, nodes } = sim.state({ logTail: 0 });
  return { now, hash: sim.traceHash(), nodes: nodes.map((n) => [n.id, n.up, n.term, n.commitIndex, n.lastIndex]), ops: sim.history().length };
});
/** The same, for a fresh replay from the start of the page's recorded actions to `to` (a time or a position). */
const freshDigest = (page, to) => page.evaluate((to) => {
  const tl = window.__distribkv.timeline();
  const fresh = new tl.constructor(tl.backend, tl.config, tl.actions);
  if (typeof to === "number") fresh.seek(to); else fresh.seekPosition(to);
  const { now, nodes } = fresh.sim.state({ logTail: 0 });
  const seen = { now, hash: fresh.sim.traceHash(), nodes: nodes.map((n) => [n.id, n.up, n.term, n.commitIndex, n.lastIndex]), ops: fresh.sim.history().length };
  fresh.free();
  return seen;
}, to);

pageTest("seeking back replays from a checkpoint, to the state a replay from the start shows; acting in the past drops the later checkpoints", async (page) => {
  const app = (fn, arg) => page.evaluate(fn, arg);
  const forward = async (ms) => {
    await app((ms) => window.__distribkv.app.playback.seek(window.__distribkv.timeline().display + ms), ms);
    // the scrubber's range follows at the next frame
    await page.waitForFunction(() => Number(document.querySelector("#timeline").max) >= Math.floor(window.__distribkv.timeline().end));
  };
  await setSpeed(page, 1);
  await play(page);
  const l = await waitLeader(page);
  await pause(page);
  await page.click("#wl-on");
  await forward(9000);
  await page.keyboard.press(String(l));
  await page.keyboard.press("c"); // crash the leader
  await forward(7000);
  await app(() => window.__distribkv.app.act("partition", [[1, 2], [3, 4, 5]]));
  for (let i = 0; i < 3; i++) await page.keyboard.press("n"); // single events, then an action at (t, 3)
  await app(() => window.__distribkv.app.act("setDropRate", 0.2));
  await forward(8000);
  await app(() => window.__distribkv.app.act("heal"));
  await forward(16000);
  const { end, actions } = await app(() => ({ end: window.__distribkv.timeline().display, actions: window.__distribkv.timeline().actions }));
  assert.ok(end > 40000, `ran ${end} ms`);
  const stepped = actions.find((a) => a.op === "setDropRate");
  assert.equal(stepped.s, 3, "an action between single events");
  const heal = actions.find((a) => a.op === "heal");

  // back to times, by the scrubber and by the keyboard's seek: just before, at and after an action, and late in the run
  for (const t of [end - 1500, heal.t - 1, heal.t, heal.t + 1, Math.floor(end / 2) + 0.5, end - 700]) {
    // (scrubTo waits for the time shown to be within 1 ms of t: a step of 1 ms seeks directly)
    const shown = await app(() => window.__distribkv.timeline().display);
    if (Number.isInteger(t) && Math.abs(shown - t) > 2) await scrubTo(page, t);
    else await app((t) => window.__distribkv.app.playback.seek(t), t);
    assert.deepEqual(await digest(page), await freshDigest(page, t), `at ${t}`);
    const { from, replayedMs } = await app(() => window.__distribkv.timeline().lastSeek);
    assert.ok(from > 0 && replayedMs <= 4000, `${t} replayed ${replayedMs} ms from a checkpoint at ${from}, not ${t} ms from the start`);
  }
  // to exact positions: the stepped action's, one event before it and one after
  for (const s of [stepped.s - 1, stepped.s, stepped.s + 1]) {
    const position = { t: stepped.t, s, display: stepped.t };
    await app((p) => window.__distribkv.timeline().seekPosition(p), position);
    assert.deepEqual(await digest(page), await freshDigest(page, position), `at (${stepped.t}, ${s})`);
    assert.ok((await app(() => window.__distribkv.timeline().lastSeek.from)) > 0, "from a checkpoint");
  }

  // acting in the past: the recorded future and the checkpoints after that moment go
  await scrubTo(page, heal.t - 2000);
  await page.keyboard.press(String(l));
  await page.keyboard.press("r"); // restart the old leader, which the recorded run never did
  const acted = await app(() => window.__distribkv.timeline().position());
  const late = await app(() => window.__distribkv.timeline().checkpoints.list.filter((c) => c.at > window.__distribkv.timeline().base).length);
  assert.equal(late, 0, "no checkpoint after the new action");
  await forward(end - acted.t);
  const spacing = await app(() => window.__distribkv.timeline().checkpoints.spacing);
  for (const t of [end - 3000, acted.t + spacing + 500, acted.t + 500]) {
    await scrubTo(page, t);
    assert.deepEqual(await digest(page), await freshDigest(page, t), `at ${t}, after the new action`);
    const { from } = await app(() => window.__distribkv.timeline().lastSeek);
    assert.ok(from > 0 && (t < acted.t + spacing || from > acted.t), `${t}: from a checkpoint (${from}), taken after the new action if one is ${spacing} ms before`);
  }
  assert.ok((await digest(page)).nodes.find(([id]) => id === l)[1], "the old leader is up: the new action holds");
}, { timeout: 120000 });
