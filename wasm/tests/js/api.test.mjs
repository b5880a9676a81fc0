// The JS API of the built package (web/pkg, from scripts/build-web.sh),
// end to end in Node, no browser: its shape, determinism, and errors for bad
// arguments. cluster.test.mjs drives the cluster through it.
//
//   scripts/build-web.sh && node --test wasm/tests/js/
//
// DISTRIBKV_PKG=path/to/pkg tests another build.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Simulation, mod, assertPlain, waitForLeader, script } from "./support.mjs";

test("the package exports Simulation and init", () => {
  assert.equal(typeof mod.default, "function");
  assert.equal(typeof Simulation, "function");
});

test("every config field is optional", () => {
  const sim = new Simulation();
  assert.equal(sim.state().nodes.length, 5);
  assert.equal(new Simulation({}).state().nodes.length, 5);
  const full = new Simulation({
    nodes: 3, seed: 42, electionTimeoutMs: [200, 400], heartbeatMs: 40, latencyMs: [1, 5],
    dropRate: 0, duplicateRate: 0, snapshotEvery: 100, preVote: false, checkQuorum: false,
    diskLatencyMs: [0, 1], leaseReads: false, followerReads: false, maxEntriesPerMessage: 64, snapshotChunkBytes: 1024,
    clientTimeoutMs: 300, clientGiveUpMs: 5000, checkSafety: true, traceCapacity: 100,
  });
  assert.equal(full.state().nodes.length, 3);
  assert.equal(new Simulation({ seed: 2n ** 63n }).now(), 0, "a BigInt seed beyond 2^53");
});

test("same seed and same calls give the same run", () => {
  const a = script(new Simulation({ nodes: 5, seed: 42, snapshotEvery: 40 }));
  const b = script(new Simulation({ nodes: 5, seed: 42, snapshotEvery: 40 }));
  assert.deepEqual(a.state(), b.state());
  assert.deepEqual(a.history(), b.history());
  assert.deepEqual(a.events(0), b.events(0));
  assert.equal(a.traceHash(), b.traceHash());
  assert.match(a.traceHash(), /^\d+$/);
  assert.ok(a.history().length > 20);
  const c = script(new Simulation({ nodes: 5, seed: 43, snapshotEvery: 40 }));
  assert.notEqual(c.traceHash(), a.traceHash());
});

test("stepping event by event reaches the same state as runUntil", () => {
  const a = new Simulation({ seed: 9 });
  const b = new Simulation({ seed: 9 });
  for (const sim of [a, b]) sim.setWorkload({ clients: 2, intervalMs: 30 });
  a.runUntil(1500);
  let steps = 0;
  for (let next = b.nextEventAt(); next !== null && next <= 1500; next = b.nextEventAt()) {
    const info = b.step();
    assert.equal(info.at, next);
    steps++;
  }
  b.runUntil(1500);
  assert.ok(steps > 100);
  assert.deepEqual(b.state(), a.state());
  assert.equal(b.traceHash(), a.traceHash());
});

test("everything returned is plain JSON data", () => {
  const sim = script(new Simulation({ nodes: 5, seed: 1, snapshotEvery: 20 }));
  sim.crash(2);
  sim.runFor(3);
  const state = sim.state();
  assertPlain(state, "state()");
  assertPlain(sim.history(), "history()");
  assertPlain(sim.events(0), "events()");
  assertPlain(sim.clients(), "clients()");
  assertPlain(sim.check(), "check()");
  assertPlain(sim.stats(), "stats()");
  assertPlain(sim.step(), "step()");
  for (const packet of state.inFlight) assertPlain(sim.message(packet.id), `message(${packet.id})`);
  assert.equal(typeof sim.now(), "number");
  assert.equal(typeof sim.nextEventAt(), "number");
});

test("state() has the contract's shape", () => {
  const sim = new Simulation({ nodes: 5, seed: 3, snapshotEvery: 30 });
  sim.setWorkload({ clients: 3, intervalMs: 50, keys: 4 });
  sim.runFor(3000);
  const state = sim.state({ logTail: 5 });
  assert.equal(state.now, 3000);
  assert.deepEqual(Object.keys(state).sort(), ["inFlight", "leader", "links", "membership", "nodes", "now"]);
  assert.equal(state.leader, sim.leader(), "state().leader is the simulator's leader");
  assert.deepEqual(state.links, { cut: [], partition: null });
  for (const node of state.nodes) {
    for (const key of ["id", "up", "role", "term", "votedFor", "leader", "commitIndex", "appliedIndex",
      "snapshotIndex", "lastIndex", "durableIndex", "electionDeadline", "log", "kv", "progress"]) {
      assert.ok(key in node, `node lacks ${key}`);
    }
    assert.ok(["leader", "follower", "candidate", "precandidate", "learner"].includes(node.role));
    assert.ok(node.log.length <= 5);
    assert.ok(node.appliedIndex <= node.commitIndex && node.commitIndex <= node.lastIndex);
    assert.ok(node.snapshotIndex > 0, "snapshots every 30 entries");
    for (const entry of node.log) {
      assert.deepEqual(Object.keys(entry).sort(), ["command", "index", "term"]);
      assert.equal(typeof entry.command, "string");
    }
    if (node.role === "leader") {
      assert.equal(node.progress.length, 4);
      assert.equal(node.electionDeadline, null);
      for (const p of node.progress) {
        assert.deepEqual(Object.keys(p).sort(), ["id", "inflight", "matchIndex", "nextIndex", "state"]);
        assert.ok(["probe", "replicate", "snapshot"].includes(p.state));
      }
    } else {
      assert.equal(node.progress, null);
      assert.ok(node.electionDeadline > state.now - 1);
    }
  }
  const full = sim.state();
  assert.ok(full.nodes[0].log.length >= state.nodes[0].log.length);
  assert.ok(state.inFlight.length > 0);
  for (const m of state.inFlight) {
    for (const key of ["id", "from", "to", "kind", "sentAt", "deliverAt", "summary"]) assert.ok(key in m, `inFlight lacks ${key}`);
    assert.ok(m.deliverAt >= m.sentAt);
    for (const end of [m.from, m.to]) assert.ok(typeof end === "number" || /^c\d+$/.test(end), `endpoint ${end}`);
  }
  const kinds = new Set(state.inFlight.map((m) => m.kind));
  for (const kind of kinds) {
    assert.ok(["RequestVote", "PreVote", "RequestVoteResponse", "PreVoteResponse", "AppendEntries",
      "AppendEntriesResponse", "Heartbeat", "HeartbeatResponse", "InstallSnapshot", "InstallSnapshotResponse",
      "TimeoutNow", "ClientRequest", "ClientResponse"].includes(kind), kind);
  }
});

test("bad arguments throw Errors with clear messages and the instance keeps working", () => {
  for (const [config, re] of [
    [{ nodes: 0 }, /nodes must be 1 to 9/],
    [{ nodes: 10 }, /nodes must be 1 to 9, not 10/],
    [{ nodes: 2 ** 32 + 5 }, /^config\.nodes must be at most 4294967295, not 4294967301$/],
    [{ nodes: "5" }, /config\.nodes must be a non-negative integer, not "5"/],
    [{ seed: -1 }, /config\.seed must be a non-negative integer/],
    [{ nodez: 5 }, /unknown field "nodez"/],
    [{ dropRate: 2 }, /drop rate must be between 0 and 1/],
    [{ duplicateRate: -1 }, /duplicate rate must be between 0 and 1/],
    [{ latencyMs: [9, 1] }, /latencyMs must have min <= max/],
    [{ electionTimeoutMs: [300] }, /electionTimeoutMs must be \[min, max\]/],
    [{ preVote: "yes" }, /preVote must be true or false/],
    [42, /config must be an object/],
  ]) {
    assert.throws(() => new Simulation(config), (e) => e instanceof Error && re.test(e.message), JSON.stringify(config));
  }

  const sim = new Simulation({ nodes: 5, seed: 7 });
  sim.runFor(1000);
  const leader = sim.leader();
  assert.notEqual(leader, null);
  const cases = [
    [() => sim.crash(6), /^unknown node 6 \(node ids are 1 to 5\)$/],
    [() => sim.crash(0), /unknown node 0/],
    [() => sim.crash("2"), /node id must be a non-negative integer, not "2"/],
    [() => sim.crash(2.5), /not 2\.5/],
    [() => sim.crash(), /not undefined/],
    [() => sim.crash(null), /not null/],
    [() => sim.crash({}), /not an object/],
    [() => sim.restart(1), /node 1 is already up/],
    [() => sim.partition([[1, 2], [2, 3]]), /node 2 is in two groups/],
    [() => sim.partition([[1, 8]]), /unknown node 8/],
    [() => sim.partition([1, 2]), /partition group 0 must be an array/],
    [() => sim.partition("1 2 | 3"), /partition expects an array of arrays of node ids/],
    [() => sim.partition([["a"]]), /node id in partition group 0 must be a non-negative integer/],
    [() => sim.cutLink(1, 9), /unknown node 9/],
    [() => sim.restoreLink("x", 1), /from must be a non-negative integer/],
    [() => sim.setDropRate(1.01), /drop rate must be between 0 and 1, not 1.01/],
    [() => sim.setDropRate(NaN), /drop rate must be a finite number/],
    [() => sim.setDuplicateRate(-0.5), /duplicate rate must be between 0 and 1/],
    [() => sim.setLatency(50, 10), /latency range 50\.\.10 is empty/],
    [() => sim.setLatency(-1, 10), /minimum latency must be a non-negative integer/],
    [() => sim.triggerElection(7), /unknown node 7/],
    [() => sim.transferLeadership(7), /unknown node 7/],
    [() => sim.snapshot("all"), /node id must be a non-negative integer/],
    [() => sim.dropMessage(-3), /message id must be a non-negative integer/],
    [() => sim.message("m1"), /message id must be a non-negative integer/],
    [() => sim.put("k"), /value must be a string, not undefined/],
    [() => sim.put(5, "v"), /key must be a string, not 5/],
    [() => sim.append("k", "v", 0), /client must be 1 to 100, not 0/],
    [() => sim.get("k", "c1"), /client must be a non-negative integer, not "c1"/],
    [() => sim.delete("k", 101), /client must be 1 to 100, not 101/],
    [() => sim.setWorkload({ clients: 2, readFraction: 2 }), /read fraction must be between 0 and 1/],
    [() => sim.setWorkload({ clients: 1000 }), /workload\.clients must be at most 100/],
    [() => sim.setWorkload({ clients: 2, keys: 0 }), /a workload needs at least one key/],
    [() => sim.setWorkload({ interval: 10 }), /unknown field "interval"/],
    [() => sim.setWorkload(3), /workload must be an object/],
    [() => sim.setWorkload({ clients: 1, intervalMs: 2n ** 63n }), /workload\.intervalMs must be at most 2\^53 - 1/],
    [() => sim.runFor(2n ** 60n), /ms must be at most 2\^53 - 1/],
    [() => sim.crash(2 ** 60), /node id must be at most 2\^53 - 1 as a number/],
    [() => sim.runFor(-5), /ms must be a non-negative number of milliseconds, not -5/],
    [() => sim.runFor("10"), /ms must be a non-negative number of milliseconds/],
    [() => sim.runUntil(Infinity), /t must be a non-negative number of milliseconds/],
    [() => sim.state({ logtail: 3 }), /unknown field "logtail"/],
    [() => sim.state({ logTail: 1.5 }), /logTail must be a non-negative integer/],
    [() => sim.events(-1), /sinceSeq must be a non-negative integer/],
  ];
  const before = sim.traceHash();
  for (const [call, re] of cases) {
    assert.throws(call, (e) => e instanceof Error && re.test(e.message), `${call}`);
  }
  assert.equal(sim.traceHash(), before, "refused calls change nothing");
  // Still alive and well.
  assert.equal(sim.leader(), leader);
  sim.crash(leader);
  assert.throws(() => sim.crash(leader), { message: `node ${leader} is down` });
  assert.throws(() => sim.triggerElection(leader), { message: `node ${leader} is down` });
  assert.ok(waitForLeader(sim, 2000) !== null);
  const op = sim.put("k", "v");
  sim.runFor(1000);
  assert.equal(sim.history()[op - 1].status, "ok");
  assert.equal(sim.check().ok, true);
});

test("node ids past 2^32 are unknown nodes, not node 1 (usize is 32 bits in wasm)", () => {
  const sim = new Simulation({ nodes: 5, seed: 7 });
  sim.runFor(1000);
  const leader = sim.leader();
  assert.notEqual(leader, null);
  const before = sim.traceHash();
  const id = 2 ** 32 + 1;
  for (const call of [
    () => sim.crash(id), () => sim.crash(BigInt(id)), () => sim.triggerElection(id), () => sim.snapshot(id),
    () => sim.transferLeadership(id), () => sim.cutLink(id, 2), () => sim.restoreLink(2, id),
    () => sim.partition([[1, 2], [3, id]]), () => sim.addLearner(id), () => sim.promote(id), () => sim.removeMember(id),
  ]) {
    assert.throws(call, { message: `unknown node ${id} (node ids are 1 to 5)` }, `${call}`);
  }
  assert.equal(sim.traceHash(), before, "refused calls change nothing");
  assert.ok(sim.state().nodes.every((n) => n.up), "node 1 is still up");
  assert.deepEqual(sim.state().links, { cut: [], partition: null });
  assert.deepEqual(sim.state().membership, { voters: [1, 2, 3, 4, 5], learners: [] });
});

test("a latency near 2^53 is refused: packets would be due past what state() can render", () => {
  const huge = 2 ** 53 - 1;
  assert.throws(() => new Simulation({ latencyMs: [0, huge] }), { message: `config.latencyMs must be at most 1000000000 ms, not ${huge}` });
  const sim = new Simulation({ seed: 7 });
  sim.runFor(1000);
  const before = sim.traceHash();
  assert.throws(() => sim.setLatency(huge, huge), { message: `maximum latency must be at most 1000000000 ms, not ${huge}` });
  assert.equal(sim.traceHash(), before, "a refused call changes nothing");
  sim.setLatency(1e9, 1e9); // the longest allowed still renders
  sim.put("k", "v");
  sim.runFor(100);
  assert.ok(sim.state().inFlight.length > 0);
});

test("numbers: fractions of a millisecond are dropped, BigInt ids are accepted", () => {
  const sim = new Simulation({ seed: 4 });
  sim.runFor(10.9);
  assert.equal(sim.now(), 10);
  sim.runUntil(20.5);
  assert.equal(sim.now(), 20);
  sim.runUntil(5);
  assert.equal(sim.now(), 20, "runUntil never goes back");
  sim.runFor(1000n);
  sim.crash(2n);
  assert.equal(sim.state().nodes[1].up, false);
  assert.equal(sim.events(0n).length > 0, true);
});

test("runFor and runUntil cover at most 100,000,000 ms per call; more, or past 2^53 - 1, is refused, not clamped", () => {
  const sim = new Simulation({ seed: 3 });
  sim.runFor(1000);
  const before = sim.traceHash();
  const perCall = (v) => new RegExp(`^ms must be at most 100000000 ms per call \\(call again to run longer\\), not ${v}$`);
  const after = (v) => new RegExp(`^t must be at most 100000000 ms after now\\(\\) \\(1000\\) per call \\(call again to run longer\\), not ${v}$`);
  const cases = [
    [() => sim.runFor(100_000_001), perCall("100000001")],
    [() => sim.runFor(100_000_001n), perCall("100000001n")],
    [() => sim.runFor(1e12), perCall("1000000000000")],
    [() => sim.runFor(2 ** 53), /^ms must be at most 2\^53 - 1, not 9007199254740992$/],
    [() => sim.runFor(1e300), /^ms must be at most 2\^53 - 1, not 1e\+300$/],
    [() => sim.runFor(2n ** 53n), /^ms must be at most 2\^53 - 1, not 9007199254740992n$/],
    [() => sim.runUntil(1000 + 100_000_001), after("100001001")],
    [() => sim.runUntil(100_001_001n), after("100001001n")],
    [() => sim.runUntil(1e12), after("1000000000000")],
    [() => sim.runUntil(2 ** 53), /^t must be at most 2\^53 - 1, not 9007199254740992$/],
    [() => sim.runUntil(2n ** 64n), /^t must be a non-negative integer of at most 64 bits, not 18446744073709551616n$/],
  ];
  for (const [call, re] of cases) assert.throws(call, (e) => e instanceof Error && re.test(e.message), `${call}`);
  assert.equal(sim.now(), 1000, "refused calls change nothing");
  assert.equal(sim.traceHash(), before, "refused calls change nothing");
  // The bound itself is allowed, as a number or a BigInt (on a one-node
  // cluster, whose day passes in about a second); an earlier t still does nothing.
  const alone = new Simulation({ nodes: 1, seed: 3 });
  alone.runFor(1000);
  alone.runUntil(1000 + 100_000_000);
  assert.equal(alone.now(), 100_001_000);
  alone.runFor(100_000_000n);
  assert.equal(alone.now(), 200_001_000);
  assert.equal(alone.runUntil(5), 0);
  assert.equal(alone.now(), 200_001_000);
  assert.equal(alone.check().ok, true);
  sim.runFor(10_000);
  assert.equal(sim.check().ok, true);
});

test("free() releases an instance", () => {
  const sim = new Simulation({ seed: 1 });
  sim.runFor(100);
  sim.free();
  assert.throws(() => sim.now());
});

test("random calls with random arguments throw Errors, never trap", () => {
  let state = 12345;
  const random = () => { state = (state * 1103515245 + 12345) % 2147483648; return state / 2147483648; };
  const pick = (xs) => xs[Math.floor(random() * xs.length)];
  const values = [0, 1, 2, 3, 5, 9, 10, -1, 1.5, NaN, Infinity, 2 ** 53 - 1, 2 ** 60, "1", "x", null, undefined,
    {}, [], [1], [[1, 2]], true, 0.5, 2n, 2n ** 64n - 1n, 2n ** 64n];
  const fields = ["nodes", "seed", "electionTimeoutMs", "heartbeatMs", "latencyMs", "dropRate", "duplicateRate",
    "snapshotEvery", "preVote", "checkQuorum", "diskLatencyMs", "leaseReads", "followerReads", "maxEntriesPerMessage",
    "snapshotChunkBytes", "clientTimeoutMs", "clientGiveUpMs", "checkSafety", "traceCapacity"];
  const methods = ["runFor", "crash", "restart", "partition", "heal", "cutLink", "restoreLink", "setDropRate",
    "setDuplicateRate", "setLatency", "triggerElection", "transferLeadership", "snapshot", "dropMessage", "message",
    "put", "append", "get", "delete", "setWorkload", "clients", "history", "state", "check", "step", "events",
    "nextEventAt", "traceHash"];
  let calls = 0;
  let refused = 0;
  const attempt = (what, call) => {
    calls++;
    try {
      return call();
    } catch (e) {
      assert.ok(e instanceof Error && !(e instanceof WebAssembly.RuntimeError), `${what} trapped: ${e}`);
      assert.ok(e.message.length > 0, `${what} threw an Error without a message`);
      refused++;
      return undefined;
    }
  };
  for (let round = 0; round < 150; round++) {
    const config = {};
    for (const field of fields) {
      if (random() < 0.06) {
        config[field] = field.endsWith("Ms") && random() < 0.5 ? [pick([0, 1, 5, 100, 300]), pick([0, 1, 300, 2 ** 40])] : pick(values);
      }
    }
    const sim = attempt(`new Simulation(${JSON.stringify(config, (_, v) => (typeof v === "bigint" ? `${v}n` : v))})`, () => new Simulation(config));
    if (!sim) continue;
    for (let i = 0; i < 40; i++) {
      const method = pick(methods);
      let args;
      switch (method) {
        case "runFor": args = [pick([0, 1, 10, 100, 500, 1.5, -1, "x"])]; break;
        case "partition": args = [pick([[[1, 2], [3]], [[1], [2], [3], [4], [5]], [], [[]], [[1, 1]], "x", [[9]], [[1, 2, 3, 4, 5, 6, 7, 8, 9]]])]; break;
        case "setWorkload": args = [pick([{ clients: pick(values) }, { clients: 3, intervalMs: pick(values) }, { clients: 2, keys: pick(values), readFraction: pick(values) }, { clients: 0 }, pick(values)])]; break;
        case "setLatency": args = [pick([0, 1, 5, 100, 2 ** 40, -1]), pick([0, 1, 5, 100, 2 ** 40, "x"])]; break;
        case "put": case "append": args = [pick(["k", "", "x".repeat(5000), 1]), pick(["v", "", "y".repeat(100), null]), pick([undefined, 1, 2, 50, 0, 101])]; break;
        case "get": case "delete": args = [pick(["k", "", 1]), pick([undefined, 1, 3, 0])]; break;
        case "state": args = [pick([undefined, { logTail: pick(values) }, {}])]; break;
        case "check": args = [pick([undefined, { maxSteps: pick([0, 1, 100]) }])]; break;
        default: args = [pick(values), pick(values)];
      }
      attempt(`${method}(${args.map(String).join(", ")})`, () => sim[method](...args));
    }
    attempt("state()", () => sim.state());
    sim.free();
  }
  assert.ok(calls > 2000 && refused > 0 && refused < calls, `${calls} calls, ${refused} refused`);
});
