// The guided tour "Leader crash" (see scenarios.js for how a tour is written).

import { tourConfig, findNode, nodeName, NodeName, missedNote, votesFor, termAt, waitForLeader } from "../tour-kit.js";

export const leaderCrash = {
  id: "leader-crash",
  title: "Leader crash",
  blurb: "The leader dies under load; a follower takes over and clients retry.",
  config: tourConfig({ nodes: 5, seed: 3 }),
  steps: [
    {
      title: "A healthy cluster under load",
      plan(ctx, facts) {
        facts.oldLeader = waitForLeader(ctx, facts);
        ctx.act("setWorkload", { clients: 2, intervalMs: 150, keys: 3, readFraction: 0.3 });
        ctx.runFor(700);
        facts.oldTerm = ctx.node(facts.oldLeader)?.term;
      },
      text: (facts) => `<p>${NodeName(facts.oldLeader)} leads term ${facts.oldTerm}. Two clients send a steady stream of puts, appends and gets to it.</p>
        <p>Reads go through <b>ReadIndex</b>: the leader notes its commit index, confirms with a round of heartbeats that a majority still follows it, and answers once it has applied up to that index. So a read never returns stale data, and reads do not have to go through the log.</p>`,
      watch: () => `The History panel: each bar is one request, from sending to answer.`,
      expect: (facts, end) => [
        [`node ${facts.oldLeader} leads term ${facts.oldTerm}`, end.leader() === facts.oldLeader],
        ["client operations completed", end.history().filter((op) => op.status === "ok").length >= 3],
      ],
    },
    {
      title: "The leader crashes",
      plan(ctx, facts) {
        ctx.act("crash", facts.oldLeader);
        const state = ctx.full();
        facts.commitIndex = Math.max(...state.nodes.map((node) => node.commitIndex));
        facts.crashedLog = findNode(state, facts.oldLeader).log.map((entry) => [entry.index, entry.term]);
        ctx.runFor(60);
      },
      text: (facts) => `<p>${NodeName(facts.oldLeader)} crashes. Everything it had only in memory is gone; its current term, its vote and its log were written to disk, and survive (its row in the LOGS panel is what its disk holds).</p>
        <p>Requests that were waiting for it stay pending: their bars in the History panel keep growing. No more heartbeats arrive, so the followers' election timers run down.</p>`,
      watch: () => `The timer arcs on the four survivors.`,
      expect: (facts, end) => [
        [`node ${facts.oldLeader} is down`, !end.node(facts.oldLeader).up],
        ["there is no leader yet", end.leader() === null],
      ],
    },
    {
      title: "A new leader",
      plan(ctx, facts) {
        facts.newLeader = waitForLeader(ctx, facts, 3000, [facts.oldLeader]);
        const state = ctx.state();
        facts.newTerm = findNode(state, facts.newLeader)?.term;
        facts.votes = votesFor(state, facts.newLeader, facts.newTerm);
        ctx.runFor(30);
      },
      text: (facts) => `<p>The first survivor whose timer ran out campaigned, and ${nodeName(facts.newLeader)} won term ${facts.newTerm} with ${facts.votes} votes. A majority is counted over the <i>whole</i> cluster: 3 of 5, the crashed node included.</p>
        <p>Only a server whose log is at least as up to date as a majority's can win (§5.4.1). Every committed entry is stored on a majority, and any two majorities overlap, so the new leader already has every committed entry (<i>Leader Completeness</i>): here, everything up to index ${facts.commitIndex}.</p>${missedNote(facts)}`,
      watch: (facts) => `Compare ${nodeName(facts.newLeader)}'s row in the LOGS panel with the others: nothing committed is missing.`,
      expect: (facts, end) => [
        [`node ${facts.newLeader} leads term ${facts.newTerm}, after term ${facts.oldTerm}`, end.leader() === facts.newLeader && facts.newTerm > facts.oldTerm],
        [`a majority voted for node ${facts.newLeader}`, facts.votes >= 3],
        [`node ${facts.newLeader} has every entry committed before the crash`, facts.crashedLog.filter(([index]) => index <= facts.commitIndex).every(([index, term]) => termAt(end.node(facts.newLeader), index) === term || index <= end.node(facts.newLeader).snapshotIndex)],
      ],
    },
    {
      title: "Clients find the new leader",
      plan(ctx) { ctx.runFor(900); },
      text: () => `<p>A client that gets no answer within 500 ms gives up on that attempt and retries at another server; a follower answers with a hint naming the leader it knows.</p>
        <p>A retried command might already have been committed before the crash. Each client numbers its requests within its session, and the state machine remembers the last number it applied per session, so a retried <code>append</code> is applied at most once.</p>`,
      watch: () => `Pending bars finishing, some after more than one attempt (hover a bar to see).`,
      expect: (facts, end) => [
        ["an operation completed after a retry", end.history().some((op) => op.status === "ok" && op.attempts > 1 && op.completedAt > end.state.now - 1000)],
        ["operations complete again", end.history().some((op) => op.status === "ok" && op.invokedAt > end.state.now - 600)],
      ],
    },
    {
      title: "The old leader comes back",
      plan(ctx, facts) { ctx.act("restart", facts.oldLeader); ctx.runFor(700); },
      text: (facts) => `<p>${NodeName(facts.oldLeader)} restarts from its disk, as a follower of its old term ${facts.oldTerm}. The first message from ${nodeName(facts.newLeader)} carries the higher term ${facts.newTerm}, which ${nodeName(facts.oldLeader)} adopts at once (§5.1).</p>
        <p>The leader finds where ${nodeName(facts.oldLeader)}'s log ends and sends what is missing; an uncommitted entry from the old term, if there was one, would be overwritten.</p>`,
      watch: (facts) => `${NodeName(facts.oldLeader)}'s row catching up, and the leader's view of it (right of the row): "replicate", with its match index.`,
      expect: (facts, end) => [
        [`node ${facts.oldLeader} is a follower of node ${facts.newLeader} in term ${facts.newTerm}`, end.node(facts.oldLeader).up && end.node(facts.oldLeader).role === "follower" && end.node(facts.oldLeader).term === facts.newTerm && end.node(facts.oldLeader).leader === facts.newLeader],
        [`node ${facts.oldLeader} caught up`, end.node(facts.oldLeader).commitIndex >= end.node(facts.newLeader).commitIndex - 3],
      ],
    },
  ],
};
