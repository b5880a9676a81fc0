// The guided tour "Repairing a far-behind follower" (see scenarios.js for how a tour is written).

import { tourConfig, findNode, nodeName, NodeName, missedNote, otherNodes, sameLog, termAt, waitForLeader } from "../tour-kit.js";

export const logRepair = {
  id: "log-repair",
  title: "Repairing a far-behind follower",
  blurb: "A stale leader with conflicting entries rejoins; fast back-off finds the divergence in one round trip.",
  config: tourConfig({ nodes: 5, seed: 5 }),
  steps: [
    {
      title: "Load on a healthy cluster",
      plan(ctx, facts) { facts.isolated = waitForLeader(ctx, facts); ctx.act("setWorkload", { clients: 2, intervalMs: 40, keys: 4, readFraction: 0 }); ctx.runFor(400); facts.isolatedTerm = ctx.node(facts.isolated)?.term; },
      text: (facts) => `<p>${NodeName(facts.isolated)} leads term ${facts.isolatedTerm}. Two clients keep writing.</p>`,
      watch: () => `The logs growing in step.`,
      expect: (facts, end) => [[`node ${facts.isolated} leads term ${facts.isolatedTerm}`, end.leader() === facts.isolated]],
    },
    {
      title: "Isolate the leader",
      plan(ctx, facts) {
        const state = ctx.state();
        ctx.act("partition", [[facts.isolated], otherNodes(state, facts.isolated)]);
        ctx.runFor(1500);
        const after = ctx.state();
        const isolated = findNode(after, facts.isolated);
        facts.isolatedLast = isolated.lastIndex; facts.isolatedCommit = isolated.commitIndex;
        // the majority's leader: the cluster's, unless that is still the cut-off one (no election yet)
        facts.second = after.leader !== facts.isolated ? after.leader : null;
        facts.secondTerm = findNode(after, facts.second)?.term;
        facts.secondLast = findNode(after, facts.second)?.lastIndex;
        // the first index where the two logs disagree
        const full = ctx.full(), isolatedLog = findNode(full, facts.isolated), secondLog = findNode(full, facts.second);
        facts.divergence = facts.isolatedCommit + 1;
        while (facts.divergence <= facts.isolatedLast && termAt(isolatedLog, facts.divergence) === termAt(secondLog, facts.divergence)) facts.divergence++;
      },
      text: (facts) => `<p>${NodeName(facts.isolated)} is partitioned away. Requests that still reach it get appended in term ${facts.isolatedTerm} but never committed (dashed): it cannot reach a majority. Meanwhile the majority elects ${nodeName(facts.second)}, which commits many entries in term ${facts.secondTerm}.</p>
        <p>${NodeName(facts.isolated)}'s log ends at index ${facts.isolatedLast}, committed (as far as it knows) up to ${facts.isolatedCommit}; ${nodeName(facts.second)}'s ends at ${facts.secondLast}. From index ${facts.divergence} on, the two logs disagree: ${facts.isolatedLast - facts.divergence + 1 === 1 ? `${nodeName(facts.isolated)}'s entry there was` : `${nodeName(facts.isolated)}'s ${facts.isolatedLast - facts.divergence + 1} entries from there were`} never stored by a majority.</p>`,
      watch: (facts) => `Row ${facts.isolated}: a tail of dashed term-${facts.isolatedTerm} cells; the other rows: a long run in another colour.`,
      expect: (facts, end) => [
        [`node ${facts.isolated} holds entries from index ${facts.divergence} on that node ${facts.second} does not`, facts.divergence <= facts.isolatedLast && termAt(end.node(facts.isolated), facts.divergence) !== termAt(end.node(facts.second), facts.divergence)],
        [`node ${facts.second} leads term ${facts.secondTerm}`, end.node(facts.second).role === "leader" && end.node(facts.second).term === facts.secondTerm && facts.secondTerm > facts.isolatedTerm],
        [`node ${facts.second} is far ahead`, facts.secondLast >= facts.isolatedLast + 10],
      ],
    },
    {
      title: "Another leader change",
      plan(ctx, facts) {
        ctx.act("setWorkload", { clients: 0 });
        ctx.runFor(300);
        ctx.act("crash", facts.second);
        facts.third = waitForLeader(ctx, facts, 3000, [facts.isolated, facts.second]);
        facts.thirdTerm = ctx.node(facts.third)?.term;
        ctx.runFor(100);
        facts.thirdLast = ctx.node(facts.third)?.lastIndex;
      },
      text: (facts) => `<p>The clients stop, and ${nodeName(facts.second)} crashes too. The three remaining servers of the majority elect ${nodeName(facts.third)} for term ${facts.thirdTerm}. Its log has everything ${nodeName(facts.second)} committed, ending at index ${facts.thirdLast}.</p>
        <p>${NodeName(facts.third)} has never talked to ${nodeName(facts.isolated)}: it knows nothing about ${nodeName(facts.isolated)}'s log.</p>`,
      watch: (facts) => `The leader's view of ${nodeName(facts.isolated)} at the right of its row: "probe", nothing matched.`,
      expect: (facts, end) => [
        [`node ${facts.third} leads term ${facts.thirdTerm}`, end.node(facts.third).role === "leader" && facts.thirdTerm > facts.secondTerm],
        [`node ${facts.third} has all of node ${facts.second}'s committed entries`, end.node(facts.third).lastIndex >= facts.secondLast - 2],
      ],
    },
    {
      title: "Heal: find where the logs diverge",
      plan(ctx, facts) {
        ctx.events();
        ctx.act("heal");
        const viewOfIsolated = (leader) => (leader?.progress ?? []).find((progress) => progress.id === facts.isolated);
        const caught = (state) => viewOfIsolated(findNode(state, facts.third))?.matchIndex >= facts.isolatedCommit;
        if (!ctx.stepUntil(caught, 20000)) facts.miss = `the leader did not find a match on node ${facts.isolated}`;
        const lines = ctx.events().filter((line) => line.kind === "deliver");
        const rejects = lines.filter((line) => new RegExp(`^${facts.isolated}->${facts.third} AppendEntriesResponse .*reject`).test(line.text));
        facts.rejections = rejects.length;
        const hint = rejects[0] && /reject prev=(\d+) hint=(\d+)\/(\d+)/.exec(rejects[0].text);
        if (hint) { facts.probeIndex = Number(hint[1]); facts.hintIndex = Number(hint[2]); facts.hintTerm = Number(hint[3]); }
        const sent = lines.filter((line) => new RegExp(`^${facts.third}->${facts.isolated} AppendEntries `).test(line.text)).map((line) => /prev=(\d+)\/(\d+)/.exec(line.text)).filter(Boolean);
        if (sent.length) { facts.probeTerm = Number(sent[0][2]); facts.matchedPrev = Number(sent[sent.length - 1][1]); }
        facts.matchIndex = viewOfIsolated(ctx.node(facts.third)).matchIndex;
        ctx.runFor(2);
      },
      text: (facts) => `<p>The partition heals; ${nodeName(facts.isolated)} sees term ${facts.thirdTerm} and becomes a follower of ${nodeName(facts.third)}. The leader knows nothing of ${nodeName(facts.isolated)}'s log, so it <b>probes</b>: its AppendEntries names the entry just before the ones it carries (index ${facts.probeIndex}, term ${facts.probeTerm}), and a follower accepts only if it holds exactly that entry (the consistency check of §5.3). ${facts.probeIndex > facts.isolatedLast ? `${NodeName(facts.isolated)}'s log ends at index ${facts.isolatedLast}` : `${NodeName(facts.isolated)}'s entry there has another term`}: it <b>rejects</b>.</p>
        <p>Stepping back one entry per rejection would take ${facts.probeIndex - facts.matchedPrev} round trips here. Instead the rejection carries a hint: ${nodeName(facts.isolated)}'s last index whose term is at most the probe's (index ${facts.hintIndex}, term ${facts.hintTerm}). The leader jumps back to its own last entry of a term no later than ${facts.hintTerm}, index ${facts.matchedPrev}, and sends everything after it. ${NodeName(facts.isolated)} accepts: it deletes its conflicting term-${facts.isolatedTerm} ${facts.isolatedLast - facts.matchedPrev === 1 ? "entry" : "entries"} after index ${facts.matchedPrev} and takes the leader's, up to index ${facts.matchIndex}. ${facts.rejections === 1 ? "One rejection" : `${facts.rejections} rejections`} in all.</p>${missedNote(facts)}`,
      watch: (facts) => `${NodeName(facts.isolated)}'s row, now in the leader's colours, and the leader's view of it at the right: m (match index) ${facts.matchIndex}.`,
      expect: (facts, end) => [
        [`node ${facts.isolated} follows node ${facts.third} in term ${facts.thirdTerm}`, end.node(facts.isolated).term === facts.thirdTerm && end.node(facts.isolated).role === "follower"],
        ["the leader's probe was rejected with a hint", facts.rejections >= 1 && facts.hintIndex != null],
        ["one or two round trips found the match", facts.rejections <= 2 && facts.matchedPrev === facts.divergence - 1],
        [`node ${facts.isolated} holds the leader's entries up to index ${facts.matchIndex}`, sameLog(end.node(facts.isolated), end.node(facts.third), Math.max(end.node(facts.isolated).snapshotIndex, end.node(facts.third).snapshotIndex) + 1, facts.matchIndex)],
      ],
    },
    {
      title: "Everyone in line again",
      plan(ctx, facts) {
        ctx.act("restart", facts.second);
        const done = (state) => { const leader = findNode(state, facts.third); return state.nodes.every((node) => node.lastIndex === leader.lastIndex && node.commitIndex === leader.commitIndex); };
        if (!ctx.runUntil(done, 3000)) facts.miss = "the logs did not converge";
        ctx.runFor(100);
      },
      text: (facts) => `<p>${NodeName(facts.isolated)} learns the commit index from the next message and applies what it was missing. ${NodeName(facts.second)}, the crashed leader of term ${facts.secondTerm}, restarts too; it lacks only what was committed after it crashed, and gets it the same way.</p>
        <p>The leader now sees every follower in <b>replicate</b> state: new entries are sent back to back (pipelining, with a bounded number in flight) instead of waiting for each answer. All five logs are identical.</p>`,
      watch: () => `The logs lined up, and every row's ▲ commit marker at the same index.`,
      expect: (facts, end) => [
        ["every log matches the leader's", end.state.nodes.every((node) => sameLog(node, end.node(facts.third), Math.max(node.snapshotIndex, end.node(facts.third).snapshotIndex) + 1, end.node(facts.third).lastIndex))],
        ["the leader replicates to every follower", (end.node(facts.third).progress ?? []).every((progress) => progress.state === "replicate")],
      ],
    },
  ],
};
