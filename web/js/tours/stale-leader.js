// The guided tour "Partitioned old leader rejoins" (see scenarios.js for how a tour is written).

import { tourConfig, findNode, nodeName, NodeName, missedNote, otherNodes, sameLog, termAt, waitForLeader, waitForOp } from "../tour-kit.js";

export const staleLeader = {
  id: "stale-leader",
  title: "Partitioned old leader rejoins",
  blurb: "A leader is cut off, the majority moves on, and the stale leader learns it is out of date.",
  config: tourConfig({ nodes: 5, seed: 21, checkQuorum: false }),
  steps: [
    {
      title: "A leader and a write",
      plan(ctx, facts) { facts.oldLeader = waitForLeader(ctx, facts); facts.put1 = ctx.act("put", "x", "1", 1); waitForOp(ctx, facts, facts.put1); ctx.runFor(40); facts.oldTerm = ctx.node(facts.oldLeader)?.term; },
      text: (facts) => `<p>${NodeName(facts.oldLeader)} is leader of term ${facts.oldTerm}, and client c1 has written <code>x=1</code> through it.</p>
        <p>CheckQuorum is switched off in this run (as in the Raft paper): a leader that stops hearing from its followers does not step down by itself.</p>`,
      watch: () => `All logs agree and are committed.`,
      expect: (facts, end) => [
        [`node ${facts.oldLeader} leads term ${facts.oldTerm}`, end.leader() === facts.oldLeader],
        ["x=1 is committed", end.op(facts.put1)?.status === "ok"],
      ],
    },
    {
      title: "The leader is cut off",
      plan(ctx, facts) {
        const state = ctx.state();
        facts.majority = otherNodes(state, facts.oldLeader);
        ctx.act("partition", [[facts.oldLeader], facts.majority]);
        facts.put2 = ctx.act("put", "x", "2", 1);
        ctx.runFor(80);
        facts.uncommitted = ctx.node(facts.oldLeader).lastIndex;
      },
      text: (facts) => `<p>A network partition separates ${nodeName(facts.oldLeader)} from the other four. Its heartbeats no longer arrive, but nothing tells ${nodeName(facts.oldLeader)} so: it still believes it is the leader of term ${facts.oldTerm}.</p>
        <p>Client c1 now writes <code>x=2</code> and sends it to ${nodeName(facts.oldLeader)}, the leader it knows. ${NodeName(facts.oldLeader)} appends it at index ${facts.uncommitted} and tries to replicate it, but no follower answers: the entry cannot be committed, and the client waits.</p>`,
      watch: (facts) => `The dotted links between the two groups carry nothing. ${NodeName(facts.oldLeader)}'s new entry at index ${facts.uncommitted} stays dashed (uncommitted).`,
      expect: (facts, end) => [
        [`node ${facts.oldLeader} still calls itself leader of term ${facts.oldTerm}`, end.node(facts.oldLeader).role === "leader" && end.node(facts.oldLeader).term === facts.oldTerm],
        [`node ${facts.oldLeader} holds an uncommitted entry at index ${facts.uncommitted}`, end.node(facts.oldLeader).lastIndex === facts.uncommitted && end.node(facts.oldLeader).commitIndex < facts.uncommitted],
        ["the others do not have it", facts.majority.every((id) => end.node(id).lastIndex < facts.uncommitted)],
        ["the write x=2 is pending", end.op(facts.put2)?.status === "pending"],
      ],
    },
    {
      title: "The majority moves on",
      plan(ctx, facts) {
        facts.newLeader = waitForLeader(ctx, facts, 3000, [facts.oldLeader]);
        facts.newTerm = ctx.node(facts.newLeader)?.term;
        const op = waitForOp(ctx, facts, facts.put2, 4000, "the write x=2 did not complete");
        ctx.runFor(50);
        facts.attempts = op?.attempts;
        const state = ctx.full();
        facts.committedAt = findNode(state, facts.newLeader).log.filter((entry) => entry.command.startsWith("put x=2")).map((entry) => entry.index).pop();
      },
      text: (facts) => `<p>The four connected servers stop hearing from ${nodeName(facts.oldLeader)}, time out and elect ${nodeName(facts.newLeader)} for term ${facts.newTerm}. They are a majority, so the cluster stays available.</p>
        <p>Client c1 got no answer from ${nodeName(facts.oldLeader)} within 500 ms, so it retried at another server and found ${nodeName(facts.newLeader)}${facts.attempts ? ` (${facts.attempts} attempts in all)` : ""}. <code>x=2</code> is committed there, at index ${facts.committedAt}.</p>
        <p>There are now <b>two leaders</b>, in different terms: ${nodeName(facts.oldLeader)} in term ${facts.oldTerm} and ${nodeName(facts.newLeader)} in term ${facts.newTerm}. That is allowed, since Election Safety is about one term, and harmless: only the leader of term ${facts.newTerm} can reach a majority, so only it can commit.</p>${missedNote(facts)}`,
      watch: (facts) => `Two different terms in the LOGS panel, and two nodes drawn as leader.`,
      expect: (facts, end) => [
        [`node ${facts.newLeader} leads term ${facts.newTerm}`, end.node(facts.newLeader).role === "leader" && end.node(facts.newLeader).term === facts.newTerm && facts.newTerm > facts.oldTerm],
        [`node ${facts.oldLeader} still leads term ${facts.oldTerm}`, end.node(facts.oldLeader).role === "leader" && end.node(facts.oldLeader).term === facts.oldTerm],
        ["x=2 completed after a retry", end.op(facts.put2)?.status === "ok" && end.op(facts.put2).attempts > 1],
        [`x=2 is committed on node ${facts.newLeader}`, end.node(facts.newLeader).commitIndex >= facts.committedAt],
      ],
    },
    {
      title: "Healing: the stale term loses",
      plan(ctx, facts) { ctx.act("heal"); ctx.runFor(500); },
      text: (facts) => `<p>The partition heals. The next heartbeat from ${nodeName(facts.newLeader)} carries term ${facts.newTerm}; a server that sees a higher term adopts it and becomes a follower at once (§5.1), so ${nodeName(facts.oldLeader)} steps down.</p>
        <p>Its log is then repaired by the leader: its uncommitted entry at index ${facts.uncommitted} (term ${facts.oldTerm}) conflicts with the leader's entry there, so it is deleted and replaced by the leader's entries (§5.3). Nothing a client was told had succeeded is lost: c1's <code>x=2</code> was acknowledged only once it was committed in term ${facts.newTerm}.</p>`,
      watch: (facts) => `${NodeName(facts.oldLeader)}'s row: the dashed cell at index ${facts.uncommitted} is gone and its log matches the leader's.`,
      expect: (facts, end) => [
        [`node ${facts.oldLeader} is a follower in term ${facts.newTerm}`, end.node(facts.oldLeader).role === "follower" && end.node(facts.oldLeader).term === facts.newTerm],
        [`node ${facts.oldLeader}'s entry at index ${facts.uncommitted} was replaced by the leader's`, termAt(end.node(facts.oldLeader), facts.uncommitted) === termAt(end.node(facts.newLeader), facts.uncommitted) && termAt(end.node(facts.oldLeader), facts.uncommitted) !== facts.oldTerm],
        [`node ${facts.oldLeader}'s log matches the leader's`, sameLog(end.node(facts.oldLeader), end.node(facts.newLeader), 1, end.node(facts.newLeader).commitIndex)],
        ["every store has x=2", end.state.nodes.every((node) => node.kv.x === "2")],
      ],
    },
  ],
};
