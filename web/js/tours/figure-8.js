// The guided tour "Figure 8: committing entries from older terms" (see scenarios.js for how a tour is written).

import { tourConfig, findNode, nodeName, NodeName, nodeNames, NodeNames, missedNote, otherNodes, sameLog, termAt, waitForLeader, waitForOp, campaignUntilLeader } from "../tour-kit.js";

export const figure8 = {
  id: "figure-8",
  title: "Figure 8: committing entries from older terms",
  blurb: "An entry stored on a majority is still overwritten — safely, because the leader never counted it as committed (Raft paper, Figure 8).",
  // as core/testdata/figure8.txt: no PreVote or CheckQuorum, one entry per AppendEntries
  config: tourConfig({ nodes: 5, seed: 8, preVote: false, checkQuorum: false, maxEntriesPerMessage: 1, latencyMs: [5, 5], diskLatencyMs: [1, 1] }),
  steps: [
    {
      title: "Setting the stage",
      plan(ctx, facts) {
        facts.s1 = waitForLeader(ctx, facts);
        const put = ctx.act("put", "x", "1", 1); waitForOp(ctx, facts, put);
        ctx.runUntil((state) => state.nodes.every((node) => node.commitIndex === node.lastIndex), 500);
        ctx.runFor(10);
        const state = ctx.state();
        facts.s1Term = findNode(state, facts.s1)?.term;
        facts.s2 = otherNodes(state, facts.s1)[0];
        facts.withoutEntry = otherNodes(state, facts.s1, facts.s2); // S3, S4 and S5
      },
      text: (facts) => `<p>Figure 8 of the Raft paper shows a trap: an entry can be stored on a majority of servers and still be overwritten later. This tour plays it out with the real simulator, ${nodeName(facts.s1)} in the role of S1 and ${nodeName(facts.s2)} as S2.</p>
        <p>PreVote and CheckQuorum are off, as in the paper; a leader sends one entry per AppendEntries, and every message takes exactly 5 ms, so that each step is visible.</p>
        <p>${NodeName(facts.s1)} leads term ${facts.s1Term}; everything so far is committed.</p>`,
      watch: () => `The LOGS panel: one row per server, one column per log index; colour and number give the term.`,
      expect: (facts, end) => [[`node ${facts.s1} leads term ${facts.s1Term}`, end.leader() === facts.s1], ["every entry is committed", end.state.nodes.every((node) => node.commitIndex === node.lastIndex)]],
    },
    {
      title: "(a) An entry reaches only two servers",
      plan(ctx, facts) {
        ctx.act("partition", [[facts.s1, facts.s2], facts.withoutEntry]);
        facts.put = ctx.act("put", "y", "1", 1);
        facts.index = ctx.node(facts.s1).lastIndex + 1;
        // wait until both hold the entry on disk, then crash both
        if (!ctx.runUntil((state) => [facts.s1, facts.s2].every((id) => findNode(state, id).durableIndex >= facts.index), 1500)) facts.miss = `the entry did not reach node ${facts.s2}`;
        ctx.act("crash", facts.s1); ctx.act("crash", facts.s2);
        ctx.runFor(20);
      },
      text: (facts) => `<p>A partition separates ${nodeNames([facts.s1, facts.s2])} from ${nodeNames(facts.withoutEntry)}, and client c1 writes <code>y=1</code>. ${NodeName(facts.s1)} appends it at index ${facts.index} in term ${facts.s1Term} and replicates it to ${nodeName(facts.s2)} only: 2 of 5, <b>not committed</b>.</p>
        <p>Then ${nodeName(facts.s1)} and ${nodeName(facts.s2)} crash. The entry survives on their disks.</p>${missedNote(facts)}`,
      watch: (facts) => `Index ${facts.index}: dashed (uncommitted) term-${facts.s1Term} cells on ${nodeName(facts.s1)} and ${nodeName(facts.s2)}, nothing on the others.`,
      expect: (facts, end) => [
        [`nodes ${facts.s1} and ${facts.s2} hold y=1 at index ${facts.index} in term ${facts.s1Term}, uncommitted`, [facts.s1, facts.s2].every((id) => termAt(end.node(id), facts.index) === facts.s1Term && end.node(id).commitIndex < facts.index)],
        [`nodes ${facts.withoutEntry.join(", ")} do not`, facts.withoutEntry.every((id) => end.node(id).lastIndex < facts.index)],
      ],
    },
    {
      title: "(b) A leader that never saw it",
      plan(ctx, facts) {
        ctx.act("heal");
        // stop at the very event that makes one of the majority leader
        if (!ctx.stepUntil((state) => facts.withoutEntry.includes(state.leader), 50000)) facts.miss = "no new leader was elected";
        facts.s5 = ctx.leader();
        facts.s5Term = ctx.node(facts.s5)?.term;
        facts.s3s4 = facts.withoutEntry.filter((id) => id !== facts.s5);
        // cut it off before its first AppendEntries arrives, let its own entry reach its disk, then crash it
        ctx.act("partition", [[facts.s5], facts.s3s4]);
        if (!ctx.runUntil((state) => findNode(state, facts.s5).durableIndex >= facts.index, 100)) facts.miss = `node ${facts.s5}'s entry did not reach its disk`;
        ctx.act("crash", facts.s5);
        ctx.runFor(25); // what it sent dies on the cut links
        ctx.act("heal");
        ctx.runFor(5);
      },
      text: (facts) => `<p>${NodeNames(facts.withoutEntry)} are a majority, so they elect ${nodeName(facts.s5)} for term ${facts.s5Term} (S5 in the figure). Its log does not have <code>y=1</code>.</p>
        <p>As a new leader it appends a no-op entry of its own term at index ${facts.index}: a different entry at the same index. We cut it off the moment it wins, so that no follower receives the entry, and crash it once the entry is on its disk.</p>
        <p>Index ${facts.index} now holds a term-${facts.s1Term} entry on ${nodeNames([facts.s1, facts.s2])} and a term-${facts.s5Term} entry on ${nodeName(facts.s5)}. Neither is committed, and that is allowed.</p>${missedNote(facts)}`,
      watch: (facts) => `${NodeName(facts.s5)}'s row: its entry at index ${facts.index} has a different colour from ${nodeName(facts.s1)}'s.`,
      expect: (facts, end) => [
        [`node ${facts.s5} holds a term-${facts.s5Term} entry at index ${facts.index}`, termAt(end.node(facts.s5), facts.index) === facts.s5Term && !end.node(facts.s5).up],
        [`nodes ${facts.s3s4.join(" and ")} have nothing at index ${facts.index}`, facts.s3s4.every((id) => end.node(id).lastIndex < facts.index)],
      ],
    },
    {
      title: "(c) The old entry on a majority, not committed",
      plan(ctx, facts) {
        ctx.act("restart", facts.s1);
        // only S1 can win: S2 and S5 are down, and S3, S4 lack the entry
        facts.s1Campaigns = campaignUntilLeader(ctx, facts, facts.s1);
        facts.s1NewTerm = ctx.node(facts.s1)?.term;
        // stop at the event where the leader learns that a majority has the entry
        const matched = (leader) => (leader.progress ?? []).filter((progress) => progress.matchIndex >= facts.index).map((progress) => progress.id);
        const onMajority = (state) => { const s1 = findNode(state, facts.s1); return s1.role === "leader" && matched(s1).length >= 2; };
        if (!ctx.stepUntil(onMajority, 20000)) facts.miss = `entry ${facts.index} did not reach a majority`;
        const s1 = ctx.node(facts.s1);
        facts.commitIndex = s1.commitIndex;
        facts.matched = matched(s1);
      },
      text: (facts) => `<p>${NodeName(facts.s1)} restarts; ${nodeName(facts.s2)} and ${nodeName(facts.s5)} stay down. ${NodeName(facts.s1)}'s log ends at index ${facts.index}, longer than those of ${nodeNames(facts.s3s4)}, so only it can win: we fire its election timer${facts.s1Campaigns > 1 ? ` (${facts.s1Campaigns} campaigns: the first, in a term the others have already passed, fails)` : ""} and it leads term ${facts.s1NewTerm}. It copies its term-${facts.s1Term} entry at index ${facts.index} to ${nodeNames(facts.matched)}.</p>
        <p>This is Figure 8(c): the entry is stored on a majority (${nodeNames([facts.s1, ...facts.matched])}), and the leader knows it. Yet its commit index stays at <b>${facts.commitIndex}</b>${facts.commitIndex === 0 ? " (after its restart it does not even count the older entries as committed yet)" : ""}: a leader counts replicas only for entries of its <b>current term</b> (§5.4.2). An older entry is committed only indirectly, once an entry of the current term after it is on a majority: here ${nodeName(facts.s1)}'s own no-op at index ${facts.index + 1} (term ${facts.s1NewTerm}), which has not spread yet.</p>${missedNote(facts)}`,
      watch: (facts) => `The ▲ commit markers stay left of index ${facts.index} although three rows have it; the green match bar of the leader's view reaches index ${facts.index} for two followers.`,
      expect: (facts, end) => [
        [`node ${facts.s1} leads term ${facts.s1NewTerm}`, end.leader() === facts.s1 && facts.s1NewTerm > facts.s5Term],
        [`index ${facts.index} (term ${facts.s1Term}) is stored on a majority`, end.state.nodes.filter((node) => termAt(node, facts.index) === facts.s1Term).length >= 3],
        [`the leader's commit index is below ${facts.index}`, end.node(facts.s1).commitIndex < facts.index],
      ],
    },
    {
      title: "(d) Overwritten — safely",
      plan(ctx, facts) {
        // S1 is cut off and crashes before its own entry spreads; S5 comes back
        ctx.act("partition", [[facts.s1], otherNodes(ctx.state(), facts.s1)]);
        ctx.act("crash", facts.s1);
        ctx.act("restart", facts.s5);
        facts.s5Campaigns = campaignUntilLeader(ctx, facts, facts.s5);
        facts.s5NewTerm = ctx.node(facts.s5)?.term;
        if (!ctx.runUntil((state) => facts.s3s4.every((id) => findNode(state, id).commitIndex >= facts.index), 3000)) facts.miss ??= `node ${facts.s5}'s entry was not committed`;
        ctx.runFor(20);
      },
      text: (facts) => `<p>${NodeName(facts.s1)} is cut off and crashes before its term-${facts.s1NewTerm} entry reaches anyone, and ${nodeName(facts.s5)} restarts. Its last entry has term ${facts.s5Term}, newer than the term-${facts.s1Term} entry that ${nodeNames(facts.s3s4)} now end with, so when it campaigns${facts.s5Campaigns > 1 ? ` (it too needs ${facts.s5Campaigns} attempts)` : ""} they vote for it: ${nodeName(facts.s5)} leads term ${facts.s5NewTerm}.</p>
        <p>It replicates <i>its</i> entry at index ${facts.index}, and the followers delete their term-${facts.s1Term} entry there and take the leader's (Log Matching). An entry that was stored on a majority has been <b>overwritten</b> — Figure 8(d).</p>
        <p>This is safe only because ${nodeName(facts.s1)} never counted it as committed: no client was told that <code>y=1</code> succeeded. Client c1 is still waiting, and will retry. Had ${nodeName(facts.s1)} committed the entry by counting replicas, a committed entry would now be lost. The Correctness card confirms that every safety property held.</p>${missedNote(facts)}`,
      watch: (facts) => `Index ${facts.index} on ${nodeNames(facts.s3s4)} changing colour from term ${facts.s1Term} to term ${facts.s5Term}.`,
      expect: (facts, end) => [
        [`node ${facts.s5} leads term ${facts.s5NewTerm}`, end.leader() === facts.s5],
        [`index ${facts.index} now holds node ${facts.s5}'s term-${facts.s5Term} entry on nodes ${facts.s3s4.join(" and ")}, committed`, facts.s3s4.every((id) => termAt(end.node(id), facts.index) === facts.s5Term && end.node(id).commitIndex >= facts.index)],
        ["y=1 was never acknowledged", end.op(facts.put)?.status === "pending"],
        ["every safety property held", end.check().ok],
      ],
    },
    {
      title: "Everyone converges",
      plan(ctx, facts) {
        ctx.act("heal");
        ctx.act("restart", facts.s1); ctx.act("restart", facts.s2);
        waitForOp(ctx, facts, facts.put, 4000, "y=1 did not complete");
        ctx.runFor(500);
      },
      text: (facts) => `<p>The network heals and ${nodeName(facts.s1)} and ${nodeName(facts.s2)} restart as followers. Their term-${facts.s1Term} entry at index ${facts.index} conflicts with the leader's, so it is replaced too, and all five logs end up identical.</p>
        <p>Client c1 retried <code>y=1</code>; it was committed in a later term, at a later index, and only then acknowledged. The other branch of the figure, (e), is what the rule buys: had ${nodeName(facts.s1)} stored an entry of its own term ${facts.s1NewTerm} on a majority before crashing, ${nodeName(facts.s5)} could never have been elected, because a majority would have a log ending in a newer term than its own.</p>`,
      watch: () => `All rows the same colour at every index; y=1 in every store (click a node).`,
      expect: (facts, end) => [
        ["every log matches the leader's", end.state.nodes.every((node) => node.up && sameLog(node, end.node(facts.s5), Math.max(node.snapshotIndex, end.node(facts.s5).snapshotIndex) + 1, end.node(facts.s5).commitIndex))],
        ["y=1 completed and is in every store", end.op(facts.put)?.status === "ok" && end.state.nodes.every((node) => node.kv.y === "1")],
      ],
    },
  ],
};
