// Guided scenarios. Each step plans its actions on a scratch copy of the run
// (so conditions like "until a leader exists" are found by simulating ahead);
// the page then plays the real run up to the step's end while the text says
// what to watch. Node ids are chosen at run time from what the cluster did;
// `v` carries names and facts from step to step.
//
// A step is { title, plan(ctx, v), text(v), watch(v), expect(v, q) }:
// - plan acts and advances time on the scratch run (see makeCtx);
// - expect lists the claims its text makes, as [what, holds] pairs checked
//   against the state at the end of the step (q, see query()). The guide
//   checks them when it plans the step and says so if one does not hold; the
//   end-to-end tests check them again on the run the page actually played.
//
// Each tour fixes its configuration on top of the page's defaults (the
// settings a person changed do not leak into it), so what the text says is
// what the real simulator does with that seed. The core's scenario files
// (core/testdata/*.txt) are the reference for each situation.

import {
  CONFIG, N, Nc, list, listC, missed, others, votesFor, majority, sameLog, termAt, leaderOf,
  waitLeader, waitOp, campaignUntilLeader, putEverywhere,
} from "./tour-kit.js";

export { makeCtx, query, failedClaims, leaderOf, termAt } from "./tour-kit.js";

export const SCENARIOS = [
  {
    id: "first-election",
    title: "First election",
    blurb: "How a cluster of followers chooses a leader, and how a write gets committed.",
    config: CONFIG({ nodes: 5, seed: 7 }),
    steps: [
      {
        title: "Everyone starts as a follower",
        plan(ctx) { ctx.runFor(40); },
        text: () => `<p>Five servers start up as <b>followers</b> in term 0. There is no leader yet, so nobody sends heartbeats.</p>
          <p>Each follower runs an <b>election timer</b> with a timeout drawn at random between 150 and 300 ms of virtual time. If it hears nothing from a leader before its timer runs out, it will try to become leader itself.</p>`,
        watch: () => `The grey arcs around the nodes: each one is a timer running down, each at its own pace.`,
        expect: (v, q) => [
          ["every node is a follower in term 0", q.st.nodes.every((n) => n.up && n.role === "follower" && n.term === 0)],
          ["every node has an election timer", q.st.nodes.every((n) => n.electionDeadline !== null)],
        ],
      },
      {
        title: "A timer runs out: PreVote",
        plan(ctx, v) {
          if (!ctx.runUntil((st) => st.nodes.some((n) => n.role === "precandidate" || n.role === "candidate"), 1000)) v.miss = "no timer ran out";
          ctx.runFor(2);
          const st = ctx.state();
          v.c = st.nodes.find((n) => n.role === "precandidate" || n.role === "candidate")?.id ?? null;
        },
        text: (v) => `<p>${Nc(v.c)}'s timer ran out first, so it stops waiting for a leader.</p>
          <p>This cluster uses <b>PreVote</b> (Ongaro's dissertation, §9.6): before anything else, ${N(v.c)} becomes a <b>pre-candidate</b> and asks everyone "would you vote for me in term 1?" <i>without</i> raising its own term, which is still 0. Only if a majority says yes will it hold a real election. That way a server that was merely cut off cannot force a higher term on a healthy cluster when it comes back.</p>${missed(v)}`,
        watch: (v) => `The PreVote requests (filled dots) leaving ${N(v.c)}, and the answers (hollow dots) coming back.`,
        expect: (v, q) => [
          [`node ${v.c} is a pre-candidate`, q.node(v.c)?.role === "precandidate"],
          ["nobody's term has changed", q.st.nodes.every((n) => n.term === 0)],
        ],
      },
      {
        title: "A real candidate",
        plan(ctx, v) {
          if (!ctx.stepUntil((st) => st.nodes.some((n) => n.role === "candidate"), 5000)) v.miss = "nobody became a candidate";
          const st = ctx.state();
          v.cand = st.nodes.find((n) => n.role === "candidate")?.id ?? null;
          v.candTerm = st.nodes.find((n) => n.id === v.cand)?.term;
          ctx.runFor(2);
        },
        text: (v) => `<p>${v.cand === v.c ? `A majority answered yes, so ${N(v.c)}` : `${Nc(v.cand)}`} now campaigns for real: it becomes a <b>candidate</b>, increments its term to ${v.candTerm}, votes for itself (the vote is written to disk before anything is sent) and sends <b>RequestVote</b> to every other server (§5.2).</p>${missed(v)}`,
        watch: (v) => `${Nc(v.cand)} in amber, its RequestVote messages on their way.`,
        expect: (v, q) => [
          [`node ${v.cand} is a candidate in term ${v.candTerm}`, q.node(v.cand)?.role === "candidate" && q.node(v.cand)?.term === v.candTerm],
          [`node ${v.cand} voted for itself`, q.node(v.cand)?.votedFor === v.cand],
        ],
      },
      {
        title: "The votes come back",
        plan(ctx, v) { v.l = waitLeader(ctx, v); ctx.runFor(5); const st = ctx.state(); v.term = st.nodes.find((n) => n.id === v.l)?.term; v.votes = votesFor(st, v.l, v.term); },
        text: (v) => `<p>Each server grants <b>at most one vote per term</b>, first come first served, and only to a candidate whose log is at least as up to date as its own (§5.4.1).</p>
          <p>With votes from a majority (${v.votes} of 5, counting its own; 3 are enough), ${N(v.l)} becomes <b>leader</b> for term ${v.term}. Two majorities of the same cluster always share a server, and that server votes only once per term, so there can never be two leaders in the same term (<i>Election Safety</i>).</p>${missed(v)}`,
        watch: (v) => `${Nc(v.l)} filled in green, without a timer: leaders do not time out. The "voted" line under each node says whom it voted for.`,
        expect: (v, q) => [
          [`node ${v.l} is leader of term ${v.term}`, q.leader() === v.l && q.node(v.l).term === v.term],
          [`a majority voted for node ${v.l}`, votesFor(q.st, v.l, v.term) >= 3],
        ],
      },
      {
        title: "Heartbeats hold the leadership",
        plan(ctx) { ctx.runFor(300); },
        text: (v) => `<p>The new leader first appends an empty <b>no-op entry</b> of its own term at index 1 and sends it with <b>AppendEntries</b>; once a majority stores it, it is committed, and the leader knows which earlier entries are committed too (§5.4.2, §8).</p>
          <p>Then, every 50 ms, the leader sends a <b>heartbeat</b>. Every message from the current leader restarts the followers' election timers, so as long as the leader is alive and reachable, nobody campaigns.</p>`,
        watch: () => `The arcs refilling each time a heartbeat (grey dot) arrives, and in the LOGS panel the first entry, coloured by its term, drawn filled: committed on every node.`,
        expect: (v, q) => [
          [`node ${v.l} is still the leader of term ${v.term}`, q.leader() === v.l && q.st.nodes.every((n) => n.term === v.term)],
          ["the no-op at index 1 is committed everywhere", q.st.nodes.every((n) => n.commitIndex >= 1 && termAt(n, 1) === v.term && n.log[0]?.command === "noop")],
        ],
      },
      {
        title: "A client writes",
        plan(ctx, v) {
          v.op = ctx.act("put", "x", "1", 1);
          const o = waitOp(ctx, v, v.op);
          v.attempts = o?.attempts;
          ctx.runFor(60);
          const st = ctx.full();
          const leader = st.nodes.find((n) => n.id === v.l);
          v.putAt = leader?.log.find((e) => e.command.startsWith("put x=1"))?.index;
          v.entries = leader?.log.filter((e) => e.command !== "noop").length;
        },
        text: (v) => `<p>Client c1 sends <code>put x=1</code>. Only the leader accepts writes: a follower that gets a request answers with the leader it knows, and the client tries there${v.attempts > 1 ? ` (this request took ${v.attempts} attempts)` : ""}.</p>
          <p>The leader appends <code>put x=1</code> at index ${v.putAt} (a dashed cell: not committed yet) and replicates it. A client's first write also opens its <b>session</b>: the index of that entry becomes the client's id, so that a retried request can be recognised later (a retry of this first write carries the same random number, which the session remembers). As soon as a <b>majority</b> stores it, the leader advances its <b>commit index</b> (the ▲ marker), applies the command to its key-value store and answers the client. The followers learn the new commit index from the next message and apply it too.</p>${missed(v)}`,
        watch: () => `The History panel: the bar runs from the moment the client sent the request to the moment the answer arrived. Click a node to see x=1 in its key-value store.`,
        expect: (v, q) => [
          ["the put completed", q.op(v.op)?.status === "ok"],
          [`the put is one entry, committed at index ${v.putAt}`, v.entries === 1 && q.node(v.l).commitIndex >= v.putAt],
          ["the leader's store has x=1", q.node(v.l).kv.x === "1"],
        ],
      },
    ],
  },

  {
    id: "split-vote",
    title: "Split vote",
    blurb: "Four candidates at once: nobody wins, and randomized timeouts break the tie.",
    config: CONFIG({ nodes: 5, seed: 11, preVote: false }),
    steps: [
      {
        title: "Four timers fire at once",
        plan(ctx) { ctx.runFor(5); for (const id of [1, 2, 3, 4]) ctx.act("triggerElection", id); ctx.runFor(2); },
        text: () => `<p>PreVote is switched off in this run, to show the algorithm of the Raft paper itself.</p>
          <p>We force the election timers of ${list([1, 2, 3, 4])} to fire at the same instant. Each becomes a <b>candidate</b> for term 1 and votes for itself. A server votes only once per term, so four of the five votes are already spoken for: only ${N(5)} has a vote left to give.</p>`,
        watch: () => `Four nodes in amber (candidate), each sending RequestVote to the others.`,
        expect: (v, q) => [
          ["nodes 1 to 4 are candidates of term 1 that voted for themselves", [1, 2, 3, 4].every((id) => { const n = q.node(id); return n.role === "candidate" && n.term === 1 && n.votedFor === id; })],
          ["node 5 has not voted", q.node(5).votedFor === null],
        ],
      },
      {
        title: "Nobody wins",
        plan(ctx, v) {
          ctx.runFor(60);
          const st = ctx.state();
          v.tally = [1, 2, 3, 4].map((id) => [id, votesFor(st, id, 1)]);
          v.five = st.nodes.find((n) => n.id === 5).votedFor;
          v.gaveUp = [1, 2, 3, 4].filter((id) => st.nodes.find((n) => n.id === id).role === "follower");
        },
        text: (v) => `<p>The candidates refuse each other (each has already voted for itself), and ${N(5)} gives its vote to the request that reached it first: ${N(v.five)}'s.</p>
          <p>Tally for term 1: ${v.tally.map(([id, n]) => `${N(id)} ${n}`).join(", ")}. A candidate needs 3 of 5, so <b>nobody can win term 1</b>: a split vote.</p>
          <p>${v.gaveUp.length ? `A candidate that has been refused by a majority knows it cannot win this term, so it goes back to being a follower (${v.gaveUp.length === 4 ? "all four did" : `${list(v.gaveUp)} did`}). It stays in term 1 and keeps its vote. ` : ""}There is no negotiation: the cluster simply waits for the next election timer to run out.</p>`,
        watch: () => `The timer arcs: every node restarted its timer with a new random length when it last campaigned or voted.`,
        expect: (v, q) => [
          ["nobody is leader", q.leader() === null],
          ["every node voted in term 1", q.st.nodes.every((n) => n.term === 1 && n.votedFor !== null)],
          ["no node has a majority of the votes", [1, 2, 3, 4, 5].every((id) => votesFor(q.st, id, 1) < 3)],
          ["the tally is as shown", v.tally.every(([id, n]) => votesFor(q.st, id, 1) === n)],
        ],
      },
      {
        title: "Randomized timeouts break the tie",
        plan(ctx, v) {
          if (!ctx.stepUntil((st) => st.nodes.some((n) => n.term >= 2), 20000)) v.miss = "no timer ran out";
          v.first = ctx.state().nodes.find((n) => n.term >= 2)?.id;
          v.l = waitLeader(ctx, v, 4000);
          v.term = ctx.state().nodes.find((n) => n.id === v.l)?.term;
          ctx.runFor(80);
        },
        text: (v) => `<p>The first timer to run out was ${N(v.first)}'s${[1, 2, 3, 4].includes(v.first) ? "" : ", which was never a candidate"}. It starts term 2 before anybody else, and nobody has voted in term 2 yet, so ${v.l === v.first && v.term === 2 ? `it collects the votes: ${N(v.l)} is leader of term 2` : `after ${v.term - 1} rounds ${N(v.l)} is leader of term ${v.term}`}.</p>
          <p>This is why Raft randomizes election timeouts (§5.2): split votes can happen, but the spread of the timeouts makes a repeat unlikely. For that the range must be much wider than a message round trip.</p>${missed(v)}`,
        watch: () => `Try it again with Settings → a narrow election timeout range (for example 150–155 ms): split votes repeat much more often.`,
        expect: (v, q) => [
          [`node ${v.l} is the leader of term ${v.term}`, q.leader() === v.l && q.node(v.l).term === v.term],
          [`node ${v.first} started term 2 first`, v.first != null],
        ],
      },
    ],
  },

  {
    id: "leader-crash",
    title: "Leader crash",
    blurb: "The leader dies under load; a follower takes over and clients retry.",
    config: CONFIG({ nodes: 5, seed: 3 }),
    steps: [
      {
        title: "A healthy cluster under load",
        plan(ctx, v) {
          v.l = waitLeader(ctx, v);
          ctx.act("setWorkload", { clients: 2, intervalMs: 150, keys: 3, readFraction: 0.3 });
          ctx.runFor(700);
          v.term = ctx.state().nodes.find((n) => n.id === v.l)?.term;
        },
        text: (v) => `<p>${Nc(v.l)} leads term ${v.term}. Two clients send a steady stream of puts, appends and gets to it.</p>
          <p>Reads go through <b>ReadIndex</b>: the leader notes its commit index, confirms with a round of heartbeats that a majority still follows it, and answers once it has applied up to that index. So a read never returns stale data, and reads do not have to go through the log.</p>`,
        watch: () => `The History panel: each bar is one request, from sending to answer.`,
        expect: (v, q) => [
          [`node ${v.l} leads term ${v.term}`, q.leader() === v.l],
          ["client operations completed", q.history().filter((o) => o.status === "ok").length >= 3],
        ],
      },
      {
        title: "The leader crashes",
        plan(ctx, v) {
          ctx.act("crash", v.l);
          const st = ctx.full();
          v.commit = Math.max(...st.nodes.map((n) => n.commitIndex));
          v.crashedLog = st.nodes.find((n) => n.id === v.l).log.map((e) => [e.index, e.term]);
          ctx.runFor(60);
        },
        text: (v) => `<p>${Nc(v.l)} crashes. Everything it had only in memory is gone; its current term, its vote and its log were written to disk, and survive (its row in the LOGS panel is what its disk holds).</p>
          <p>Requests that were waiting for it stay pending: their bars in the History panel keep growing. No more heartbeats arrive, so the followers' election timers run down.</p>`,
        watch: () => `The timer arcs on the four survivors.`,
        expect: (v, q) => [
          [`node ${v.l} is down`, !q.node(v.l).up],
          ["there is no leader yet", q.leader() === null],
        ],
      },
      {
        title: "A new leader",
        plan(ctx, v) {
          v.n = waitLeader(ctx, v, 3000, [v.l]);
          const st = ctx.state();
          v.t2 = st.nodes.find((n) => n.id === v.n)?.term;
          v.votes = votesFor(st, v.n, v.t2);
          ctx.runFor(30);
        },
        text: (v) => `<p>The first survivor whose timer ran out campaigned, and ${N(v.n)} won term ${v.t2} with ${v.votes} votes. A majority is counted over the <i>whole</i> cluster: 3 of 5, the crashed node included.</p>
          <p>Only a server whose log is at least as up to date as a majority's can win (§5.4.1). Every committed entry is stored on a majority, and any two majorities overlap, so the new leader already has every committed entry (<i>Leader Completeness</i>): here, everything up to index ${v.commit}.</p>${missed(v)}`,
        watch: (v) => `Compare ${N(v.n)}'s row in the LOGS panel with the others: nothing committed is missing.`,
        expect: (v, q) => [
          [`node ${v.n} leads term ${v.t2}, after term ${v.term}`, q.leader() === v.n && v.t2 > v.term],
          [`a majority voted for node ${v.n}`, v.votes >= 3],
          [`node ${v.n} has every entry committed before the crash`, v.crashedLog.filter(([i]) => i <= v.commit).every(([i, t]) => termAt(q.node(v.n), i) === t || i <= q.node(v.n).snapshotIndex)],
        ],
      },
      {
        title: "Clients find the new leader",
        plan(ctx) { ctx.runFor(900); },
        text: () => `<p>A client that gets no answer within 500 ms gives up on that attempt and retries at another server; a follower answers with a hint naming the leader it knows.</p>
          <p>A retried command might already have been committed before the crash. Each client numbers its requests within its session, and the state machine remembers the last number it applied per session, so a retried <code>append</code> is applied at most once.</p>`,
        watch: () => `Pending bars finishing, some after more than one attempt (hover a bar to see).`,
        expect: (v, q) => [
          ["an operation completed after a retry", q.history().some((o) => o.status === "ok" && o.attempts > 1 && o.completedAt > q.st.now - 1000)],
          ["operations complete again", q.history().some((o) => o.status === "ok" && o.invokedAt > q.st.now - 600)],
        ],
      },
      {
        title: "The old leader comes back",
        plan(ctx, v) { ctx.act("restart", v.l); ctx.runFor(700); },
        text: (v) => `<p>${Nc(v.l)} restarts from its disk, as a follower of its old term ${v.term}. The first message from ${N(v.n)} carries the higher term ${v.t2}, which ${N(v.l)} adopts at once (§5.1).</p>
          <p>The leader finds where ${N(v.l)}'s log ends and sends what is missing; an uncommitted entry from the old term, if there was one, would be overwritten.</p>`,
        watch: (v) => `${Nc(v.l)}'s row catching up, and the leader's view of it (right of the row): "replicate", with its match index.`,
        expect: (v, q) => [
          [`node ${v.l} is a follower of node ${v.n} in term ${v.t2}`, q.node(v.l).up && q.node(v.l).role === "follower" && q.node(v.l).term === v.t2 && q.node(v.l).leader === v.n],
          [`node ${v.l} caught up`, q.node(v.l).commitIndex >= q.node(v.n).commitIndex - 3],
        ],
      },
    ],
  },

  {
    id: "stale-leader",
    title: "Partitioned old leader rejoins",
    blurb: "A leader is cut off, the majority moves on, and the stale leader learns it is out of date.",
    config: CONFIG({ nodes: 5, seed: 21, checkQuorum: false }),
    steps: [
      {
        title: "A leader and a write",
        plan(ctx, v) { v.l = waitLeader(ctx, v); v.op = ctx.act("put", "x", "1", 1); waitOp(ctx, v, v.op); ctx.runFor(40); v.t = ctx.state().nodes.find((n) => n.id === v.l)?.term; },
        text: (v) => `<p>${Nc(v.l)} is leader of term ${v.t}, and client c1 has written <code>x=1</code> through it.</p>
          <p>CheckQuorum is switched off in this run (as in the Raft paper): a leader that stops hearing from its followers does not step down by itself.</p>`,
        watch: () => `All logs agree and are committed.`,
        expect: (v, q) => [
          [`node ${v.l} leads term ${v.t}`, q.leader() === v.l],
          ["x=1 is committed", q.op(v.op)?.status === "ok"],
        ],
      },
      {
        title: "The leader is cut off",
        plan(ctx, v) {
          const st = ctx.state();
          v.rest = others(st, v.l);
          ctx.act("partition", [[v.l], v.rest]);
          v.op2 = ctx.act("put", "x", "2", 1);
          ctx.runFor(80);
          const old = ctx.state().nodes.find((n) => n.id === v.l);
          v.k = old.lastIndex;
        },
        text: (v) => `<p>A network partition separates ${N(v.l)} from the other four. Its heartbeats no longer arrive, but nothing tells ${N(v.l)} so: it still believes it is the leader of term ${v.t}.</p>
          <p>Client c1 now writes <code>x=2</code> and sends it to ${N(v.l)}, the leader it knows. ${Nc(v.l)} appends it at index ${v.k} and tries to replicate it, but no follower answers: the entry cannot be committed, and the client waits.</p>`,
        watch: (v) => `The dotted links between the two groups carry nothing. ${Nc(v.l)}'s new entry at index ${v.k} stays dashed (uncommitted).`,
        expect: (v, q) => [
          [`node ${v.l} still calls itself leader of term ${v.t}`, q.node(v.l).role === "leader" && q.node(v.l).term === v.t],
          [`node ${v.l} holds an uncommitted entry at index ${v.k}`, q.node(v.l).lastIndex === v.k && q.node(v.l).commitIndex < v.k],
          ["the others do not have it", v.rest.every((id) => q.node(id).lastIndex < v.k)],
          ["the write x=2 is pending", q.op(v.op2)?.status === "pending"],
        ],
      },
      {
        title: "The majority moves on",
        plan(ctx, v) {
          v.n = waitLeader(ctx, v, 3000, [v.l]);
          v.t2 = ctx.state().nodes.find((n) => n.id === v.n)?.term;
          const o = waitOp(ctx, v, v.op2, 4000, "the write x=2 did not complete");
          ctx.runFor(50);
          v.attempts = o?.attempts;
          const st = ctx.full();
          v.at = st.nodes.find((n) => n.id === v.n).log.filter((e) => e.command.startsWith("put x=2")).map((e) => e.index).pop();
        },
        text: (v) => `<p>The four connected servers stop hearing from ${N(v.l)}, time out and elect ${N(v.n)} for term ${v.t2}. They are a majority, so the cluster stays available.</p>
          <p>Client c1 got no answer from ${N(v.l)} within 500 ms, so it retried at another server and found ${N(v.n)}${v.attempts ? ` (${v.attempts} attempts in all)` : ""}. <code>x=2</code> is committed there, at index ${v.at}.</p>
          <p>There are now <b>two leaders</b>, in different terms: ${N(v.l)} in term ${v.t} and ${N(v.n)} in term ${v.t2}. That is allowed, since Election Safety is about one term, and harmless: only the leader of term ${v.t2} can reach a majority, so only it can commit.</p>${missed(v)}`,
        watch: (v) => `Two different terms in the LOGS panel, and two nodes drawn as leader.`,
        expect: (v, q) => [
          [`node ${v.n} leads term ${v.t2}`, q.node(v.n).role === "leader" && q.node(v.n).term === v.t2 && v.t2 > v.t],
          [`node ${v.l} still leads term ${v.t}`, q.node(v.l).role === "leader" && q.node(v.l).term === v.t],
          ["x=2 completed after a retry", q.op(v.op2)?.status === "ok" && q.op(v.op2).attempts > 1],
          [`x=2 is committed on node ${v.n}`, q.node(v.n).commitIndex >= v.at],
        ],
      },
      {
        title: "Healing: the stale term loses",
        plan(ctx, v) { ctx.act("heal"); ctx.runFor(500); },
        text: (v) => `<p>The partition heals. The next heartbeat from ${N(v.n)} carries term ${v.t2}; a server that sees a higher term adopts it and becomes a follower at once (§5.1), so ${N(v.l)} steps down.</p>
          <p>Its log is then repaired by the leader: its uncommitted entry at index ${v.k} (term ${v.t}) conflicts with the leader's entry there, so it is deleted and replaced by the leader's entries (§5.3). Nothing a client was told had succeeded is lost: c1's <code>x=2</code> was acknowledged only once it was committed in term ${v.t2}.</p>`,
        watch: (v) => `${Nc(v.l)}'s row: the dashed cell at index ${v.k} is gone and its log matches the leader's.`,
        expect: (v, q) => [
          [`node ${v.l} is a follower in term ${v.t2}`, q.node(v.l).role === "follower" && q.node(v.l).term === v.t2],
          [`node ${v.l}'s entry at index ${v.k} was replaced by the leader's`, termAt(q.node(v.l), v.k) === termAt(q.node(v.n), v.k) && termAt(q.node(v.l), v.k) !== v.t],
          [`node ${v.l}'s log matches the leader's`, sameLog(q.node(v.l), q.node(v.n), 1, q.node(v.n).commitIndex)],
          ["every store has x=2", q.st.nodes.every((n) => n.kv.x === "2")],
        ],
      },
    ],
  },

  {
    id: "figure-8",
    title: "Figure 8: committing entries from older terms",
    blurb: "An entry stored on a majority is still overwritten — safely, because the leader never counted it as committed (Raft paper, Figure 8).",
    // as core/testdata/figure8.txt: no PreVote or CheckQuorum, one entry per AppendEntries
    config: CONFIG({ nodes: 5, seed: 8, preVote: false, checkQuorum: false, maxEntriesPerMessage: 1, latencyMs: [5, 5], diskLatencyMs: [1, 1] }),
    steps: [
      {
        title: "Setting the stage",
        plan(ctx, v) {
          v.a = waitLeader(ctx, v);
          const op = ctx.act("put", "x", "1", 1); waitOp(ctx, v, op);
          ctx.runUntil((st) => st.nodes.every((n) => n.commitIndex === n.lastIndex), 500);
          ctx.runFor(10);
          const st = ctx.state();
          v.t = st.nodes.find((n) => n.id === v.a)?.term;
          v.b = others(st, v.a)[0];
          v.cde = others(st, v.a, v.b);
        },
        text: (v) => `<p>Figure 8 of the Raft paper shows a trap: an entry can be stored on a majority of servers and still be overwritten later. This tour plays it out with the real simulator, ${N(v.a)} in the role of S1 and ${N(v.b)} as S2.</p>
          <p>PreVote and CheckQuorum are off, as in the paper; a leader sends one entry per AppendEntries, and every message takes exactly 5 ms, so that each step is visible.</p>
          <p>${Nc(v.a)} leads term ${v.t}; everything so far is committed.</p>`,
        watch: () => `The LOGS panel: one row per server, one column per log index; colour and number give the term.`,
        expect: (v, q) => [[`node ${v.a} leads term ${v.t}`, q.leader() === v.a], ["every entry is committed", q.st.nodes.every((n) => n.commitIndex === n.lastIndex)]],
      },
      {
        title: "(a) An entry reaches only two servers",
        plan(ctx, v) {
          ctx.act("partition", [[v.a, v.b], v.cde]);
          v.op = ctx.act("put", "y", "1", 1);
          const before = ctx.state().nodes.find((n) => n.id === v.a).lastIndex;
          v.k = before + 1;
          // wait until both hold the entry on disk, then crash both
          if (!ctx.runUntil((st) => [v.a, v.b].every((id) => st.nodes.find((n) => n.id === id).durableIndex >= v.k), 1500)) v.miss = `the entry did not reach node ${v.b}`;
          ctx.act("crash", v.a); ctx.act("crash", v.b);
          ctx.runFor(20);
        },
        text: (v) => `<p>A partition separates ${list([v.a, v.b])} from ${list(v.cde)}, and client c1 writes <code>y=1</code>. ${Nc(v.a)} appends it at index ${v.k} in term ${v.t} and replicates it to ${N(v.b)} only: 2 of 5, <b>not committed</b>.</p>
          <p>Then ${N(v.a)} and ${N(v.b)} crash. The entry survives on their disks.</p>${missed(v)}`,
        watch: (v) => `Index ${v.k}: dashed (uncommitted) term-${v.t} cells on ${N(v.a)} and ${N(v.b)}, nothing on the others.`,
        expect: (v, q) => [
          [`nodes ${v.a} and ${v.b} hold y=1 at index ${v.k} in term ${v.t}, uncommitted`, [v.a, v.b].every((id) => termAt(q.node(id), v.k) === v.t && q.node(id).commitIndex < v.k)],
          [`nodes ${v.cde.join(", ")} do not`, v.cde.every((id) => q.node(id).lastIndex < v.k)],
        ],
      },
      {
        title: "(b) A leader that never saw it",
        plan(ctx, v) {
          ctx.act("heal");
          // stop at the very event that makes one of the majority leader
          if (!ctx.stepUntil((st) => v.cde.includes(leaderOf(st)), 50000)) v.miss = "no new leader was elected";
          v.c = leaderOf(ctx.state());
          v.t2 = ctx.state().nodes.find((n) => n.id === v.c)?.term;
          v.de = v.cde.filter((id) => id !== v.c);
          // cut it off before its first AppendEntries arrives, let its own entry reach its disk, then crash it
          ctx.act("partition", [[v.c], v.de]);
          if (!ctx.runUntil((st) => { const c = st.nodes.find((n) => n.id === v.c); return c.durableIndex >= v.k; }, 100)) v.miss = `node ${v.c}'s entry did not reach its disk`;
          ctx.act("crash", v.c);
          ctx.runFor(25); // what it sent dies on the cut links
          ctx.act("heal");
          ctx.runFor(5);
        },
        text: (v) => `<p>${listC(v.cde)} are a majority, so they elect ${N(v.c)} for term ${v.t2} (S5 in the figure). Its log does not have <code>y=1</code>.</p>
          <p>As a new leader it appends a no-op entry of its own term at index ${v.k}: a different entry at the same index. We cut it off the moment it wins, so that no follower receives the entry, and crash it once the entry is on its disk.</p>
          <p>Index ${v.k} now holds a term-${v.t} entry on ${list([v.a, v.b])} and a term-${v.t2} entry on ${N(v.c)}. Neither is committed, and that is allowed.</p>${missed(v)}`,
        watch: (v) => `${Nc(v.c)}'s row: its entry at index ${v.k} has a different colour from ${N(v.a)}'s.`,
        expect: (v, q) => [
          [`node ${v.c} holds a term-${v.t2} entry at index ${v.k}`, termAt(q.node(v.c), v.k) === v.t2 && !q.node(v.c).up],
          [`nodes ${v.de.join(" and ")} have nothing at index ${v.k}`, v.de.every((id) => q.node(id).lastIndex < v.k)],
        ],
      },
      {
        title: "(c) The old entry on a majority, not committed",
        plan(ctx, v) {
          ctx.act("restart", v.a);
          // only node a can win: b and c are down, and d, e lack index k
          v.triesA = campaignUntilLeader(ctx, v, v.a);
          v.t3 = ctx.state().nodes.find((n) => n.id === v.a)?.term;
          // stop at the event where the leader learns that a majority has index k
          const onMajority = (st) => { const a = st.nodes.find((n) => n.id === v.a); return a.role === "leader" && (a.progress ?? []).filter((p) => p.matchIndex >= v.k).length >= 2; };
          if (!ctx.stepUntil(onMajority, 20000)) v.miss = `entry ${v.k} did not reach a majority`;
          const a = ctx.state().nodes.find((n) => n.id === v.a);
          v.commit = a.commitIndex;
          v.matched = a.progress.filter((p) => p.matchIndex >= v.k).map((p) => p.id);
        },
        text: (v) => `<p>${Nc(v.a)} restarts; ${N(v.b)} and ${N(v.c)} stay down. ${Nc(v.a)}'s log ends at index ${v.k}, longer than those of ${list(v.de)}, so only it can win: we fire its election timer${v.triesA > 1 ? ` (${v.triesA} campaigns: the first, in a term the others have already passed, fails)` : ""} and it leads term ${v.t3}. It copies its term-${v.t} entry at index ${v.k} to ${list(v.matched)}.</p>
          <p>This is Figure 8(c): the entry is stored on a majority (${list([v.a, ...v.matched])}), and the leader knows it. Yet its commit index stays at <b>${v.commit}</b>${v.commit === 0 ? " (after its restart it does not even count the older entries as committed yet)" : ""}: a leader counts replicas only for entries of its <b>current term</b> (§5.4.2). An older entry is committed only indirectly, once an entry of the current term after it is on a majority: here ${N(v.a)}'s own no-op at index ${v.k + 1} (term ${v.t3}), which has not spread yet.</p>${missed(v)}`,
        watch: (v) => `The ▲ commit markers stay left of index ${v.k} although three rows have it; the green match bar of the leader's view reaches index ${v.k} for two followers.`,
        expect: (v, q) => [
          [`node ${v.a} leads term ${v.t3}`, q.leader() === v.a && v.t3 > v.t2],
          [`index ${v.k} (term ${v.t}) is stored on a majority`, q.st.nodes.filter((n) => termAt(n, v.k) === v.t).length >= 3],
          [`the leader's commit index is below ${v.k}`, q.node(v.a).commitIndex < v.k],
        ],
      },
      {
        title: "(d) Overwritten — safely",
        plan(ctx, v) {
          // S1 is cut off and crashes before its own entry spreads; S5 comes back
          ctx.act("partition", [[v.a], others(ctx.state(), v.a)]);
          ctx.act("crash", v.a);
          ctx.act("restart", v.c);
          v.triesC = campaignUntilLeader(ctx, v, v.c);
          v.t4 = ctx.state().nodes.find((n) => n.id === v.c)?.term;
          if (!ctx.runUntil((st) => v.de.every((id) => st.nodes.find((n) => n.id === id).commitIndex >= v.k), 3000)) v.miss ??= `node ${v.c}'s entry was not committed`;
          ctx.runFor(20);
        },
        text: (v) => `<p>${Nc(v.a)} is cut off and crashes before its term-${v.t3} entry reaches anyone, and ${N(v.c)} restarts. Its last entry has term ${v.t2}, newer than the term-${v.t} entry that ${list(v.de)} now end with, so when it campaigns${v.triesC > 1 ? ` (it too needs ${v.triesC} attempts)` : ""} they vote for it: ${N(v.c)} leads term ${v.t4}.</p>
          <p>It replicates <i>its</i> entry at index ${v.k}, and the followers delete their term-${v.t} entry there and take the leader's (Log Matching). An entry that was stored on a majority has been <b>overwritten</b> — Figure 8(d).</p>
          <p>This is safe only because ${N(v.a)} never counted it as committed: no client was told that <code>y=1</code> succeeded. Client c1 is still waiting, and will retry. Had ${N(v.a)} committed the entry by counting replicas, a committed entry would now be lost. The Correctness card confirms that every safety property held.</p>${missed(v)}`,
        watch: (v) => `Index ${v.k} on ${list(v.de)} changing colour from term ${v.t} to term ${v.t2}.`,
        expect: (v, q) => [
          [`node ${v.c} leads term ${v.t4}`, q.leader() === v.c],
          [`index ${v.k} now holds node ${v.c}'s term-${v.t2} entry on nodes ${v.de.join(" and ")}, committed`, v.de.every((id) => termAt(q.node(id), v.k) === v.t2 && q.node(id).commitIndex >= v.k)],
          ["y=1 was never acknowledged", q.op(v.op)?.status === "pending"],
          ["every safety property held", q.check().ok],
        ],
      },
      {
        title: "Everyone converges",
        plan(ctx, v) {
          ctx.act("heal");
          ctx.act("restart", v.a); ctx.act("restart", v.b);
          waitOp(ctx, v, v.op, 4000, "y=1 did not complete");
          ctx.runFor(500);
        },
        text: (v) => `<p>The network heals and ${N(v.a)} and ${N(v.b)} restart as followers. Their term-${v.t} entry at index ${v.k} conflicts with the leader's, so it is replaced too, and all five logs end up identical.</p>
          <p>Client c1 retried <code>y=1</code>; it was committed in a later term, at a later index, and only then acknowledged. The other branch of the figure, (e), is what the rule buys: had ${N(v.a)} stored an entry of its own term ${v.t3} on a majority before crashing, ${N(v.c)} could never have been elected, because a majority would have a log ending in a newer term than its own.</p>`,
        watch: () => `All rows the same colour at every index; y=1 in every store (click a node).`,
        expect: (v, q) => [
          ["every log matches the leader's", q.st.nodes.every((n) => n.up && sameLog(n, q.node(v.c), Math.max(n.snapshotIndex, q.node(v.c).snapshotIndex) + 1, q.node(v.c).commitIndex))],
          ["y=1 completed and is in every store", q.op(v.op)?.status === "ok" && q.st.nodes.every((n) => n.kv.y === "1")],
        ],
      },
    ],
  },

  {
    id: "log-repair",
    title: "Repairing a far-behind follower",
    blurb: "A stale leader with conflicting entries rejoins; fast back-off finds the divergence in one round trip.",
    config: CONFIG({ nodes: 5, seed: 5 }),
    steps: [
      {
        title: "Load on a healthy cluster",
        plan(ctx, v) { v.l = waitLeader(ctx, v); ctx.act("setWorkload", { clients: 2, intervalMs: 40, keys: 4, readFraction: 0 }); ctx.runFor(400); v.t = ctx.state().nodes.find((n) => n.id === v.l)?.term; },
        text: (v) => `<p>${Nc(v.l)} leads term ${v.t}. Two clients keep writing.</p>`,
        watch: () => `The logs growing in step.`,
        expect: (v, q) => [[`node ${v.l} leads term ${v.t}`, q.leader() === v.l]],
      },
      {
        title: "Isolate the leader",
        plan(ctx, v) {
          const st = ctx.state();
          ctx.act("partition", [[v.l], others(st, v.l)]);
          ctx.runFor(1500);
          const s2 = ctx.state();
          const old = s2.nodes.find((n) => n.id === v.l);
          v.oldLast = old.lastIndex; v.oldCommit = old.commitIndex;
          v.b = leaderOf({ nodes: s2.nodes.filter((n) => n.id !== v.l) });
          v.t2 = s2.nodes.find((n) => n.id === v.b)?.term;
          v.bLast = s2.nodes.find((n) => n.id === v.b)?.lastIndex;
          // the first index where the two logs disagree
          const full = ctx.full(), a = full.nodes.find((n) => n.id === v.l), b = full.nodes.find((n) => n.id === v.b);
          v.div = v.oldCommit + 1;
          while (v.div <= v.oldLast && termAt(a, v.div) === termAt(b, v.div)) v.div++;
        },
        text: (v) => `<p>${Nc(v.l)} is partitioned away. Requests that still reach it get appended in term ${v.t} but never committed (dashed): it cannot reach a majority. Meanwhile the majority elects ${N(v.b)}, which commits many entries in term ${v.t2}.</p>
          <p>${Nc(v.l)}'s log ends at index ${v.oldLast}, committed (as far as it knows) up to ${v.oldCommit}; ${N(v.b)}'s ends at ${v.bLast}. From index ${v.div} on, the two logs disagree: ${v.oldLast - v.div + 1 === 1 ? `${N(v.l)}'s entry there was` : `${N(v.l)}'s ${v.oldLast - v.div + 1} entries from there were`} never stored by a majority.</p>`,
        watch: (v) => `Row ${v.l}: a tail of dashed term-${v.t} cells; the other rows: a long run in another colour.`,
        expect: (v, q) => [
          [`node ${v.l} holds entries from index ${v.div} on that node ${v.b} does not`, v.div <= v.oldLast && termAt(q.node(v.l), v.div) !== termAt(q.node(v.b), v.div)],
          [`node ${v.b} leads term ${v.t2}`, q.node(v.b).role === "leader" && q.node(v.b).term === v.t2 && v.t2 > v.t],
          [`node ${v.b} is far ahead`, v.bLast >= v.oldLast + 10],
        ],
      },
      {
        title: "Another leader change",
        plan(ctx, v) {
          ctx.act("setWorkload", { clients: 0 });
          ctx.runFor(300);
          ctx.act("crash", v.b);
          v.c = waitLeader(ctx, v, 3000, [v.l, v.b]);
          v.t3 = ctx.state().nodes.find((n) => n.id === v.c)?.term;
          ctx.runFor(100);
          v.cLast = ctx.state().nodes.find((n) => n.id === v.c)?.lastIndex;
        },
        text: (v) => `<p>The clients stop, and ${N(v.b)} crashes too. The three remaining servers of the majority elect ${N(v.c)} for term ${v.t3}. Its log has everything ${N(v.b)} committed, ending at index ${v.cLast}.</p>
          <p>${Nc(v.c)} has never talked to ${N(v.l)}: it knows nothing about ${N(v.l)}'s log.</p>`,
        watch: (v) => `The leader's view of ${N(v.l)} at the right of its row: "probe", nothing matched.`,
        expect: (v, q) => [
          [`node ${v.c} leads term ${v.t3}`, q.node(v.c).role === "leader" && v.t3 > v.t2],
          [`node ${v.c} has all of node ${v.b}'s committed entries`, q.node(v.c).lastIndex >= v.bLast - 2],
        ],
      },
      {
        title: "Heal: find where the logs diverge",
        plan(ctx, v) {
          ctx.events();
          ctx.act("heal");
          const caught = (st) => { const c = st.nodes.find((n) => n.id === v.c), p = (c?.progress ?? []).find((x) => x.id === v.l); return p && p.matchIndex >= v.oldCommit; };
          if (!ctx.stepUntil(caught, 20000)) v.miss = `the leader did not find a match on node ${v.l}`;
          const lines = ctx.events().filter((e) => e.kind === "deliver");
          const rejects = lines.filter((e) => new RegExp(`^${v.l}->${v.c} AppendEntriesResponse .*reject`).test(e.text));
          v.rejects = rejects.length;
          const m = rejects[0] && /reject prev=(\d+) hint=(\d+)\/(\d+)/.exec(rejects[0].text);
          if (m) { v.probe = Number(m[1]); v.hintIndex = Number(m[2]); v.hintTerm = Number(m[3]); }
          const sent = lines.filter((e) => new RegExp(`^${v.c}->${v.l} AppendEntries `).test(e.text)).map((e) => /prev=(\d+)\/(\d+)/.exec(e.text)).filter(Boolean);
          if (sent.length) { v.probeTerm = Number(sent[0][2]); v.prevOk = Number(sent[sent.length - 1][1]); }
          const p = ctx.state().nodes.find((n) => n.id === v.c).progress.find((x) => x.id === v.l);
          v.match = p.matchIndex;
          ctx.runFor(2);
        },
        text: (v) => `<p>The partition heals; ${N(v.l)} sees term ${v.t3} and becomes a follower of ${N(v.c)}. The leader knows nothing of ${N(v.l)}'s log, so it <b>probes</b>: its AppendEntries names the entry just before the ones it carries (index ${v.probe}, term ${v.probeTerm}), and a follower accepts only if it holds exactly that entry (the consistency check of §5.3). ${v.probe > v.oldLast ? `${Nc(v.l)}'s log ends at index ${v.oldLast}` : `${Nc(v.l)}'s entry there has another term`}: it <b>rejects</b>.</p>
          <p>Stepping back one entry per rejection would take ${v.probe - v.prevOk} round trips here. Instead the rejection carries a hint: ${N(v.l)}'s last index whose term is at most the probe's (index ${v.hintIndex}, term ${v.hintTerm}). The leader jumps back to its own last entry of a term no later than ${v.hintTerm}, index ${v.prevOk}, and sends everything after it. ${Nc(v.l)} accepts: it deletes its conflicting term-${v.t} ${v.oldLast - v.prevOk === 1 ? "entry" : "entries"} after index ${v.prevOk} and takes the leader's, up to index ${v.match}. ${v.rejects === 1 ? "One rejection" : `${v.rejects} rejections`} in all.</p>${missed(v)}`,
        watch: (v) => `${Nc(v.l)}'s row, now in the leader's colours, and the leader's view of it at the right: m (match index) ${v.match}.`,
        expect: (v, q) => [
          [`node ${v.l} follows node ${v.c} in term ${v.t3}`, q.node(v.l).term === v.t3 && q.node(v.l).role === "follower"],
          ["the leader's probe was rejected with a hint", v.rejects >= 1 && v.hintIndex != null],
          ["one or two round trips found the match", v.rejects <= 2 && v.prevOk === v.div - 1],
          [`node ${v.l} holds the leader's entries up to index ${v.match}`, sameLog(q.node(v.l), q.node(v.c), Math.max(q.node(v.l).snapshotIndex, q.node(v.c).snapshotIndex) + 1, v.match)],
        ],
      },
      {
        title: "Everyone in line again",
        plan(ctx, v) {
          ctx.act("restart", v.b);
          const done = (st) => { const c = st.nodes.find((n) => n.id === v.c); return st.nodes.every((n) => n.lastIndex === c.lastIndex && n.commitIndex === c.commitIndex); };
          if (!ctx.runUntil(done, 3000)) v.miss = "the logs did not converge";
          ctx.runFor(100);
        },
        text: (v) => `<p>${Nc(v.l)} learns the commit index from the next message and applies what it was missing. ${Nc(v.b)}, the crashed leader of term ${v.t2}, restarts too; it lacks only what was committed after it crashed, and gets it the same way.</p>
          <p>The leader now sees every follower in <b>replicate</b> state: new entries are sent back to back (pipelining, with a bounded number in flight) instead of waiting for each answer. All five logs are identical.</p>`,
        watch: () => `The logs lined up, and every row's ▲ commit marker at the same index.`,
        expect: (v, q) => [
          ["every log matches the leader's", q.st.nodes.every((n) => sameLog(n, q.node(v.c), Math.max(n.snapshotIndex, q.node(v.c).snapshotIndex) + 1, q.node(v.c).lastIndex))],
          ["the leader replicates to every follower", (q.node(v.c).progress ?? []).every((p) => p.state === "replicate")],
        ],
      },
    ],
  },

  {
    id: "snapshot",
    title: "Snapshot to a lagging follower",
    blurb: "The entries a follower needs were compacted away; the leader sends its state instead.",
    config: CONFIG({ nodes: 5, seed: 13, snapshotEvery: 20, snapshotChunkBytes: 256 }),
    steps: [
      {
        title: "A follower goes down",
        plan(ctx, v) {
          v.l = waitLeader(ctx, v);
          v.f = others(ctx.state(), v.l)[0];
          ctx.act("crash", v.f);
          ctx.act("setWorkload", { clients: 3, intervalMs: 50, keys: 4, readFraction: 0.2 });
          ctx.runFor(1500);
          const st = ctx.state();
          v.snap = st.nodes.find((n) => n.id === v.l)?.snapshotIndex;
          v.fLast = st.nodes.find((n) => n.id === v.f)?.lastIndex;
        },
        text: (v) => `<p>${Nc(v.f)} crashes while three clients keep writing to leader ${N(v.l)}.</p>
          <p>In this run every server takes a <b>snapshot</b> of its key-value state every 20 applied entries and discards the log up to there (§7, log compaction). The hatched block at the start of each row is the compacted prefix; the purple bar marks its end (${N(v.l)}: index ${v.snap}).</p>`,
        watch: (v) => `${Nc(v.f)}'s short log, and the hatched snapshot blocks growing on the others.`,
        expect: (v, q) => [
          [`node ${v.f} is down`, !q.node(v.f).up],
          [`the leader has compacted its log up to index ${v.snap}`, v.snap >= 20 && q.node(v.l).snapshotIndex >= v.snap],
          [`node ${v.f}'s log ends before that`, q.node(v.f).lastIndex < v.snap],
        ],
      },
      {
        title: "The entries are gone",
        plan(ctx, v) {
          ctx.act("snapshot", v.l);
          ctx.runFor(20);
          const st = ctx.state();
          v.snap = st.nodes.find((n) => n.id === v.l)?.snapshotIndex;
          v.fLast = st.nodes.find((n) => n.id === v.f)?.lastIndex;
        },
        text: (v) => `<p>We ask the leader to snapshot right now: its log starts after index ${v.snap}, but ${N(v.f)}'s ${v.fLast ? `ends at index ${v.fLast}` : "is empty"}. The entries ${N(v.f)} would need next no longer exist on the leader as log entries, only inside its snapshot.</p>`,
        watch: () => `The leader's row: the hatched snapshot block, then only the newest entries.`,
        expect: (v, q) => [[`the leader's log starts after index ${v.snap}`, q.node(v.l).snapshotIndex >= v.snap && v.snap > v.fLast + 1]],
      },
      {
        title: "InstallSnapshot",
        plan(ctx, v) {
          ctx.act("restart", v.f);
          const sending = (st) => st.inFlight.some((m) => m.kind === "InstallSnapshot" && Number(m.to) === v.f);
          if (!ctx.stepUntil(sending, 50000)) v.miss = "the leader did not send a snapshot";
          ctx.runFor(3);
          const st = ctx.state();
          v.state = st.nodes.find((n) => n.id === v.l)?.progress?.find((p) => p.id === v.f)?.state;
        },
        text: (v) => `<p>${Nc(v.f)} restarts. When the leader probes it, the entries it would have to send have been compacted, so its view of ${N(v.f)} switches to <b>snapshot</b> and it sends <b>InstallSnapshot</b> (purple) instead: its whole state machine — the keys and values, plus the client sessions so that retries stay exactly-once — in chunks of 256 bytes.</p>${missed(v)}`,
        watch: (v) => `The purple messages to ${N(v.f)}, and the leader's view of it: "snapshot".`,
        expect: (v, q) => [
          [`an InstallSnapshot is on its way to node ${v.f}`, q.st.inFlight.some((m) => m.kind === "InstallSnapshot" && Number(m.to) === v.f) || q.node(v.f).snapshotIndex >= v.snap],
          [`the leader's view of node ${v.f} is "snapshot"`, v.state === "snapshot"],
        ],
      },
      {
        title: "Installed",
        plan(ctx, v) {
          if (!ctx.runUntil((st) => (st.nodes.find((n) => n.id === v.f)?.snapshotIndex ?? 0) >= v.snap, 3000)) v.miss = "the follower did not install the snapshot";
          ctx.runFor(2);
          v.fSnap = ctx.state().nodes.find((n) => n.id === v.f)?.snapshotIndex;
        },
        text: (v) => `<p>With the last chunk, ${N(v.f)} replaces its state machine with the snapshot, discards the log entries the snapshot covers, and answers. Its snapshot boundary jumps to index ${v.fSnap}, and its key-value store is the leader's as of that index.</p>${missed(v)}`,
        watch: (v) => `${Nc(v.f)}'s row: the purple snapshot marker at index ${v.fSnap}. Click ${N(v.f)} to see its key-value store filled in.`,
        expect: (v, q) => [
          [`node ${v.f} installed a snapshot up to index ${v.fSnap} ≥ ${v.snap}`, q.node(v.f).snapshotIndex === v.fSnap && v.fSnap >= v.snap],
          [`node ${v.f}'s store is not empty`, Object.keys(q.node(v.f).kv).length > 0],
        ],
      },
      {
        title: "Back to normal replication",
        plan(ctx) { ctx.runFor(600); },
        text: (v) => `<p>After the snapshot's last index, the leader sends ordinary AppendEntries again, and ${N(v.f)} is back in <b>replicate</b> state, applying new entries with everyone else.</p>`,
        watch: (v) => `The leader's view of ${N(v.f)}: "replicate", with its match index following the others'.`,
        expect: (v, q) => [
          [`the leader replicates to node ${v.f}`, (q.node(v.l).progress ?? []).find((p) => p.id === v.f)?.state === "replicate"],
          [`node ${v.f} applies new entries`, q.node(v.f).appliedIndex > v.fSnap],
        ],
      },
    ],
  },

  {
    id: "read-index",
    title: "ReadIndex under a partition",
    blurb: "A read sent to a leader stuck in the minority does not complete — because it could be stale.",
    // as core/testdata/read_index.txt: without CheckQuorum the cut-off leader keeps believing it leads
    config: CONFIG({ nodes: 5, seed: 17, checkQuorum: false }),
    steps: [
      {
        title: "x = 1",
        plan(ctx, v) {
          v.l = waitLeader(ctx, v);
          v.op1 = putEverywhere(ctx, v, "x", "1", 1);
          ctx.runFor(10);
          v.t = ctx.state().nodes.find((n) => n.id === v.l)?.term;
        },
        text: (v) => `<p>${Nc(v.l)} leads term ${v.t}; client c1 wrote <code>x=1</code> through it, so c1 now knows ${N(v.l)} as the leader.</p>
          <p>CheckQuorum is off in this run: a leader cut off from the majority keeps believing it leads.</p>`,
        watch: () => `Every node's store has x=1 (click one to see).`,
        expect: (v, q) => [["x=1 is in every store", q.st.nodes.every((n) => n.kv.x === "1")], [`node ${v.l} leads term ${v.t}`, q.leader() === v.l]],
      },
      {
        title: "Cut off",
        plan(ctx, v) {
          const st = ctx.state();
          // a new client starts at node 1: keep node 1 on the majority side, so that it finds the new leader there
          v.b = others(st, v.l, 1)[0]; v.rest = others(st, v.l, v.b);
          ctx.act("partition", [[v.l, v.b], v.rest]);
          v.n = waitLeader(ctx, v, 3000, [v.l]);
          v.t2 = ctx.state().nodes.find((n) => n.id === v.n)?.term;
          ctx.runFor(20);
        },
        text: (v) => `<p>A partition leaves ${N(v.l)} with only ${N(v.b)}. The other three stop hearing from it, and elect ${N(v.n)} for term ${v.t2}.</p>
          <p>${Nc(v.l)} hears nothing of this: it still believes it leads term ${v.t}. There are two leaders, in different terms, and ${N(v.l)}'s store still says <code>x=1</code>.</p>${missed(v)}`,
        watch: (v) => `Two nodes drawn as leader; heartbeats crossing only the link between ${N(v.l)} and ${N(v.b)} on one side.`,
        expect: (v, q) => [
          [`node ${v.n} leads term ${v.t2}`, q.node(v.n).role === "leader" && q.node(v.n).term === v.t2 && v.t2 > v.t],
          [`node ${v.l} still leads term ${v.t}`, q.node(v.l).role === "leader" && q.node(v.l).term === v.t],
          ["node 1 is on the majority side", v.l !== 1 && v.b !== 1],
        ],
      },
      {
        title: "A read at the old leader; x = 2 at the new one",
        plan(ctx, v) {
          v.read = ctx.act("get", "x", 1);
          v.op2 = ctx.act("put", "x", "2", 2);
          waitOp(ctx, v, v.op2, 2000, "x=2 did not complete");
          ctx.runFor(30);
        },
        text: (v) => `<p>Client c1 asks ${N(v.l)}, the leader it knows, for <code>x</code>. At the same moment a new client, c2, finds the new leader ${N(v.n)} and writes <code>x=2</code> there; the write commits and is acknowledged.</p>
          <p>${Nc(v.l)} does not answer the read from its own store. With <b>ReadIndex</b> (dissertation §6.4) it records its commit index, then starts a round of heartbeats and waits until a <b>majority</b> has answered, which would prove that it was still the leader when the read arrived. Only ${N(v.b)} can answer: 2 of 5. The read waits.</p>
          <p>This is exactly why: its store says <code>x=1</code>, but <code>x=2</code> has been committed and acknowledged. Answering now would be a <b>stale read</b>: not linearizable, because the read would return after a write that completed before it, yet miss that write.</p>${missed(v)}`,
        watch: () => `Two bars in the History: c2's put completed, c1's get still growing.`,
        expect: (v, q) => [
          ["x=2 completed", q.op(v.op2)?.status === "ok"],
          [`node ${v.l} still leads term ${v.t} with x=1 in its store`, q.node(v.l).role === "leader" && q.node(v.l).kv.x === "1"],
          ["the read is pending", q.op(v.read)?.status === "pending"],
        ],
      },
      {
        title: "The read completes — with the new value",
        plan(ctx, v) { const o = waitOp(ctx, v, v.read, 6000, "the read did not complete"); v.out = o?.output; v.attempts = o?.attempts; ctx.runFor(40); },
        text: (v) => `<p>Client c1 got no answer within 500 ms, so it gave up on that attempt and retried at another server; a server that knows the leader points the client to it. On attempt ${v.attempts} it reached ${N(v.n)}, which confirmed its own leadership with a majority and answered.</p>
          <p>The read returns <code>${v.out ?? "nil"}</code>. ${Nc(v.l)} never answered it. The Correctness card checks the whole history for linearizability.</p>${missed(v)}`,
        watch: () => `The get bar closing; hover it to see the value and the number of attempts.`,
        expect: (v, q) => [
          ["the read returned 2", q.op(v.read)?.status === "ok" && q.op(v.read).output === "2"],
          ["after retrying", q.op(v.read).attempts > 1],
        ],
      },
      {
        title: "Heal",
        plan(ctx) { ctx.act("heal"); ctx.runFor(400); },
        text: (v) => `<p>The partition heals; ${N(v.l)} and ${N(v.b)} see term ${v.t2}, adopt it and catch up. Reads were never served by a server that could not prove it was still the leader.</p>`,
        watch: () => `All rows identical again.`,
        expect: (v, q) => [
          [`node ${v.l} follows node ${v.n} in term ${v.t2}`, q.node(v.l).role === "follower" && q.node(v.l).term === v.t2],
          ["every store has x=2", q.st.nodes.every((n) => n.kv.x === "2")],
        ],
      },
    ],
  },
  {
    id: "membership",
    title: "Adding and removing a server",
    blurb: "A new server joins as a learner, catches up, becomes a voter; then the leader removes itself and hands over.",
    // as core/testdata/membership.txt: one change at a time, learners first
    config: CONFIG({ nodes: 3, seed: 5 }),
    steps: [
      {
        title: "Three voters",
        plan(ctx, v) {
          v.l = waitLeader(ctx, v);
          v.op1 = putEverywhere(ctx, v, "x", "1", 1);
          v.t = ctx.state().nodes.find((n) => n.id === v.l)?.term;
        },
        text: (v) => `<p>Three servers, all <b>voters</b>: ${N(v.l)} leads term ${v.t}, and a write (<code>x=1</code>) commits once two of the three have it. The membership is itself an entry of the log: the Network card shows it under "Membership".</p>`,
        watch: () => `Membership: voters 1 2 3.`,
        expect: (v, q) => [["three voters", q.st.membership.voters.length === 3], ["x=1 is in every store", q.st.nodes.every((n) => n.kv.x === "1")]],
      },
      {
        title: "A new server joins as a learner",
        plan(ctx, v) {
          v.n = ctx.act("addNode");
          ctx.act("addLearner", v.n);
          ctx.runUntil(() => { const st = ctx.full(); return st.membership.learners.includes(v.n) && st.nodes.find((n) => n.id === v.n)?.kv.x === "1"; }, 2000) || (v.miss ??= "the learner did not catch up");
          ctx.runFor(50);
        },
        text: (v) => `<p>A fourth machine, ${N(v.n)}, starts empty. The leader appends a membership entry that adds it as a <b>learner</b> (dissertation §4.2.1): it receives the log like a follower, but it does not vote and does not count towards any majority.</p>
          <p>Why not a voter right away? With four voters a majority is three; while the new server is still copying the log it could not help commit anything, and one more failure would stall the cluster. As a learner it catches up first: its store already has <code>x=1</code>.</p>${missed(v)}`,
        watch: (v) => `${Nc(v.n)}'s log row filling up; its label says learner.`,
        expect: (v, q) => [
          [`node ${v.n} is a learner`, q.st.membership.learners.includes(v.n) && !q.st.membership.voters.includes(v.n)],
          [`node ${v.n} has x=1`, q.node(v.n)?.kv.x === "1"],
          ["still three voters", q.st.membership.voters.length === 3],
        ],
      },
      {
        title: "Promoted to voter",
        plan(ctx, v) {
          ctx.act("promote", v.n);
          ctx.runUntil(() => ctx.full().membership.voters.includes(v.n), 1000) || (v.miss ??= "the promotion did not commit");
          v.op2 = ctx.act("put", "x", "2", 1);
          waitOp(ctx, v, v.op2);
          ctx.runFor(50);
        },
        text: (v) => `<p>Caught up, ${N(v.n)} is promoted: another membership entry makes it a <b>voter</b>. A server uses the newest membership in its log as soon as it has the entry, committed or not, which is why only <b>one change at a time</b> is allowed: any majority of the old set and any majority of the new one then overlap, so two leaders can never be elected for one term.</p>
          <p>Four voters now: <code>x=2</code> committed once three of them had it.</p>${missed(v)}`,
        watch: () => `Membership: voters 1 2 3 4.`,
        expect: (v, q) => [
          ["four voters", q.st.membership.voters.length === 4 && q.st.membership.voters.includes(v.n)],
          ["x=2 completed", q.op(v.op2)?.status === "ok"],
        ],
      },
      {
        title: "The leader removes itself",
        plan(ctx, v) {
          ctx.act("removeMember", v.l);
          v.nl = waitLeader(ctx, v, 3000, [v.l]);
          ctx.runUntil(() => !ctx.full().membership.voters.includes(v.l), 1000) || (v.miss ??= "the removal did not commit");
          v.t2 = ctx.state().nodes.find((n) => n.id === v.nl)?.term;
          v.op3 = ctx.act("put", "x", "3", 2);
          waitOp(ctx, v, v.op3);
          ctx.runFor(50);
        },
        text: (v) => `<p>Now ${N(v.l)}, the leader, is removed. It keeps leading until the entry that removes it commits (it replicates the entry without counting itself), then steps down and hands leadership over with <b>TimeoutNow</b>, so the cluster does not wait for an election timeout: ${N(v.nl)} leads term ${v.t2}.</p>
          <p>${Nc(v.l)} has the entry that removes it in its log, so it knows it is no longer a member: it gets no more entries, and since only voters campaign, its election timer is off for good: it cannot disturb the others. Writes go on with three voters: <code>x=3</code> completed.</p>${missed(v)}`,
        watch: (v) => `${Nc(v.l)} labelled "not a member"; ${N(v.nl)} drawn as leader.`,
        expect: (v, q) => [
          [`node ${v.l} is not a member`, !q.st.membership.voters.includes(v.l) && !q.st.membership.learners.includes(v.l)],
          [`node ${v.l}'s election timer is off`, q.node(v.l).up && q.node(v.l).electionDeadline == null],
          [`node ${v.nl} leads term ${v.t2}`, q.leader() === v.nl && v.t2 > v.t],
          ["three voters, the new one among them", q.st.membership.voters.length === 3 && q.st.membership.voters.includes(v.n)],
          ["x=3 completed", q.op(v.op3)?.status === "ok"],
          ["the history is linearizable", q.check().ok],
        ],
      },
    ],
  },
];
