// The cluster through the built package's JS API, in Node: crashes and
// what a crashed node shows, partitions, elections and transfers, clients
// and the workload, messages and events, the checkers, membership changes.
//
//   scripts/build-web.sh && node --test wasm/tests/js/

import { test } from "node:test";
import assert from "node:assert/strict";
import { Simulation, assertPlain, waitForLeader } from "./support.mjs";

test("a crashed node shows what its disk holds", () => {
  const sim = new Simulation({ nodes: 3, seed: 8 });
  const leader = waitForLeader(sim, 1000);
  sim.put("a", "1");
  sim.runFor(500);
  const follower = (leader % 3) + 1;
  const before = sim.state().nodes[follower - 1];
  sim.crash(follower);
  const after = sim.state().nodes[follower - 1];
  assert.equal(after.up, false);
  assert.equal(after.role, "follower");
  assert.equal(after.leader, null);
  assert.equal(after.electionDeadline, null);
  assert.equal(after.progress, null);
  assert.equal(after.term, before.term);
  assert.equal(after.votedFor, before.votedFor);
  assert.equal(after.commitIndex, after.snapshotIndex, "commit restarts at the snapshot");
  assert.equal(after.appliedIndex, after.snapshotIndex);
  assert.ok(after.lastIndex <= before.lastIndex);
  assert.deepEqual(after.log, before.log.filter((e) => e.index <= after.lastIndex));
  assert.deepEqual(after.kv, {}, "no snapshot yet: an empty state machine until it replays");
  sim.restart(follower);
  sim.runFor(500);
  assert.deepEqual(sim.state().nodes[follower - 1].kv, { a: "1" });
});

test("a crashed learner is shown as what it restarts as: a learner", () => {
  const sim = new Simulation({ nodes: 3, seed: 8 });
  waitForLeader(sim, 1000);
  sim.runFor(500); // the leader commits its first entry before it takes membership changes
  const id = sim.addNode();
  sim.addLearner(id);
  sim.runFor(1000);
  assert.equal(sim.state().nodes[id - 1].role, "learner");
  sim.crash(id);
  const down = sim.state().nodes[id - 1];
  assert.equal(down.up, false);
  assert.equal(down.role, "learner");
  sim.restart(id);
  assert.equal(sim.state().nodes[id - 1].role, "learner");
});

test("crash the leader, partition a minority, heal", () => {
  const sim = new Simulation({ nodes: 5, seed: 11 });
  const first = waitForLeader(sim, 1000);
  assert.notEqual(first, null, "a leader within 1 s");
  sim.crash(first);
  const second = waitForLeader(sim, 2000);
  assert.ok(second !== null && second !== first);
  sim.restart(first);
  sim.runFor(500);
  const leader = sim.leader();
  const buddy = (leader % 5) + 1;
  const majority = [1, 2, 3, 4, 5].filter((id) => id !== leader && id !== buddy);
  sim.partition([[leader, buddy], majority]);
  sim.runFor(2000);
  let state = sim.state();
  assert.deepEqual(state.links.partition, [[leader, buddy], majority]);
  const leading = state.nodes.filter((n) => n.role === "leader");
  assert.equal(leading.length, 1, "one leader, in the majority");
  assert.ok(majority.includes(leading[0].id));
  sim.cutLink(majority[0], majority[1]);
  assert.deepEqual(sim.state().links.cut, [[majority[0], majority[1]]]);
  sim.restoreLink(majority[0], majority[1]);
  assert.deepEqual(sim.state().links.cut, []);
  sim.heal();
  sim.put("after", "heal");
  sim.runFor(2000);
  state = sim.state();
  assert.deepEqual(state.links, { cut: [], partition: null });
  const terms = new Set(state.nodes.map((n) => n.term));
  assert.equal(terms.size, 1, "every node on the same term");
  assert.equal(state.nodes.filter((n) => n.role === "leader").length, 1);
  for (const node of state.nodes) {
    assert.equal(node.commitIndex, state.nodes[0].commitIndex);
    assert.deepEqual(node.kv, state.nodes[0].kv);
    assert.equal(node.kv.after, "heal");
  }
  assert.equal(sim.check().ok, true);
});

test("election and leadership transfer by hand", () => {
  const sim = new Simulation({ nodes: 5, seed: 21 });
  const leader = waitForLeader(sim, 1000);
  const target = (leader % 5) + 1;
  sim.transferLeadership(target);
  sim.runFor(500);
  assert.equal(sim.leader(), target);
  const other = (target % 5) + 1;
  sim.triggerElection(other);
  sim.runFor(1000);
  assert.notEqual(sim.leader(), null);
  const none = new Simulation({ nodes: 3, seed: 1 });
  assert.throws(() => none.transferLeadership(2), { message: "no leader right now" });
});

test("clients: put, append, get, delete; explicit client numbers open clients", () => {
  const sim = new Simulation({ nodes: 3, seed: 5 });
  waitForLeader(sim, 1000);
  const put = sim.put("x", "1");
  const append = sim.append("x", "2", 1);
  const get = sim.get("x", 1);
  const missing = sim.get("nope", 3);
  assert.deepEqual([put, append, get, missing], [1, 2, 3, 4]);
  assert.equal(sim.clients().length, 3);
  let h = sim.history();
  assert.equal(h[2].status, "pending");
  assert.equal(h[2].completedAt, null);
  sim.runFor(1000);
  h = sim.history();
  assert.deepEqual(h.map((o) => o.status), ["ok", "ok", "ok", "ok"]);
  assert.deepEqual(h.map((o) => o.kind), ["put", "append", "get", "get"]);
  assert.equal(h[2].output, "12");
  assert.equal(h[3].output, null);
  assert.equal(h[3].client, 3);
  for (const op of h) {
    for (const key of ["id", "client", "kind", "key", "value", "invokedAt", "completedAt", "output", "status", "attempts"]) {
      assert.ok(key in op, `history lacks ${key}`);
    }
    assert.ok(op.completedAt >= op.invokedAt);
    assert.ok(op.attempts >= 1);
  }
  assert.deepEqual(sim.history({ from: 3 }), h.slice(2));
  assert.deepEqual(sim.history({ from: 99 }), []);
  assert.deepEqual(sim.history({ from: 0 }), h);
  assert.throws(() => sim.history({ since: 2 }), /unknown field "since"/);
  const del = sim.delete("x");
  sim.runFor(500);
  assert.equal(sim.history()[del - 1].status, "ok");
  for (const node of sim.state().nodes) assert.deepEqual(node.kv, {});
  for (const c of sim.clients()) {
    assert.deepEqual(Object.keys(c).sort(), ["busy", "id", "leaderGuess", "seq", "session", "workload"]);
    assert.equal(c.busy, false);
  }
});

test("a steady workload starts and stops", () => {
  const sim = new Simulation({ nodes: 5, seed: 6 });
  sim.setWorkload({ clients: 3, intervalMs: 50, keys: 5, readFraction: 0.3 });
  sim.runFor(3000);
  const running = sim.history().length;
  assert.ok(running > 30, `${running} operations`);
  assert.deepEqual(sim.clients().map((c) => c.workload), [true, true, true]);
  sim.setWorkload({ clients: 0 });
  sim.runFor(2000);
  const stopped = sim.history().length;
  sim.runFor(2000);
  assert.equal(sim.history().length, stopped, "no new operations once stopped");
  assert.ok(sim.history().every((o) => o.status === "ok"));
  assert.equal(sim.check().ok, true);
});

test("followerReads: the workload's reads are answered at followers too, counted per node; without it none are", () => {
  const served = (followerReads) => {
    const sim = new Simulation({ nodes: 3, seed: 6, followerReads });
    sim.setWorkload({ clients: 3, intervalMs: 50, keys: 5, readFraction: 0.5 });
    sim.runFor(4000);
    sim.setWorkload({ clients: 0 });
    sim.runFor(1000);
    const gets = sim.history().filter((o) => o.kind === "get" && o.status === "ok").length;
    assert.ok(gets > 20, `${gets} reads`);
    assert.equal(sim.check().ok, true);
    const state = sim.state();
    for (const node of state.nodes) {
      assert.equal(typeof node.followerReadsServed, "number");
      if (node.role === "leader") assert.equal(node.followerReadsServed, 0, "a leader's reads are not follower reads");
    }
    return { sim, total: state.nodes.reduce((sum, n) => sum + n.followerReadsServed, 0) };
  };
  const on = served(true);
  assert.ok(on.total > 5, `followers served ${on.total} reads`);
  // The follower asks its leader for a read index: the event log shows it.
  assert.ok(on.sim.events(0).some((e) => /follower read/.test(e.text)), "a follower read in the events");
  assert.equal(served(false).total, 0);
  // A crashed node starts counting again.
  const follower = on.sim.state().nodes.find((n) => n.role === "follower" && n.followerReadsServed > 0);
  on.sim.crash(follower.id);
  assert.equal(on.sim.state().nodes[follower.id - 1].followerReadsServed, 0);
  assert.throws(() => new Simulation({ followerReads: "yes" }), (e) => e instanceof Error && /followerReads/.test(e.message));
});

test("messages can be inspected and dropped", () => {
  const sim = new Simulation({ nodes: 3, seed: 2 });
  waitForLeader(sim, 1000);
  // A new client's first write opens its session in the same request.
  const opening = sim.put("k", "0", 1);
  const first = sim.state().inFlight.find((m) => m.kind === "ClientRequest");
  assert.equal(sim.message(first.id).request, "open");
  assert.equal(sim.message(first.id).op, "put");
  sim.runFor(500);
  assert.equal(sim.history()[opening - 1].status, "ok");
  const op = sim.put("k", "v", 1);
  const inFlight = sim.state().inFlight;
  assert.ok(inFlight.length > 0);
  for (const packet of inFlight) {
    const detail = sim.message(packet.id);
    for (const key of ["id", "from", "to", "kind", "sentAt", "deliverAt", "summary"]) assert.equal(detail[key], packet[key]);
  }
  const request = inFlight.find((m) => m.kind === "ClientRequest");
  assert.ok(request, "the put is on its way");
  const detail = sim.message(request.id);
  assert.equal(detail.op, "put");
  assert.equal(detail.key, "k");
  assert.equal(detail.value, "v");
  assert.equal(sim.dropMessage(request.id), true);
  assert.equal(sim.dropMessage(request.id), false);
  assert.equal(sim.message(request.id), null);
  assert.equal(sim.message(999999), null);
  sim.runFor(2000);
  assert.equal(sim.history()[op - 1].status, "ok", "the client retries after the drop");
  assert.ok(sim.history()[op - 1].attempts >= 2);
  const ae = (() => {
    for (let i = 0; i < 200; i++) {
      sim.put("k", String(i));
      sim.runFor(5);
      const m = sim.state().inFlight.find((p) => p.kind === "AppendEntries");
      if (m) return sim.message(m.id);
    }
    return null;
  })();
  assert.ok(ae, "an AppendEntries in flight");
  for (const key of ["term", "prevLogIndex", "prevLogTerm", "leaderCommit", "entries"]) assert.ok(key in ae, `AppendEntries lacks ${key}`);
});

test("events, step and nextEventAt", () => {
  const sim = new Simulation({ nodes: 3, seed: 12 });
  sim.runFor(1000);
  const events = sim.events(0);
  assert.ok(events.length > 10);
  for (const e of events) {
    assert.deepEqual(Object.keys(e).sort(), ["at", "kind", "node", "seq", "text"]);
    assert.ok(e.node === null || typeof e.node === "number" || /^c\d+$/.test(e.node));
  }
  for (let i = 1; i < events.length; i++) assert.equal(events[i].seq, events[i - 1].seq + 1);
  const last = events.at(-1).seq;
  assert.deepEqual(sim.events(last), []);
  assert.deepEqual(sim.events(last - 2).map((e) => e.seq), [last - 1, last]);
  const next = sim.nextEventAt();
  const info = sim.step();
  assert.deepEqual(Object.keys(info).sort(), ["at", "kind", "node", "text"]);
  assert.equal(info.at, next);
  assert.equal(sim.now(), next);
  // The trace keeps its last `traceCapacity` lines.
  const small = new Simulation({ seed: 12, traceCapacity: 50 });
  small.runFor(2000);
  assert.equal(small.events(0).length, 50);
  const none = new Simulation({ seed: 12, traceCapacity: 0 });
  none.runFor(1000);
  assert.deepEqual(none.events(0), []);
});

test("check() reports safety and linearizability", () => {
  const sim = new Simulation({ nodes: 5, seed: 13 });
  sim.setWorkload({ clients: 3, intervalMs: 50 });
  sim.runFor(2000);
  const check = sim.check();
  assert.deepEqual(Object.keys(check).sort(), ["linearizability", "ok", "safety", "violations"]);
  assert.equal(check.ok, true);
  assert.deepEqual(check.violations, []);
  assert.deepEqual(check.safety, []);
  assert.deepEqual(Object.keys(check.linearizability).sort(), ["decided", "key", "ok", "ops", "text"]);
  assert.equal(check.linearizability.ok, true);
  assert.equal(check.linearizability.decided, true);
  assert.equal(check.linearizability.key, null);
  assert.deepEqual(check.linearizability.ops, []);
  assert.match(check.linearizability.text, /^linearizable: \d+ completed operations on \d+ keys/);
  assert.deepEqual(sim.check(), check, "the same history, the same verdict");
  // A search that runs out of steps is undecided, not a violation.
  const undecided = sim.check({ maxSteps: 1 });
  assert.equal(undecided.ok, true);
  assert.equal(undecided.linearizability.decided, false);
  assert.match(undecided.linearizability.text, /^undecided: gave up after/);
  assert.throws(() => sim.check({ steps: 3 }), /unknown field "steps"/);
  sim.runFor(1000);
  assert.ok(sim.check().linearizability.text !== check.linearizability.text, "rechecked after new operations");
});

test("membership: a new machine joins as a learner, is promoted, and the leader removes itself", () => {
  const sim = new Simulation({ nodes: 3, seed: 5 });
  sim.runFor(1000);
  const leader = sim.state().nodes.find((n) => n.role === "leader").id;
  sim.put("k", "v");
  sim.runFor(200);
  assert.equal(sim.addNode(), 4);
  sim.addLearner(4);
  sim.runFor(500);
  let state = sim.state();
  assert.deepEqual(state.membership, { voters: [1, 2, 3], learners: [4] });
  const four = state.nodes.find((n) => n.id === 4);
  assert.equal(four.role, "learner");
  assert.equal(four.kv.k, "v", "the learner received the log");
  sim.promote(4);
  sim.runFor(500);
  assert.deepEqual(sim.state().membership, { voters: [1, 2, 3, 4], learners: [] });
  sim.removeMember(leader);
  sim.runFor(1000);
  state = sim.state();
  assert.ok(!state.membership.voters.includes(leader));
  const newLeader = state.nodes.find((n) => n.role === "leader");
  assert.ok(newLeader && newLeader.id !== leader, "another node leads after the removal");
  assert.throws(() => sim.addLearner(9), Error);
  assert.throws(() => sim.removeMember(99), Error);
  assert.equal(sim.check().ok, true);
  assertPlain(state, "state");
});
