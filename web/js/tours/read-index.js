// The guided tour "ReadIndex under a partition" (see scenarios.js for how a tour is written).

import { tourConfig, nodeName, NodeName, missedNote, otherNodes, waitForLeader, waitForOp, putEverywhere } from "../tour-kit.js";

export const readIndex = {
  id: "read-index",
  title: "ReadIndex under a partition",
  blurb: "A read sent to a leader stuck in the minority does not complete — because it could be stale.",
  // as core/testdata/read_index.txt: without CheckQuorum the cut-off leader keeps believing it leads
  config: tourConfig({ nodes: 5, seed: 17, checkQuorum: false }),
  steps: [
    {
      title: "x = 1",
      plan(ctx, facts) {
        facts.oldLeader = waitForLeader(ctx, facts);
        facts.put1 = putEverywhere(ctx, facts, "x", "1", 1);
        ctx.runFor(10);
        facts.oldTerm = ctx.node(facts.oldLeader)?.term;
      },
      text: (facts) => `<p>${NodeName(facts.oldLeader)} leads term ${facts.oldTerm}; client c1 wrote <code>x=1</code> through it, so c1 now knows ${nodeName(facts.oldLeader)} as the leader.</p>
        <p>CheckQuorum is off in this run: a leader cut off from the majority keeps believing it leads.</p>`,
      watch: () => `Every node's store has x=1 (click one to see).`,
      expect: (facts, end) => [["x=1 is in every store", end.state.nodes.every((node) => node.kv.x === "1")], [`node ${facts.oldLeader} leads term ${facts.oldTerm}`, end.leader() === facts.oldLeader]],
    },
    {
      title: "Cut off",
      plan(ctx, facts) {
        const state = ctx.state();
        // a new client starts at node 1: keep node 1 on the majority side, so that it finds the new leader there
        facts.buddy = otherNodes(state, facts.oldLeader, 1)[0]; facts.majority = otherNodes(state, facts.oldLeader, facts.buddy);
        ctx.act("partition", [[facts.oldLeader, facts.buddy], facts.majority]);
        facts.newLeader = waitForLeader(ctx, facts, 3000, [facts.oldLeader]);
        facts.newTerm = ctx.node(facts.newLeader)?.term;
        ctx.runFor(20);
      },
      text: (facts) => `<p>A partition leaves ${nodeName(facts.oldLeader)} with only ${nodeName(facts.buddy)}. The other three stop hearing from it, and elect ${nodeName(facts.newLeader)} for term ${facts.newTerm}.</p>
        <p>${NodeName(facts.oldLeader)} hears nothing of this: it still believes it leads term ${facts.oldTerm}. There are two leaders, in different terms, and ${nodeName(facts.oldLeader)}'s store still says <code>x=1</code>.</p>${missedNote(facts)}`,
      watch: (facts) => `Two nodes drawn as leader; heartbeats crossing only the link between ${nodeName(facts.oldLeader)} and ${nodeName(facts.buddy)} on one side.`,
      expect: (facts, end) => [
        [`node ${facts.newLeader} leads term ${facts.newTerm}`, end.node(facts.newLeader).role === "leader" && end.node(facts.newLeader).term === facts.newTerm && facts.newTerm > facts.oldTerm],
        [`node ${facts.oldLeader} still leads term ${facts.oldTerm}`, end.node(facts.oldLeader).role === "leader" && end.node(facts.oldLeader).term === facts.oldTerm],
        ["node 1 is on the majority side", facts.oldLeader !== 1 && facts.buddy !== 1],
      ],
    },
    {
      title: "A read at the old leader; x = 2 at the new one",
      plan(ctx, facts) {
        facts.read = ctx.act("get", "x", 1);
        facts.put2 = ctx.act("put", "x", "2", 2);
        waitForOp(ctx, facts, facts.put2, 2000, "x=2 did not complete");
        ctx.runFor(30);
      },
      text: (facts) => `<p>Client c1 asks ${nodeName(facts.oldLeader)}, the leader it knows, for <code>x</code>. At the same moment a new client, c2, finds the new leader ${nodeName(facts.newLeader)} and writes <code>x=2</code> there; the write commits and is acknowledged.</p>
        <p>${NodeName(facts.oldLeader)} does not answer the read from its own store. With <b>ReadIndex</b> (dissertation §6.4) it records its commit index, then starts a round of heartbeats and waits until a <b>majority</b> has answered, which would prove that it was still the leader when the read arrived. Only ${nodeName(facts.buddy)} can answer: 2 of 5. The read waits.</p>
        <p>This is exactly why: its store says <code>x=1</code>, but <code>x=2</code> has been committed and acknowledged. Answering now would be a <b>stale read</b>: not linearizable, because the read would return after a write that completed before it, yet miss that write.</p>${missedNote(facts)}`,
      watch: () => `Two bars in the History: c2's put completed, c1's get still growing.`,
      expect: (facts, end) => [
        ["x=2 completed", end.op(facts.put2)?.status === "ok"],
        [`node ${facts.oldLeader} still leads term ${facts.oldTerm} with x=1 in its store`, end.node(facts.oldLeader).role === "leader" && end.node(facts.oldLeader).kv.x === "1"],
        ["the read is pending", end.op(facts.read)?.status === "pending"],
      ],
    },
    {
      title: "The read completes — with the new value",
      plan(ctx, facts) { const op = waitForOp(ctx, facts, facts.read, 6000, "the read did not complete"); facts.output = op?.output; facts.attempts = op?.attempts; ctx.runFor(40); },
      text: (facts) => `<p>Client c1 got no answer within 500 ms, so it gave up on that attempt and retried at another server; a server that knows the leader points the client to it. On attempt ${facts.attempts} it reached ${nodeName(facts.newLeader)}, which confirmed its own leadership with a majority and answered.</p>
        <p>The read returns <code>${facts.output ?? "nil"}</code>. ${NodeName(facts.oldLeader)} never answered it. The Correctness card checks the whole history for linearizability.</p>${missedNote(facts)}`,
      watch: () => `The get bar closing; hover it to see the value and the number of attempts.`,
      expect: (facts, end) => [
        ["the read returned 2", end.op(facts.read)?.status === "ok" && end.op(facts.read).output === "2"],
        ["after retrying", end.op(facts.read).attempts > 1],
      ],
    },
    {
      title: "Heal",
      plan(ctx) { ctx.act("heal"); ctx.runFor(400); },
      text: (facts) => `<p>The partition heals; ${nodeName(facts.oldLeader)} and ${nodeName(facts.buddy)} see term ${facts.newTerm}, adopt it and catch up. Reads were never served by a server that could not prove it was still the leader.</p>`,
      watch: () => `All rows identical again.`,
      expect: (facts, end) => [
        [`node ${facts.oldLeader} follows node ${facts.newLeader} in term ${facts.newTerm}`, end.node(facts.oldLeader).role === "follower" && end.node(facts.oldLeader).term === facts.newTerm],
        ["every store has x=2", end.state.nodes.every((node) => node.kv.x === "2")],
      ],
    },
  ],
};
