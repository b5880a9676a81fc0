// The guided tour "Reads at a follower" (see scenarios.js for how a tour is written).

import { tourConfig, nodeName, NodeName, missedNote, otherNodes, waitForLeader, waitForOp, putEverywhere } from "../tour-kit.js";

/** Client `client` reads `key` until one of its reads goes to `target` (each read picks a node at random); that read's op id, or null. */
function readAt(ctx, facts, key, client, target, tries = 12) {
  for (let i = 0; i < tries; i++) {
    const op = ctx.act("get", key, client);
    const sent = (state) => state.inFlight.find((m) => m.from === `c${client}` && m.kind === "ClientRequest");
    ctx.runUntil((state) => sent(state) !== undefined, 50);
    if (sent(ctx.state())?.to === target) return op;
    waitForOp(ctx, facts, op, 4000, "a read did not complete");
  }
  facts.miss ??= `no read of c${client} went to node ${target}`;
  return null;
}

export const followerReads = {
  id: "follower-reads",
  title: "Reads at a follower",
  blurb: "A follower answers a read only after asking the leader how far the log is committed, and applying that far.",
  config: tourConfig({ nodes: 5, seed: 23, followerReads: true }),
  steps: [
    {
      title: "x = 1",
      plan(ctx, facts) {
        facts.leader = waitForLeader(ctx, facts);
        facts.put1 = putEverywhere(ctx, facts, "x", "1", 1);
        ctx.runFor(10);
        facts.term = ctx.node(facts.leader)?.term;
        facts.follower = otherNodes(ctx.state(), facts.leader)[0];
      },
      text: (facts) => `<p>${NodeName(facts.leader)} leads term ${facts.term}; client c1 wrote <code>x=1</code> through it.</p>
        <p>This run has <b>follower reads</b> on (Settings → Follower reads): writes still go to the leader, but each read goes to a node picked at random, followers included, so reads are spread over the whole cluster. A follower's store may be behind the leader's, though: how can it answer without ever returning stale data?</p>`,
      watch: () => `Every node's store has x=1 (click one to see).`,
      expect: (facts, end) => [["x=1 is in every store", end.state.nodes.every((node) => node.kv.x === "1")], [`node ${facts.leader} leads term ${facts.term}`, end.leader() === facts.leader]],
    },
    {
      title: "A read at a follower",
      plan(ctx, facts) {
        facts.read1 = readAt(ctx, facts, "x", 2, facts.follower);
        facts.askedLeader = ctx.stepUntil((state) => state.inFlight.some((m) => m.kind === "ReadIndex" && m.from === facts.follower && m.to === facts.leader), 5000);
        if (!facts.askedLeader) facts.miss ??= `node ${facts.follower} did not ask the leader for a read index`;
        const op = waitForOp(ctx, facts, facts.read1, 2000, "the read did not complete");
        facts.output1 = op?.output;
        ctx.runFor(20);
      },
      text: (facts) => `<p>Client c2's read of <code>x</code> went to ${nodeName(facts.follower)}, a follower. It does not answer from its store at once. It sends the leader a <b>ReadIndex</b> request (drawn in green): "how far is the log committed?". ${NodeName(facts.leader)} notes its commit index, confirms with a round of heartbeats that a majority still follows it (so no newer leader can have committed more), and sends the index back.</p>
        <p>${NodeName(facts.follower)} then waits until it has <b>applied</b> the log up to that index, and answers from its own store: <code>${facts.output1 ?? "nil"}</code>. Everything committed before the read began is in that prefix, so the answer is as fresh as the leader's would be, and the leader did not have to read or send the value.</p>${missedNote(facts)}`,
      watch: (facts) => `A green ReadIndex message from ${nodeName(facts.follower)} to ${nodeName(facts.leader)} and its reply, then the get bar closing. Click ${nodeName(facts.follower)}: "follower reads served".`,
      expect: (facts, end) => [
        ["the read returned 1", end.op(facts.read1)?.status === "ok" && end.op(facts.read1).output === "1"],
        [`node ${facts.follower} asked node ${facts.leader} for a read index`, facts.askedLeader === true],
        [`node ${facts.follower} served a follower read`, end.node(facts.follower).followerReadsServed >= 1],
        [`node ${facts.leader} served none that way`, end.node(facts.leader).followerReadsServed === 0],
      ],
    },
    {
      title: "A follower cut off",
      plan(ctx, facts) {
        ctx.act("partition", [[facts.follower], otherNodes(ctx.state(), facts.follower)]);
        facts.put2 = ctx.act("put", "x", "2", 1);
        waitForOp(ctx, facts, facts.put2, 2000, "x=2 did not complete");
        facts.read2 = readAt(ctx, facts, "x", 3, facts.follower);
        ctx.runFor(200);
      },
      text: (facts) => `<p>A partition cuts ${nodeName(facts.follower)} off from everyone. The leader and the three others still make a majority: client c1 writes <code>x=2</code>, which commits and is acknowledged. ${NodeName(facts.follower)} never receives it: its store still says <code>x=1</code>.</p>
        <p>Now client c3's read goes to ${nodeName(facts.follower)}. Answering from its store would return <code>1</code> after <code>x=2</code> was acknowledged: a <b>stale read</b>. But it cannot get a read index, since its ReadIndex request never reaches the leader, so it answers nothing. The read waits.</p>${missedNote(facts)}`,
      watch: () => `c1's put completed in the History; c3's get still growing.`,
      expect: (facts, end) => [
        ["x=2 completed", end.op(facts.put2)?.status === "ok"],
        [`node ${facts.follower}'s store still has x=1`, end.node(facts.follower).kv.x === "1"],
        ["the read is pending", end.op(facts.read2)?.status === "pending"],
      ],
    },
    {
      title: "The read completes elsewhere — with the new value",
      plan(ctx, facts) {
        const op = waitForOp(ctx, facts, facts.read2, 6000, "the read did not complete");
        facts.output2 = op?.output; facts.attempts = op?.attempts;
        ctx.runFor(40);
      },
      text: (facts) => `<p>Client c3 got no answer within 500 ms, gave up on that attempt and sent the read to another node. On attempt ${facts.attempts} a node that could reach the leader got a read index and answered <code>${facts.output2 ?? "nil"}</code>.</p>
        <p>Follower reads keep every guarantee of reads at the leader: a node answers only once the leader has confirmed, with a majority, how far the log is committed, and only from a store that has applied that far. The Correctness card checks the whole history for linearizability.</p>${missedNote(facts)}`,
      watch: () => `The get bar closing; hover it to see the value and the number of attempts.`,
      expect: (facts, end) => [
        ["the read returned 2", end.op(facts.read2)?.status === "ok" && end.op(facts.read2).output === "2"],
        ["after retrying", end.op(facts.read2).attempts > 1],
      ],
    },
    {
      title: "Heal",
      plan(ctx) { ctx.act("heal"); ctx.runFor(400); },
      text: (facts) => `<p>The partition heals; ${nodeName(facts.follower)} catches up from the leader, and can serve reads again.</p>`,
      watch: () => `All rows identical again.`,
      expect: (facts, end) => [
        [`node ${facts.follower} follows node ${facts.leader}`, end.node(facts.follower).role === "follower" && end.node(facts.follower).leader === facts.leader],
        ["every store has x=2", end.state.nodes.every((node) => node.kv.x === "2")],
      ],
    },
  ],
};
