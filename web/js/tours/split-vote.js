// The guided tour "Split vote" (see scenarios.js for how a tour is written).

import { tourConfig, findNode, nodeName, nodeNames, missedNote, votesFor, waitForLeader } from "../tour-kit.js";

export const splitVote = {
  id: "split-vote",
  title: "Split vote",
  blurb: "Four candidates at once: nobody wins, and randomized timeouts break the tie.",
  config: tourConfig({ nodes: 5, seed: 11, preVote: false }),
  steps: [
    {
      title: "Four timers fire at once",
      plan(ctx) { ctx.runFor(5); for (const id of [1, 2, 3, 4]) ctx.act("triggerElection", id); ctx.runFor(2); },
      text: () => `<p>PreVote is switched off in this run, to show the algorithm of the Raft paper itself.</p>
        <p>We force the election timers of ${nodeNames([1, 2, 3, 4])} to fire at the same instant. Each becomes a <b>candidate</b> for term 1 and votes for itself. A server votes only once per term, so four of the five votes are already spoken for: only ${nodeName(5)} has a vote left to give.</p>`,
      watch: () => `Four nodes in amber (candidate), each sending RequestVote to the others.`,
      expect: (facts, end) => [
        ["nodes 1 to 4 are candidates of term 1 that voted for themselves", [1, 2, 3, 4].every((id) => { const node = end.node(id); return node.role === "candidate" && node.term === 1 && node.votedFor === id; })],
        ["node 5 has not voted", end.node(5).votedFor === null],
      ],
    },
    {
      title: "Nobody wins",
      plan(ctx, facts) {
        ctx.runFor(60);
        const state = ctx.state();
        facts.tally = [1, 2, 3, 4].map((id) => [id, votesFor(state, id, 1)]);
        facts.fiveVotedFor = findNode(state, 5).votedFor;
        facts.gaveUp = [1, 2, 3, 4].filter((id) => findNode(state, id).role === "follower");
      },
      text: (facts) => `<p>The candidates refuse each other (each has already voted for itself), and ${nodeName(5)} gives its vote to the request that reached it first: ${nodeName(facts.fiveVotedFor)}'s.</p>
        <p>Tally for term 1: ${facts.tally.map(([id, votes]) => `${nodeName(id)} ${votes}`).join(", ")}. A candidate needs 3 of 5, so <b>nobody can win term 1</b>: a split vote.</p>
        <p>${facts.gaveUp.length ? `A candidate that has been refused by a majority knows it cannot win this term, so it goes back to being a follower (${facts.gaveUp.length === 4 ? "all four did" : `${nodeNames(facts.gaveUp)} did`}). It stays in term 1 and keeps its vote. ` : ""}There is no negotiation: the cluster simply waits for the next election timer to run out.</p>`,
      watch: () => `The timer arcs: every node restarted its timer with a new random length when it last campaigned or voted.`,
      expect: (facts, end) => [
        ["nobody is leader", end.leader() === null],
        ["every node voted in term 1", end.state.nodes.every((node) => node.term === 1 && node.votedFor !== null)],
        ["no node has a majority of the votes", [1, 2, 3, 4, 5].every((id) => votesFor(end.state, id, 1) < 3)],
        ["the tally is as shown", facts.tally.every(([id, votes]) => votesFor(end.state, id, 1) === votes)],
      ],
    },
    {
      title: "Randomized timeouts break the tie",
      plan(ctx, facts) {
        if (!ctx.stepUntil((state) => state.nodes.some((node) => node.term >= 2), 20000)) facts.miss = "no timer ran out";
        facts.firstTimeout = ctx.state().nodes.find((node) => node.term >= 2)?.id;
        facts.leader = waitForLeader(ctx, facts, 4000);
        facts.term = ctx.node(facts.leader)?.term;
        ctx.runFor(80);
      },
      text: (facts) => `<p>The first timer to run out was ${nodeName(facts.firstTimeout)}'s${[1, 2, 3, 4].includes(facts.firstTimeout) ? "" : ", which was never a candidate"}. It starts term 2 before anybody else, and nobody has voted in term 2 yet, so ${facts.leader === facts.firstTimeout && facts.term === 2 ? `it collects the votes: ${nodeName(facts.leader)} is leader of term 2` : `after ${facts.term - 1} rounds ${nodeName(facts.leader)} is leader of term ${facts.term}`}.</p>
        <p>This is why Raft randomizes election timeouts (§5.2): split votes can happen, but the spread of the timeouts makes a repeat unlikely. For that the range must be much wider than a message round trip.</p>${missedNote(facts)}`,
      watch: () => `Try it again with Settings → a narrow election timeout range (for example 150–155 ms): split votes repeat much more often.`,
      expect: (facts, end) => [
        [`node ${facts.leader} is the leader of term ${facts.term}`, end.leader() === facts.leader && end.node(facts.leader).term === facts.term],
        [`node ${facts.firstTimeout} started term 2 first`, facts.firstTimeout != null],
      ],
    },
  ],
};
