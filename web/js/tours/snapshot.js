// The guided tour "Snapshot to a lagging follower" (see scenarios.js for how a tour is written).

import { tourConfig, findNode, nodeName, NodeName, missedNote, otherNodes, waitForLeader } from "../tour-kit.js";

export const snapshot = {
  id: "snapshot",
  title: "Snapshot to a lagging follower",
  blurb: "The entries a follower needs were compacted away; the leader sends its state instead.",
  config: tourConfig({ nodes: 5, seed: 13, snapshotEvery: 20, snapshotChunkBytes: 256 }),
  steps: [
    {
      title: "A follower goes down",
      plan(ctx, facts) {
        facts.leader = waitForLeader(ctx, facts);
        facts.follower = otherNodes(ctx.state(), facts.leader)[0];
        ctx.act("crash", facts.follower);
        ctx.act("setWorkload", { clients: 3, intervalMs: 50, keys: 4, readFraction: 0.2 });
        ctx.runFor(1500);
        const state = ctx.state();
        facts.leaderSnapshot = findNode(state, facts.leader)?.snapshotIndex;
        facts.followerLast = findNode(state, facts.follower)?.lastIndex;
      },
      text: (facts) => `<p>${NodeName(facts.follower)} crashes while three clients keep writing to leader ${nodeName(facts.leader)}.</p>
        <p>In this run every server takes a <b>snapshot</b> of its key-value state every 20 applied entries and discards the log up to there (§7, log compaction). The hatched block at the start of each row is the compacted prefix; the purple bar marks its end (${nodeName(facts.leader)}: index ${facts.leaderSnapshot}).</p>`,
      watch: (facts) => `${NodeName(facts.follower)}'s short log, and the hatched snapshot blocks growing on the others.`,
      expect: (facts, end) => [
        [`node ${facts.follower} is down`, !end.node(facts.follower).up],
        [`the leader has compacted its log up to index ${facts.leaderSnapshot}`, facts.leaderSnapshot >= 20 && end.node(facts.leader).snapshotIndex >= facts.leaderSnapshot],
        [`node ${facts.follower}'s log ends before that`, end.node(facts.follower).lastIndex < facts.leaderSnapshot],
      ],
    },
    {
      title: "The entries are gone",
      plan(ctx, facts) {
        ctx.act("snapshot", facts.leader);
        ctx.runFor(20);
        const state = ctx.state();
        facts.leaderSnapshot = findNode(state, facts.leader)?.snapshotIndex;
        facts.followerLast = findNode(state, facts.follower)?.lastIndex;
      },
      text: (facts) => `<p>We ask the leader to snapshot right now: its log starts after index ${facts.leaderSnapshot}, but ${nodeName(facts.follower)}'s ${facts.followerLast ? `ends at index ${facts.followerLast}` : "is empty"}. The entries ${nodeName(facts.follower)} would need next no longer exist on the leader as log entries, only inside its snapshot.</p>`,
      watch: () => `The leader's row: the hatched snapshot block, then only the newest entries.`,
      expect: (facts, end) => [[`the leader's log starts after index ${facts.leaderSnapshot}`, end.node(facts.leader).snapshotIndex >= facts.leaderSnapshot && facts.leaderSnapshot > facts.followerLast + 1]],
    },
    {
      title: "InstallSnapshot",
      plan(ctx, facts) {
        ctx.act("restart", facts.follower);
        const sending = (state) => state.inFlight.some((message) => message.kind === "InstallSnapshot" && Number(message.to) === facts.follower);
        if (!ctx.stepUntil(sending, 50000)) facts.miss = "the leader did not send a snapshot";
        ctx.runFor(3);
        const state = ctx.state();
        facts.followerState = findNode(state, facts.leader)?.progress?.find((progress) => progress.id === facts.follower)?.state;
      },
      text: (facts) => `<p>${NodeName(facts.follower)} restarts. When the leader probes it, the entries it would have to send have been compacted, so its view of ${nodeName(facts.follower)} switches to <b>snapshot</b> and it sends <b>InstallSnapshot</b> (purple) instead: its whole state machine — the keys and values, plus the client sessions so that retries stay exactly-once — in chunks of 256 bytes.</p>${missedNote(facts)}`,
      watch: (facts) => `The purple messages to ${nodeName(facts.follower)}, and the leader's view of it: "snapshot".`,
      expect: (facts, end) => [
        [`an InstallSnapshot is on its way to node ${facts.follower}`, end.state.inFlight.some((message) => message.kind === "InstallSnapshot" && Number(message.to) === facts.follower) || end.node(facts.follower).snapshotIndex >= facts.leaderSnapshot],
        [`the leader's view of node ${facts.follower} is "snapshot"`, facts.followerState === "snapshot"],
      ],
    },
    {
      title: "Installed",
      plan(ctx, facts) {
        if (!ctx.runUntil((state) => (findNode(state, facts.follower)?.snapshotIndex ?? 0) >= facts.leaderSnapshot, 3000)) facts.miss = "the follower did not install the snapshot";
        ctx.runFor(2);
        facts.followerSnapshot = ctx.node(facts.follower)?.snapshotIndex;
      },
      text: (facts) => `<p>With the last chunk, ${nodeName(facts.follower)} replaces its state machine with the snapshot, discards the log entries the snapshot covers, and answers. Its snapshot boundary jumps to index ${facts.followerSnapshot}, and its key-value store is the leader's as of that index.</p>${missedNote(facts)}`,
      watch: (facts) => `${NodeName(facts.follower)}'s row: the purple snapshot marker at index ${facts.followerSnapshot}. Click ${nodeName(facts.follower)} to see its key-value store filled in.`,
      expect: (facts, end) => [
        [`node ${facts.follower} installed a snapshot up to index ${facts.followerSnapshot} ≥ ${facts.leaderSnapshot}`, end.node(facts.follower).snapshotIndex === facts.followerSnapshot && facts.followerSnapshot >= facts.leaderSnapshot],
        [`node ${facts.follower}'s store is not empty`, Object.keys(end.node(facts.follower).kv).length > 0],
      ],
    },
    {
      title: "Back to normal replication",
      plan(ctx) { ctx.runFor(600); },
      text: (facts) => `<p>After the snapshot's last index, the leader sends ordinary AppendEntries again, and ${nodeName(facts.follower)} is back in <b>replicate</b> state, applying new entries with everyone else.</p>`,
      watch: (facts) => `The leader's view of ${nodeName(facts.follower)}: "replicate", with its match index following the others'.`,
      expect: (facts, end) => [
        [`the leader replicates to node ${facts.follower}`, (end.node(facts.leader).progress ?? []).find((progress) => progress.id === facts.follower)?.state === "replicate"],
        [`node ${facts.follower} applies new entries`, end.node(facts.follower).appliedIndex > facts.followerSnapshot],
      ],
    },
  ],
};
