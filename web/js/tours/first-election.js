// The guided tour "First election" (see scenarios.js for how a tour is written).

import { tourConfig, findNode, nodeName, NodeName, missedNote, votesFor, termAt, waitForLeader, waitForOp } from "../tour-kit.js";

export const firstElection = {
  id: "first-election",
  title: "First election",
  blurb: "How a cluster of followers chooses a leader, and how a write gets committed.",
  config: tourConfig({ nodes: 5, seed: 7 }),
  steps: [
    {
      title: "Everyone starts as a follower",
      plan(ctx) { ctx.runFor(40); },
      text: () => `<p>Five servers start up as <b>followers</b> in term 0. There is no leader yet, so nobody sends heartbeats.</p>
        <p>Each follower runs an <b>election timer</b> with a timeout drawn at random between 150 and 300 ms of virtual time. If it hears nothing from a leader before its timer runs out, it will try to become leader itself.</p>`,
      watch: () => `The grey arcs around the nodes: each one is a timer running down, each at its own pace.`,
      expect: (facts, end) => [
        ["every node is a follower in term 0", end.state.nodes.every((node) => node.up && node.role === "follower" && node.term === 0)],
        ["every node has an election timer", end.state.nodes.every((node) => node.electionDeadline !== null)],
      ],
    },
    {
      title: "A timer runs out: PreVote",
      plan(ctx, facts) {
        if (!ctx.runUntil((state) => state.nodes.some((node) => node.role === "precandidate" || node.role === "candidate"), 1000)) facts.miss = "no timer ran out";
        ctx.runFor(2);
        const state = ctx.state();
        facts.precandidate = state.nodes.find((node) => node.role === "precandidate" || node.role === "candidate")?.id ?? null;
      },
      text: (facts) => `<p>${NodeName(facts.precandidate)}'s timer ran out first, so it stops waiting for a leader.</p>
        <p>This cluster uses <b>PreVote</b> (Ongaro's dissertation, §9.6): before anything else, ${nodeName(facts.precandidate)} becomes a <b>pre-candidate</b> and asks everyone "would you vote for me in term 1?" <i>without</i> raising its own term, which is still 0. Only if a majority says yes will it hold a real election. That way a server that was merely cut off cannot force a higher term on a healthy cluster when it comes back.</p>${missedNote(facts)}`,
      watch: (facts) => `The PreVote requests (filled dots) leaving ${nodeName(facts.precandidate)}, and the answers (hollow dots) coming back.`,
      expect: (facts, end) => [
        [`node ${facts.precandidate} is a pre-candidate`, end.node(facts.precandidate)?.role === "precandidate"],
        ["nobody's term has changed", end.state.nodes.every((node) => node.term === 0)],
      ],
    },
    {
      title: "A real candidate",
      plan(ctx, facts) {
        if (!ctx.stepUntil((state) => state.nodes.some((node) => node.role === "candidate"), 5000)) facts.miss = "nobody became a candidate";
        const state = ctx.state();
        facts.candidate = state.nodes.find((node) => node.role === "candidate")?.id ?? null;
        facts.candidateTerm = findNode(state, facts.candidate)?.term;
        ctx.runFor(2);
      },
      text: (facts) => `<p>${facts.candidate === facts.precandidate ? `A majority answered yes, so ${nodeName(facts.precandidate)}` : `${NodeName(facts.candidate)}`} now campaigns for real: it becomes a <b>candidate</b>, increments its term to ${facts.candidateTerm}, votes for itself (the vote is written to disk before anything is sent) and sends <b>RequestVote</b> to every other server (§5.2).</p>${missedNote(facts)}`,
      watch: (facts) => `${NodeName(facts.candidate)} in amber, its RequestVote messages on their way.`,
      expect: (facts, end) => [
        [`node ${facts.candidate} is a candidate in term ${facts.candidateTerm}`, end.node(facts.candidate)?.role === "candidate" && end.node(facts.candidate)?.term === facts.candidateTerm],
        [`node ${facts.candidate} voted for itself`, end.node(facts.candidate)?.votedFor === facts.candidate],
      ],
    },
    {
      title: "The votes come back",
      plan(ctx, facts) { facts.leader = waitForLeader(ctx, facts); ctx.runFor(5); const state = ctx.state(); facts.term = findNode(state, facts.leader)?.term; facts.votes = votesFor(state, facts.leader, facts.term); },
      text: (facts) => `<p>Each server grants <b>at most one vote per term</b>, first come first served, and only to a candidate whose log is at least as up to date as its own (§5.4.1).</p>
        <p>With votes from a majority (${facts.votes} of 5, counting its own; 3 are enough), ${nodeName(facts.leader)} becomes <b>leader</b> for term ${facts.term}. Two majorities of the same cluster always share a server, and that server votes only once per term, so there can never be two leaders in the same term (<i>Election Safety</i>).</p>${missedNote(facts)}`,
      watch: (facts) => `${NodeName(facts.leader)} filled in green, without a timer: leaders do not time out. The "voted" line under each node says whom it voted for.`,
      expect: (facts, end) => [
        [`node ${facts.leader} is leader of term ${facts.term}`, end.leader() === facts.leader && end.node(facts.leader).term === facts.term],
        [`a majority voted for node ${facts.leader}`, votesFor(end.state, facts.leader, facts.term) >= 3],
      ],
    },
    {
      title: "Heartbeats hold the leadership",
      plan(ctx) { ctx.runFor(300); },
      text: (facts) => `<p>The new leader first appends an empty <b>no-op entry</b> of its own term at index 1 and sends it with <b>AppendEntries</b>; once a majority stores it, it is committed, and the leader knows which earlier entries are committed too (§5.4.2, §8).</p>
        <p>Then, every 50 ms, the leader sends a <b>heartbeat</b>. Every message from the current leader restarts the followers' election timers, so as long as the leader is alive and reachable, nobody campaigns.</p>`,
      watch: () => `The arcs refilling each time a heartbeat (grey dot) arrives, and in the LOGS panel the first entry, coloured by its term, drawn filled: committed on every node.`,
      expect: (facts, end) => [
        [`node ${facts.leader} is still the leader of term ${facts.term}`, end.leader() === facts.leader && end.state.nodes.every((node) => node.term === facts.term)],
        ["the no-op at index 1 is committed everywhere", end.state.nodes.every((node) => node.commitIndex >= 1 && termAt(node, 1) === facts.term && node.log[0]?.command === "noop")],
      ],
    },
    {
      title: "A client writes",
      plan(ctx, facts) {
        facts.put = ctx.act("put", "x", "1", 1);
        const op = waitForOp(ctx, facts, facts.put);
        facts.attempts = op?.attempts;
        ctx.runFor(60);
        const state = ctx.full();
        const leader = findNode(state, facts.leader);
        facts.putIndex = leader?.log.find((entry) => entry.command.startsWith("put x=1"))?.index;
        facts.entries = leader?.log.filter((entry) => entry.command !== "noop").length;
      },
      text: (facts) => `<p>Client c1 sends <code>put x=1</code>. Only the leader accepts writes: a follower that gets a request answers with the leader it knows, and the client tries there${facts.attempts > 1 ? ` (this request took ${facts.attempts} attempts)` : ""}.</p>
        <p>The leader appends <code>put x=1</code> at index ${facts.putIndex} (a dashed cell: not committed yet) and replicates it. A client's first write also opens its <b>session</b>: the index of that entry becomes the client's id, so that a retried request can be recognised later (a retry of this first write carries the same random number, which the session remembers). As soon as a <b>majority</b> stores it, the leader advances its <b>commit index</b> (the ▲ marker), applies the command to its key-value store and answers the client. The followers learn the new commit index from the next message and apply it too.</p>${missedNote(facts)}`,
      watch: () => `The History panel: the bar runs from the moment the client sent the request to the moment the answer arrived. Click a node to see x=1 in its key-value store.`,
      expect: (facts, end) => [
        ["the put completed", end.op(facts.put)?.status === "ok"],
        [`the put is one entry, committed at index ${facts.putIndex}`, facts.entries === 1 && end.node(facts.leader).commitIndex >= facts.putIndex],
        ["the leader's store has x=1", end.node(facts.leader).kv.x === "1"],
      ],
    },
  ],
};
