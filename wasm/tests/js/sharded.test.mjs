// The ShardedSimulation class of the built package, in Node: its shape,
// determinism, routing by key, a shard move under a workload with a host
// crash in the middle (checked per group and for linearizability), and
// errors for bad arguments.
//
//   scripts/build-web.sh && node --test wasm/tests/js/sharded.test.mjs

import { test } from "node:test";
import assert from "node:assert/strict";
import { Simulation, ShardedSimulation, assertPlain } from "./support.mjs";

/** Runs in slices of `slice` ms until `done(state)` or `limit` ms; the state it stopped at. */
function runUntil(sim, done, limit = 10_000, slice = 20) {
  const end = sim.now() + limit;
  let state = sim.state();
  while (!done(state) && sim.now() < end) {
    sim.runFor(slice);
    state = sim.state();
  }
  return state;
}

test("defaults: 5 hosts, the controller and 3 groups of 3, 10 shards, all joined after a while", () => {
  const sim = new ShardedSimulation();
  let state = sim.state();
  assertPlain(state, "state()");
  assert.equal(state.hosts.length, 5);
  assert.deepEqual(state.groups.map((g) => g.id), [0, 100, 101, 102]);
  assert.deepEqual(state.groups[0].hosts, [1, 2, 3]);
  for (const g of state.groups.slice(1)) assert.equal(g.hosts.length, 3);
  // Every host holds some replicas; the round robin spreads them.
  const held = state.hosts.map((h) => h.replicas.length);
  assert.equal(held.reduce((a, b) => a + b, 0), 12);
  assert.equal(state.shards.length, 10);
  assert.equal(state.admin.running, "join 100 101 102");
  state = runUntil(sim, (s) => s.shards.every((x) => x.status === "serving"));
  assert.equal(state.config.num, 1);
  assert.deepEqual(new Set(state.config.shards), new Set([100, 101, 102]));
  assert.equal(state.admin.done[0].outcome, "ok");
  for (const g of state.groups) assert.ok(g.leader !== null, `group ${g.id} has a leader`);
  // The shard map agrees with what each group holds.
  for (const s of state.shards) {
    const owner = state.groups.find((g) => g.id === s.owner);
    assert.ok(owner.shards.some((h) => h.shard === s.shard && h.status === "serving"));
  }
});

test("the same seed and calls give the same run", () => {
  const run = () => {
    const sim = new ShardedSimulation({ seed: 5, hosts: 6, groups: 2, replicas: 3, shards: 8 });
    sim.setWorkload(true);
    sim.runFor(1500);
    sim.move(3, 101);
    sim.crash(2);
    sim.runFor(1500);
    return JSON.stringify([sim.state(), sim.history()]);
  };
  assert.equal(run(), run());
});

test("put, append and get route by key and complete in virtual time", () => {
  const sim = new ShardedSimulation({ seed: 2, clients: 0 });
  const put = sim.put("x", "1");
  const append = sim.append("x", "2");
  const get = sim.get("x");
  assert.deepEqual([put, append, get], [1, 2, 3]);
  let history = sim.history();
  assert.deepEqual(history.map((o) => o.status), ["pending", "pending", "pending"]);
  assert.equal(history[0].shard, sim.shardOf("x"));
  runUntil(sim, () => sim.history().every((o) => o.status !== "pending"));
  history = sim.history();
  assertPlain(history, "history()");
  assert.deepEqual(history.map((o) => o.status), ["ok", "ok", "ok"]);
  assert.equal(history[2].output, "12");
  assert.ok(history[0].completedAt <= history[1].invokedAt || history[1].invokedAt === 0);
  assert.equal(sim.check().ok, true);
});

test("followerReads: the workload's gets are answered by replicas that do not lead their group; without it none are", () => {
  const served = (followerReads) => {
    const sim = new ShardedSimulation({ seed: 4, clients: 3, followerReads });
    runUntil(sim, (s) => s.shards.every((x) => x.status === "serving"));
    sim.setWorkload(true);
    sim.runFor(4000);
    sim.setWorkload(false);
    runUntil(sim, () => sim.history().every((o) => o.status !== "pending"));
    assert.equal(sim.check().ok, true);
    const replicas = sim.state().hosts.flatMap((h) => h.replicas);
    for (const r of replicas) {
      assert.equal(typeof r.followerReadsServed, "number");
      if (r.group === 0) assert.equal(r.followerReadsServed, 0, "the controller holds no keys");
    }
    return replicas.reduce((sum, r) => sum + r.followerReadsServed, 0);
  };
  const on = served(true);
  assert.ok(on > 5, `followers served ${on} reads`);
  assert.equal(served(false), 0);
  assert.throws(() => new ShardedSimulation({ followerReads: 1 }), (e) => e instanceof Error && /followerReads/.test(e.message));
});

test("a shard moves while clients write, and its old owner's host crashes mid-move", () => {
  const sim = new ShardedSimulation({ seed: 11, hosts: 9, groups: 3, replicas: 3, shards: 6 });
  sim.setWorkload(true);
  let state = runUntil(sim, (s) => s.config && s.shards.every((x) => x.status === "serving"));
  // A shard that the workload's keys (k0..k5) use, to another group.
  const shard = sim.shardOf("k0");
  const from = state.shards[shard].owner;
  const to = [100, 101, 102].find((g) => g !== from);
  sim.move(shard, to);
  let sawMoving = false;
  let sawPush = false;
  state = runUntil(sim, (s) => {
    sawPush ||= s.inFlight.some((m) => m.pushes.some((p) => p.shard === shard && p.toGroup === to));
    if (s.shards[shard].status === "moving") sawMoving = true;
    return s.shards[shard].status === "moving";
  }, 5000, 5);
  assert.ok(sawMoving, "the shard is seen moving");
  assert.equal(state.shards[shard].from, from);
  // The old owner's leader host fails mid-move: every replica it holds stops.
  const victim = state.groups.find((g) => g.id === from).leader;
  sim.crash(victim);
  state = sim.state();
  const host = state.hosts[victim - 1];
  assert.equal(host.up, false);
  assert.ok(host.replicas.every((r) => r.role === "down"));
  state = runUntil(sim, (s) => {
    sawPush ||= s.inFlight.some((m) => m.pushes.some((p) => p.shard === shard));
    return s.shards[shard].status === "serving";
  }, 20_000);
  assert.equal(state.shards[shard].owner, to);
  assert.equal(state.shards[shard].status, "serving");
  assert.ok(sawPush, "the shard's push was seen in flight");
  const movedAt = state.now;
  sim.restart(victim);
  sim.runFor(2000);
  sim.setWorkload(false);
  runUntil(sim, (s) => s.clients.every((c) => c.pending === null), 20_000);
  const ops = sim.history();
  const moved = ops.filter((o) => o.shard === shard && o.status === "ok" && o.client > 0);
  assert.ok(moved.some((o) => o.invokedAt >= movedAt), "operations on the moved shard continue after the move");
  const check = sim.check();
  assertPlain(check, "check()");
  assert.equal(check.ok, true, check.violations.join("\n"));
  assert.deepEqual(check.groups.map((g) => g.group), [0, 100, 101, 102]);
  assert.ok(check.linearizability.decided);
  assert.match(check.linearizability.text, /^linearizable: /);
});

test("join, leave and move go through the controller; refusals are reported", () => {
  const sim = new ShardedSimulation({ seed: 3, join: [100], clients: 0 });
  let state = runUntil(sim, (s) => s.config && s.config.num === 1);
  assert.deepEqual(new Set(state.config.shards), new Set([100]));
  assert.equal(state.groups.find((g) => g.id === 101).joined, false);
  sim.join([101, 102]);
  state = runUntil(sim, (s) => s.config.num === 2 && s.shards.every((x) => x.status === "serving"));
  assert.deepEqual(new Set(state.config.shards), new Set([100, 101, 102]));
  sim.leave(101);
  state = runUntil(sim, (s) => s.config.num === 3 && s.shards.every((x) => x.status === "serving"));
  assert.ok(!state.config.shards.includes(101));
  assert.equal(state.groups.find((g) => g.id === 101).joined, false);
  sim.move(0, 101); // 101 has left: the controller refuses
  state = runUntil(sim, (s) => s.admin.running === null && s.admin.queued.length === 0);
  const last = state.admin.done.at(-1);
  assert.equal(last.op, "move shard 0 to 101");
  assert.equal(last.outcome, "refused");
  // In words, as the command line says it; the name for programs.
  assert.equal(last.text, "group 101 is not in the configuration");
  assert.equal(last.error, "UnknownGroup(101)");
  const earlier = state.admin.done.find((d) => d.op === "leave 101");
  assert.equal(earlier.outcome, "ok");
  assert.equal(earlier.error, null);
  // The last group's leave: refused, and the event log words it too.
  sim.leave(100);
  sim.leave(102);
  state = runUntil(sim, (s) => s.admin.running === null && s.admin.queued.length === 0);
  const refusal = state.admin.done.at(-1);
  assert.equal(refusal.op, "leave 102");
  assert.equal(refusal.error, "LastGroup(102)");
  assert.match(refusal.text, /^group 102 is the last group: its shards would have no owner/);
  const lines = sim.events(0).map((e) => e.text).filter((t) => /refused/.test(t));
  assert.ok(lines.length > 0, "the refusals are in the event log");
  for (const line of lines) {
    assert.doesNotMatch(line, /\b(LastGroup|UnknownGroup)\(/, line);
  }
  assert.ok(lines.some((t) => t.includes("refused: group 102 is the last group")), lines.join("\n"));
});

test("a group that left is retired: its replicas vanish, a join of it is refused in words", () => {
  const sim = new ShardedSimulation({ seed: 5, join: [100, 101], clients: 0 });
  let state = runUntil(sim, (s) => s.config && s.config.num === 1 && s.shards.every((x) => x.status === "serving"));
  sim.leave(101);
  // The controller retires it, then its hosts hear so and drop their replicas.
  const holds101 = (s) => s.hosts.filter((h) => h.replicas.some((r) => r.group === 101)).map((h) => h.id);
  state = runUntil(sim, (s) => s.groups.find((g) => g.id === 101).retired && holds101(s).length === 0, 30_000, 100);
  const g101 = state.groups.find((g) => g.id === 101);
  assert.equal(g101.retired, true);
  assert.equal(g101.joined, false);
  assert.deepEqual(holds101(state), [], "no host holds group 101");
  assert.ok(state.now > 10_000, "not before the retirement delay (10 s)");
  assert.equal(state.groups.find((g) => g.id === 102).retired, false, "never joined: kept");
  sim.join([101]);
  state = runUntil(sim, (s) => s.admin.running === null && s.admin.queued.length === 0);
  const last = state.admin.done.at(-1);
  assert.equal(last.outcome, "refused");
  assert.equal(last.error, "Retired(101)");
  assert.match(last.text, /^group 101 left and was retired/);
  assert.equal(sim.check().ok, true);
});

test("partitions and cut links show in state().links", () => {
  const sim = new ShardedSimulation({ seed: 4 });
  sim.partition([[1, 2], [3, 4, 5]]);
  assert.deepEqual(sim.state().links.partition, [[1, 2], [3, 4, 5]]);
  sim.heal();
  sim.cutLink(1, 2);
  assert.deepEqual(sim.state().links, { partition: null, cut: [[1, 2]] });
  sim.restoreLink(1, 2);
  assert.deepEqual(sim.state().links.cut, []);
});

test("bad arguments throw Errors that name them; the instance stays usable", () => {
  const cases = [
    [() => new ShardedSimulation({ hosts: 0 }), /config.hosts must be 1 to 32, not 0/],
    [() => new ShardedSimulation({ shard: 3 }), /unknown field "shard"/],
    [() => new ShardedSimulation({ hosts: 2, replicas: 3 }), /config.replicas must be 1 to 2/],
    [() => new ShardedSimulation({ placement: [[1, 1]] }), /names host 1 twice/],
    [() => new ShardedSimulation({ placement: [[1, 2, 9]], hosts: 5 }), /names host 9/],
    [() => new ShardedSimulation({ placement: [[1]], groups: 2 }), /without config.groups/],
    [() => new ShardedSimulation({ join: [7] }), /config.join\[0\] is group 7/],
    [() => new ShardedSimulation({ seed: -1 }), /config.seed must be a non-negative integer/],
    [() => new ShardedSimulation({ dropRate: 2 }), /config.dropRate must be 0 to 0.5/],
    [() => new ShardedSimulation({ latencyMs: [2 ** 53 - 1, 2 ** 53 - 1] }), /config.latencyMs must be at most 1000000000 ms/],
  ];
  for (const [call, message] of cases) assert.throws(call, (e) => e instanceof Error && message.test(e.message));
  const sim = new ShardedSimulation({ seed: 1 });
  const calls = [
    [() => sim.crash(0), /unknown host 0 \(host ids are 1 to 5\)/],
    [() => sim.restart("1"), /host id must be a non-negative integer/],
    [() => sim.move(10, 100), /unknown shard 10 \(shards are 0 to 9\)/],
    [() => sim.move(1, 99), /unknown group 99 \(the groups are 100, 101, 102\)/],
    [() => sim.join([]), /at least one group/],
    [() => sim.leave([100, 5]), /unknown group 5/],
    [() => sim.leave([101, 101]), /^groups names group 101 twice$/],
    [() => sim.join([100, 102, 100]), /^groups names group 100 twice$/],
    [() => sim.put("", "v"), /key must not be empty/],
    [() => sim.get(7), /key must be a string/],
    [() => sim.append("k", null), /value must be a string/],
    [() => sim.partition([[1, 2]]), /at least two sides/],
    [() => sim.partition([[1, 2], [2, 3]]), /host 2 is on two sides/],
    [() => sim.runFor(-5), /ms must be a non-negative number/],
    [() => sim.setWorkload("yes"), /on must be true or false/],
    [() => sim.check({ steps: 1 }), /unknown field "steps"/],
    [() => sim.message("x"), /message id must be a non-negative integer/],
    [() => sim.dropMessage(-1), /message id must be a non-negative integer/],
    [() => sim.events("a"), /since must be a non-negative integer/],
    [() => sim.history({ form: 2 }), /unknown field "form"/],
  ];
  for (const [call, message] of calls) assert.throws(call, (e) => e instanceof Error && message.test(e.message));
  sim.runFor(1000);
  assert.equal(sim.now(), 1000);
  assert.equal(sim.check().ok, true);
});

test("runFor and runUntil cover at most 100,000,000 ms per call; more, or past 2^53 - 1, is refused, not clamped", () => {
  const sim = new ShardedSimulation({ seed: 2 });
  sim.runFor(1000);
  const before = JSON.stringify(sim.state());
  const perCall = (v) => new RegExp(`^ms must be at most 100000000 ms per call \\(call again to run longer\\), not ${v}$`);
  const after = (v) => new RegExp(`^t must be at most 100000000 ms after now\\(\\) \\(1000\\) per call \\(call again to run longer\\), not ${v}$`);
  const cases = [
    [() => sim.runFor(100_000_001), perCall("100000001")],
    [() => sim.runFor(100_000_001n), perCall("100000001n")],
    [() => sim.runFor(1e12), perCall("1000000000000")],
    [() => sim.runFor(2 ** 53), /^ms must be at most 2\^53 - 1, not 9007199254740992$/],
    [() => sim.runFor(2n ** 53n), /^ms must be at most 2\^53 - 1, not 9007199254740992n$/],
    [() => sim.runUntil(1000 + 100_000_001), after("100001001")],
    [() => sim.runUntil(100_001_001n), after("100001001n")],
    [() => sim.runUntil(1e12), after("1000000000000")],
    [() => sim.runUntil(2 ** 53), /^t must be at most 2\^53 - 1, not 9007199254740992$/],
  ];
  for (const [call, re] of cases) assert.throws(call, (e) => e instanceof Error && re.test(e.message), `${call}`);
  assert.equal(sim.now(), 1000, "refused calls change nothing");
  assert.equal(JSON.stringify(sim.state()), before, "refused calls change nothing");
  // The bound itself is allowed, as a number or a BigInt (on one host
  // with one group of one, whose day passes in seconds); an earlier t still does nothing.
  const alone = new ShardedSimulation({ hosts: 1, groups: 1, replicas: 1, shards: 1, seed: 2 });
  alone.runFor(1000);
  assert.equal(alone.runUntil(1000 + 100_000_000), 100_001_000);
  assert.equal(alone.runFor(100_000_000n), 200_001_000);
  assert.equal(alone.runUntil(5), 200_001_000);
  assert.equal(alone.check().ok, true);
  assert.equal(sim.runFor(10_000), 11_000);
  assert.equal(sim.check().ok, true);
});

test("crash() of a host that is down and restart() of one that is up throw, in Simulation's words for a node", () => {
  const single = new Simulation({ seed: 1 });
  single.crash(2);
  assert.throws(() => single.crash(2), { message: "node 2 is down" });
  single.restart(2);
  assert.throws(() => single.restart(2), { message: "node 2 is already up" });

  const sim = new ShardedSimulation({ seed: 1 });
  sim.runFor(1000);
  const before = JSON.stringify(sim.state());
  const events = sim.events(0).length;
  assert.throws(() => sim.restart(2), (e) => e instanceof Error && e.message === "host 2 is already up");
  assert.equal(JSON.stringify(sim.state()), before, "a refused restart changes nothing");
  sim.crash(2);
  const crashed = JSON.stringify(sim.state());
  assert.equal(sim.state().hosts[1].up, false);
  assert.throws(() => sim.crash(2), (e) => e instanceof Error && e.message === "host 2 is down");
  assert.throws(() => sim.crash(2n), { message: "host 2 is down" });
  assert.equal(JSON.stringify(sim.state()), crashed, "a refused crash changes nothing");
  assert.equal(sim.events(0).filter((e) => e.kind === "crash").length, 1, "one crash in the journal");
  assert.ok(sim.events(0).length > events);
  sim.restart(2);
  assert.equal(sim.state().hosts[1].up, true);
  assert.throws(() => sim.restart(2), { message: "host 2 is already up" });
  sim.runFor(2000);
  assert.equal(sim.check().ok, true);
});

test("a configuration the core refuses is explained by its field and value, with no Rust debug text", () => {
  // One bad value per field of ShardedConfig; the last three reach the core's Raft config check.
  const cases = [
    [{ seed: 1.5 }, "seed", "1.5"],
    [{ hosts: 40 }, "hosts", "40"],
    [{ groups: 13 }, "groups", "13"],
    [{ replicas: 0 }, "replicas", "0"],
    [{ shards: 65 }, "shards", "65"],
    [{ controllerReplicas: 8 }, "controllerReplicas", "8"],
    [{ placement: [[1, 2], []] }, "placement", "0"],
    [{ join: [100, 99] }, "join", "99"],
    [{ clients: 21 }, "clients", "21"],
    [{ keys: 0 }, "keys", "0"],
    [{ latencyMs: [5, 2] }, "latencyMs", "[5, 2]"],
    [{ dropRate: 0.9 }, "dropRate", "0.9"],
    [{ heartbeatMs: 0 }, "heartbeatMs", "0"],
    [{ snapshotEvery: -1 }, "snapshotEvery", "-1"],
    [{ adminTimeoutMs: "soon" }, "adminTimeoutMs", '"soon"'],
    [{ traceCapacity: 1.5 }, "traceCapacity", "1.5"],
    [{ electionTimeoutMs: [0, 10] }, "electionTimeoutMs", "0"],
    [{ electionTimeoutMs: [150, 150] }, "electionTimeoutMs", "[150, 150]"],
    [{ electionTimeoutMs: [100, 1e8], heartbeatMs: 20 }, "electionTimeoutMs", "[100, 100000000]"],
    [{ electionTimeoutMs: [10, 20] }, "heartbeatMs", "not 50"],
  ];
  const debug = /[{}]|\b[A-Z]\w*\(|Config\(|Host\(|\w+ \{/;
  for (const [config, field, value] of cases) {
    assert.throws(() => new ShardedSimulation(config), (e) => {
      assert.ok(e instanceof Error, JSON.stringify(config));
      assert.doesNotMatch(e.message, debug, `${JSON.stringify(config)}: ${e.message}`);
      assert.ok(e.message.includes(`config.${field}`), `${JSON.stringify(config)} names config.${field}: ${e.message}`);
      assert.ok(e.message.includes(value), `${JSON.stringify(config)} names ${value}: ${e.message}`);
      return true;
    });
  }
  assert.throws(() => new ShardedSimulation({ electionTimeoutMs: [150, 150] }), {
    message: "bad configuration: config.electionTimeoutMs must be [min, max] with min below max and max at most 86400000 ms, not [150, 150]",
  });
  assert.throws(() => new ShardedSimulation({ electionTimeoutMs: [10, 20] }), {
    message: "bad configuration: config.heartbeatMs must be below the minimum of config.electionTimeoutMs, 10 ms, not 50 (when not given it is 50)",
  });
  // A valid one still builds.
  const sim = new ShardedSimulation({ electionTimeoutMs: [10, 20], heartbeatMs: 5 });
  sim.runFor(500);
  assert.equal(sim.check().ok, true);
});

test("message(id) renders every field of an item in flight; dropMessage(id) loses it; events() reads the journal", () => {
  const sim = new ShardedSimulation({ seed: 4 });
  sim.setWorkload(true);
  runUntil(sim, (s) => s.shards.every((x) => x.status === "serving"));
  sim.runFor(200);
  // a Raft message of one group, by the core's serde names
  let item = null;
  for (let i = 0; i < 2000 && !item; i++) {
    sim.step();
    item = sim.state().inFlight.find((m) => m.kinds.includes("AppendEntries"));
  }
  assert.ok(item, "an AppendEntries in flight");
  const m = sim.message(item.id);
  assertPlain(m, "message()");
  assert.equal(m.id, item.id);
  assert.deepEqual([m.from, m.to, m.deliverAt], [item.from, item.to, item.deliverAt]);
  const append = m.messages.find((x) => x.kind === "AppendEntries");
  assert.ok(append.group >= 100 || append.group === 0);
  for (const field of ["term", "prevLogIndex", "prevLogTerm", "leaderCommit", "entries", "bytes"]) assert.ok(field in append, `AppendEntries has ${field}`);
  assert.equal(append.from, item.from);
  // a client's request: the key, its operation and its session's sequence number
  const request = sim.state().inFlight.find((x) => x.kinds.includes("Kv"));
  if (request) {
    const kv = sim.message(request.id).messages[0];
    assert.equal(typeof kv.key, "string");
    assert.ok(["put", "append", "get"].includes(kv.op));
    assert.equal(typeof kv.seq, "number");
  }
  // dropped: gone from the network, and said so in the journal
  assert.equal(sim.dropMessage(item.id), true);
  assert.equal(sim.message(item.id), null);
  assert.ok(!sim.state().inFlight.some((x) => x.id === item.id));
  assert.equal(sim.dropMessage(item.id), false);
  const events = sim.events();
  assertPlain(events, "events()");
  assert.ok(events.length > 0 && events.length <= 500);
  assert.ok(events.some((e) => e.kind === "drop" && e.text.includes(String(item.id))));
  const last = events[events.length - 1].seq;
  sim.crash(2);
  const after = sim.events(last);
  assert.deepEqual(after.map((e) => [e.kind, e.node]), [["crash", 2]]);
  sim.runFor(1500);
  assert.ok(sim.events(last).some((e) => e.kind === "role" && /leader in term/.test(e.text)), "a new leader where host 2 led");
  assert.equal(sim.check().ok, true);
  // no journal asked: no lines
  assert.deepEqual(new ShardedSimulation({ traceCapacity: 0 }).events(), []);
});

test("history({ from }) gives the operations from that id on, as the whole history has them", () => {
  const sim = new ShardedSimulation({ seed: 2 });
  sim.setWorkload(true);
  sim.runFor(3000);
  const all = sim.history();
  assert.ok(all.length > 20);
  assert.deepEqual(sim.history({ from: 11 }), all.slice(10));
  assert.deepEqual(sim.history({ from: 1 }), all);
  assert.deepEqual(sim.history({ from: all.length + 5 }), []);
});

test("the generated .d.ts declares every ShardedSimulation method with its shapes, and Simulation's contract is intact", async () => {
  const { readFile } = await import("node:fs/promises");
  const { fileURLToPath } = await import("node:url");
  const path = await import("node:path");
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
  const dts = await readFile(path.join(path.resolve(process.env.DISTRIBKV_PKG ?? path.join(root, "web/pkg")), "distribkv_wasm.d.ts"), "utf8");
  const block = (name) => {
    const start = dts.indexOf(`export class ${name} {`);
    assert.ok(start >= 0, `class ${name} is declared`);
    return dts.slice(start, dts.indexOf("\n}\n", start));
  };
  const sharded = block("ShardedSimulation");
  const methods = Object.getOwnPropertyNames(ShardedSimulation.prototype).filter((m) => !["constructor", "free", "__destroy_into_raw"].includes(m));
  for (const m of methods) assert.match(sharded, new RegExp(`\\n    ${m}\\(`), `ShardedSimulation.${m} is declared`);
  for (const [m, type] of [["message", "ShardedMessage | null"], ["events", "ShardedEvent[]"], ["history", "ShardedHistoryOp[]"], ["state", "ShardedState"], ["check", "ShardedCheckResult"], ["dropMessage", "boolean"]]) {
    assert.match(sharded, new RegExp(`\\n    ${m}\\([^)]*\\): ${type.replace(/[|[\]]/g, "\\$&")};`), `${m} returns ${type}`);
  }
  for (const shape of ["ShardedMessage", "ShardedEvent", "ShardedInFlight", "ShardedConfig"]) assert.match(dts, new RegExp(`export interface ${shape} \\{`));
  assert.match(dts, /export interface ShardedInFlight \{[^}]*\bid: number;/, "in-flight items carry their id");
  assert.match(dts, /traceCapacity\?: number;/);
  // the single-group class keeps the contract's methods
  const single = block("Simulation");
  for (const m of ["runFor", "now", "crash", "restart", "partition", "heal", "cutLink", "restoreLink", "setDropRate", "put", "append", "get", "delete", "history", "state", "check", "message", "dropMessage", "events"]) {
    assert.match(single, new RegExp(`\\n    ${m}\\(`), `Simulation.${m} is still declared`);
  }
});

test("the generated .d.ts states the rules: the time one run call covers, crash and restart refusals, config errors", async () => {
  const { readFile } = await import("node:fs/promises");
  const { fileURLToPath } = await import("node:url");
  const path = await import("node:path");
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
  const dts = await readFile(path.join(path.resolve(process.env.DISTRIBKV_PKG ?? path.join(root, "web/pkg")), "distribkv_wasm.d.ts"), "utf8");
  /** The doc comment right above `name(` in class `cls`, as one line. */
  const doc = (cls, name) => {
    const body = dts.slice(dts.indexOf(`export class ${cls} {`));
    const at = body.search(new RegExp(`\\n    ${name}\\(`));
    assert.ok(at > 0, `${cls}.${name} is declared`);
    const before = body.slice(0, at);
    return before.slice(before.lastIndexOf("/**")).replace(/\s*\n\s*\*\s*/g, " ");
  };
  for (const cls of ["Simulation", "ShardedSimulation"]) {
    assert.match(doc(cls, "runFor"), /`ms` is at most 100,000,000/, `${cls}.runFor`);
    assert.match(doc(cls, "runFor"), /2\^53 - 1/, `${cls}.runFor`);
    assert.match(doc(cls, "runUntil"), /at most 100,000,000 ms after `now\(\)`/, `${cls}.runUntil`);
  }
  assert.match(doc("ShardedSimulation", "crash"), /host 2 is down/);
  assert.match(doc("ShardedSimulation", "restart"), /host 2 is already up/);
  assert.match(doc("ShardedSimulation", "constructor"), /bad configuration: config\.electionTimeoutMs/);
});

test("runUntil(now()) after single events processes the rest of that millisecond, as a run from earlier to it does", () => {
  const observe = (sim) => JSON.stringify({ now: sim.now(), state: sim.state(), history: sim.history(), events: sim.events(0) });
  const start = () => {
    const sim = new ShardedSimulation({ seed: 5, traceCapacity: 5000 });
    sim.setWorkload(true);
    sim.runUntil(1200);
    return sim;
  };
  let unfinished = 0;
  for (let steps = 1; steps <= 60; steps++) {
    const stepped = start();
    for (let i = 0; i < steps; i++) stepped.step();
    const t = stepped.now();
    const before = observe(stepped);
    stepped.runUntil(t);
    if (observe(stepped) !== before) unfinished++; // events of millisecond t were left
    const whole = start();
    whole.runUntil(t);
    assert.equal(observe(stepped), observe(whole), `after ${steps} single events, at ${t} ms`);
    assert.equal(stepped.runUntil(t - 1), t, "an earlier time does nothing");
    assert.equal(observe(stepped), observe(whole));
    stepped.free();
    whole.free();
  }
  // The case this covers happened: single events stopped within a millisecond.
  assert.ok(unfinished > 0, "no single event stopped within a millisecond: the test shows nothing");
});
