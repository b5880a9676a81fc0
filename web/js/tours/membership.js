// The guided tour "Adding and removing a server" (see scenarios.js for how a tour is written).

import { tourConfig, findNode, nodeName, NodeName, missedNote, waitForLeader, waitForOp, putEverywhere } from "../tour-kit.js";

export const membership = {
  id: "membership",
  title: "Adding and removing a server",
  blurb: "A new server joins as a learner, catches up, becomes a voter; then the leader removes itself and hands over.",
  // as core/testdata/membership.txt: one change at a time, learners first
  config: tourConfig({ nodes: 3, seed: 5 }),
  steps: [
    {
      title: "Three voters",
      plan(ctx, facts) {
        facts.oldLeader = waitForLeader(ctx, facts);
        facts.put1 = putEverywhere(ctx, facts, "x", "1", 1);
        facts.term = ctx.node(facts.oldLeader)?.term;
      },
      text: (facts) => `<p>Three servers, all <b>voters</b>: ${nodeName(facts.oldLeader)} leads term ${facts.term}, and a write (<code>x=1</code>) commits once two of the three have it. The membership is itself an entry of the log: the Network card shows it under "Membership".</p>`,
      watch: () => `Membership: voters 1 2 3.`,
      expect: (facts, end) => [["three voters", end.state.membership.voters.length === 3], ["x=1 is in every store", end.state.nodes.every((node) => node.kv.x === "1")]],
    },
    {
      title: "A new server joins as a learner",
      plan(ctx, facts) {
        facts.newNode = ctx.act("addNode");
        ctx.act("addLearner", facts.newNode);
        ctx.runUntil(() => { const state = ctx.full(); return state.membership.learners.includes(facts.newNode) && findNode(state, facts.newNode)?.kv.x === "1"; }, 2000) || (facts.miss ??= "the learner did not catch up");
        ctx.runFor(50);
      },
      text: (facts) => `<p>A fourth machine, ${nodeName(facts.newNode)}, starts empty. The leader appends a membership entry that adds it as a <b>learner</b> (dissertation §4.2.1): it receives the log like a follower, but it does not vote and does not count towards any majority.</p>
        <p>Why not a voter right away? With four voters a majority is three; while the new server is still copying the log it could not help commit anything, and one more failure would stall the cluster. As a learner it catches up first: its store already has <code>x=1</code>.</p>${missedNote(facts)}`,
      watch: (facts) => `${NodeName(facts.newNode)}'s log row filling up; its label says learner.`,
      expect: (facts, end) => [
        [`node ${facts.newNode} is a learner`, end.state.membership.learners.includes(facts.newNode) && !end.state.membership.voters.includes(facts.newNode)],
        [`node ${facts.newNode} has x=1`, end.node(facts.newNode)?.kv.x === "1"],
        ["still three voters", end.state.membership.voters.length === 3],
      ],
    },
    {
      title: "Promoted to voter",
      plan(ctx, facts) {
        ctx.act("promote", facts.newNode);
        ctx.runUntil(() => ctx.full().membership.voters.includes(facts.newNode), 1000) || (facts.miss ??= "the promotion did not commit");
        facts.put2 = ctx.act("put", "x", "2", 1);
        waitForOp(ctx, facts, facts.put2);
        ctx.runFor(50);
      },
      text: (facts) => `<p>Caught up, ${nodeName(facts.newNode)} is promoted: another membership entry makes it a <b>voter</b>. A server uses the newest membership in its log as soon as it has the entry, committed or not, which is why only <b>one change at a time</b> is allowed: any majority of the old set and any majority of the new one then overlap, so two leaders can never be elected for one term.</p>
        <p>Four voters now: <code>x=2</code> committed once three of them had it.</p>${missedNote(facts)}`,
      watch: () => `Membership: voters 1 2 3 4.`,
      expect: (facts, end) => [
        ["four voters", end.state.membership.voters.length === 4 && end.state.membership.voters.includes(facts.newNode)],
        ["x=2 completed", end.op(facts.put2)?.status === "ok"],
      ],
    },
    {
      title: "The leader removes itself",
      plan(ctx, facts) {
        ctx.act("removeMember", facts.oldLeader);
        facts.newLeader = waitForLeader(ctx, facts, 3000, [facts.oldLeader]);
        ctx.runUntil(() => !ctx.full().membership.voters.includes(facts.oldLeader), 1000) || (facts.miss ??= "the removal did not commit");
        facts.newTerm = ctx.node(facts.newLeader)?.term;
        facts.put3 = ctx.act("put", "x", "3", 2);
        waitForOp(ctx, facts, facts.put3);
        ctx.runFor(50);
      },
      text: (facts) => `<p>Now ${nodeName(facts.oldLeader)}, the leader, is removed. It keeps leading until the entry that removes it commits (it replicates the entry without counting itself), then steps down and hands leadership over with <b>TimeoutNow</b>, so the cluster does not wait for an election timeout: ${nodeName(facts.newLeader)} leads term ${facts.newTerm}.</p>
        <p>${NodeName(facts.oldLeader)} has the entry that removes it in its log, so it knows it is no longer a member: it gets no more entries, and since only voters campaign, its election timer is off for good: it cannot disturb the others. Writes go on with three voters: <code>x=3</code> completed.</p>${missedNote(facts)}`,
      watch: (facts) => `${NodeName(facts.oldLeader)} labelled "not a member"; ${nodeName(facts.newLeader)} drawn as leader.`,
      expect: (facts, end) => [
        [`node ${facts.oldLeader} is not a member`, !end.state.membership.voters.includes(facts.oldLeader) && !end.state.membership.learners.includes(facts.oldLeader)],
        [`node ${facts.oldLeader}'s election timer is off`, end.node(facts.oldLeader).up && end.node(facts.oldLeader).electionDeadline == null],
        [`node ${facts.newLeader} leads term ${facts.newTerm}`, end.leader() === facts.newLeader && facts.newTerm > facts.term],
        ["three voters, the new one among them", end.state.membership.voters.length === 3 && end.state.membership.voters.includes(facts.newNode)],
        ["x=3 completed", end.op(facts.put3)?.status === "ok"],
        ["the history is linearizable", end.check().ok],
      ],
    },
  ],
};
