// Guided scenarios. Each step plans its actions on a scratch copy of the run
// (so conditions like "until a leader exists" can be found by simulating
// ahead), the page then plays the real run up to the step's end while the text
// says what to watch. Node ids are chosen at run time from what the cluster
// did, so the scripts hold for any seed; `v` carries names between steps.
//
// ctx: state(), leader(), act(op, ...args), runFor(ms), runUntil(pred, maxMs),
//      stepUntil(pred, maxEvents), op(id), now()

const others = (st, ...not) => st.nodes.map((n) => n.id).filter((id) => !not.includes(id));
const N = (id) => `<b class="nid">node ${id}</b>`;
const Nc = (id) => `<b class="nid">Node ${id}</b>`; // at the start of a sentence
const listC = (ids) => list(ids).replace(">node", ">Node");
const list = (ids) => ids.length <= 1 ? ids.map(N).join("") : ids.slice(0, -1).map(N).join(", ") + " and " + N(ids[ids.length - 1]);
const missed = (v) => (v.miss ? `<p class="muted small">(In this run that did not happen within the time the tour waited: ${v.miss}. Press Next to continue anyway, or try another seed.)</p>` : "");

function waitLeader(ctx, v, maxMs = 3000, not = null) {
  const ok = ctx.runUntil((st) => { const l = leaderOf(st); return l !== null && l !== not && st.nodes.filter((n) => n.up && n.leader === l).length >= Math.floor(st.nodes.length / 2); }, maxMs);
  if (!ok) v.miss = "no leader was elected";
  return leaderOf(ctx.state());
}

export function leaderOf(st) {
  let best = null;
  for (const n of st.nodes) if (n.up && n.role === "leader" && (!best || n.term > best.term)) best = n;
  return best ? best.id : null;
}

function waitOp(ctx, v, id, maxMs = 4000, what = "the operation did not complete") {
  const ok = ctx.runUntil(() => { const o = ctx.op(id); return o && o.status !== "pending"; }, maxMs);
  if (!ok) v.miss = what;
  return ctx.op(id);
}

export const SCENARIOS = [
  {
    id: "first-election",
    title: "First election",
    blurb: "How a cluster of followers chooses a leader, and how a write gets committed.",
    config: { nodes: 5, seed: 7 },
    steps: [
      {
        title: "Everyone starts as a follower",
        plan(ctx) { ctx.runFor(40); },
        text: () => `<p>Five servers start up as <b>followers</b> in term 0. There is no leader yet, so nobody sends heartbeats.</p>
          <p>Each follower runs an <b>election timer</b> with a timeout drawn at random between 150 and 300 ms of virtual time.</p>`,
        watch: () => `The grey arcs around the nodes: each one is a timer running down. They all run at a different pace.`,
      },
      {
        title: "A timer runs out",
        plan(ctx, v) {
          if (!ctx.runUntil((st) => st.nodes.some((n) => n.role === "precandidate" || n.role === "candidate"), 1000)) v.miss = "no timer fired";
          ctx.runFor(2);
          const st = ctx.state();
          v.c = st.nodes.find((n) => n.role === "precandidate" || n.role === "candidate")?.id ?? 1;
          v.pre = st.nodes.find((n) => n.id === v.c)?.role === "precandidate";
        },
        text: (v) => `<p>${Nc(v.c)}'s timer ran out first, so it stops waiting for a leader and campaigns.</p>
          ${v.pre ? `<p>This cluster uses <b>PreVote</b> (Ongaro's dissertation, §9.6): the node first asks everyone "would you vote for me in the next term?" without raising its own term. Only if a majority says yes does it become a real candidate. That way a server that was merely cut off cannot force a higher term on a healthy cluster when it comes back.</p>` : ""}
          <p>As a <b>candidate</b> it increments its term, votes for itself and sends <b>RequestVote</b> to every other server (§5.2).</p>${missed(v)}`,
        watch: (v) => `The messages leaving ${N(v.c)}: filled dots are requests, hollow dots are replies.`,
      },
      {
        title: "The votes come back",
        plan(ctx, v) { v.l = waitLeader(ctx, v); ctx.runFor(5); v.term = ctx.state().nodes.find((n) => n.id === v.l)?.term; },
        text: (v) => `<p>Each server grants <b>at most one vote per term</b>, first come first served, and only to a candidate whose log is at least as up to date as its own (§5.4.1). A vote is recorded on disk before it is sent, so a restart cannot make a server vote twice.</p>
          <p>With votes from a majority (3 of 5, counting its own), ${N(v.l ?? "?")} becomes <b>leader</b> for term ${v.term ?? "?"}. A majority is what makes this safe: two majorities always overlap, so two leaders can never be elected in the same term (<i>Election Safety</i>).</p>${missed(v)}`,
        watch: (v) => `${Nc(v.l ?? "?")} is filled in green and has no timer: leaders do not time out. The "voted" line under each node shows who got its vote.`,
      },
      {
        title: "Heartbeats hold the leadership",
        plan(ctx) { ctx.runFor(300); },
        text: (v) => `<p>The leader sends <b>AppendEntries</b> right away and then a heartbeat every 50 ms. Every message from the current leader resets the followers' election timers, so as long as the leader is alive and reachable nobody campaigns.</p>
          <p>A new leader also appends an empty entry of its own term to the log; once that entry is committed, the leader knows which entries before it are committed too (§5.4.2, §8).</p>`,
        watch: () => `The arcs refilling each time a heartbeat (grey dot) arrives, and the LOGS panel: the first entry, term-coloured, becomes filled (committed) once a majority stores it.`,
      },
      {
        title: "A client writes",
        plan(ctx, v) { v.op = ctx.act("put", "x", "1"); const o = waitOp(ctx, v, v.op); ctx.runFor(60); v.done = o?.status === "ok"; },
        text: (v) => `<p>A client sends <code>put x=1</code>. Only the leader accepts writes (a follower would redirect the client).</p>
          <p>The leader appends the command to its log (dashed cell: not committed yet) and replicates it with AppendEntries. As soon as a <b>majority</b> has stored it, the leader advances its <b>commit index</b> (the ▲ marker), applies the command to its key-value store and answers the client. Followers learn the new commit index from the next AppendEntries or heartbeat and apply it too.</p>
          ${v.done ? `<p>The bar in the History lane runs from the moment the client sent the request to the moment the answer arrived.</p>` : ""}${missed(v)}`,
        watch: () => `The dashed cell turning solid row by row, and the ▲ commit markers moving right. Click a node to see its key-value contents in the Inspector.`,
      },
    ],
  },

  {
    id: "split-vote",
    title: "Split vote",
    blurb: "Four candidates at once: nobody wins, and randomized timeouts break the tie.",
    config: { nodes: 5, seed: 11, preVote: false },
    steps: [
      {
        title: "Four timers fire at once",
        plan(ctx) { ctx.runFor(5); for (const id of [1, 2, 3, 4]) ctx.act("triggerElection", id); ctx.runFor(2); },
        text: () => `<p>PreVote is switched off in this run, to show the algorithm of the Raft paper itself.</p>
          <p>We force the election timers of ${list([1, 2, 3, 4])} to fire at the same instant. Each becomes a <b>candidate</b> for term 1 and votes for itself. A server votes only once per term, so four of the five votes are already spoken for: only ${N(5)} has a vote left to give.</p>`,
        watch: () => `Four nodes in amber (candidate), each sending RequestVote to the others.`,
      },
      {
        title: "Nobody wins",
        plan(ctx, v) {
          ctx.runFor(60);
          const st = ctx.state();
          v.tally = st.nodes.filter((n) => n.role === "candidate").map((c) => [c.id, st.nodes.filter((o) => o.votedFor === c.id && o.term === c.term).length]);
          v.leader = leaderOf(st);
        },
        text: (v) => `<p>The candidates refuse each other (they voted for themselves), and ${N(5)} gives its vote to whichever request reached it first.</p>
          <p>${v.tally?.length ? `Tally: ${v.tally.map(([id, n]) => `${Nc(id)} ${n}`).join(", ")}. ` : ""}A candidate needs 3 of 5, so <b>nobody can win term 1</b>: a split vote.${v.leader ? ` (In this run the timing still let ${N(v.leader)} through.)` : ""}</p>
          <p>The candidates now simply wait. There is no negotiation: each one's election timer is running again.</p>`,
        watch: () => `The "votes" line under each candidate, and the timer arcs that were restarted with new random lengths.`,
      },
      {
        title: "Randomized timeouts break the tie",
        plan(ctx, v) { v.l = waitLeader(ctx, v, 4000); v.term = ctx.state().nodes.find((n) => n.id === v.l)?.term; ctx.runFor(80); },
        text: (v) => `<p>Every candidate drew a <b>new random timeout</b> when it started campaigning. The first to expire starts term ${v.term ?? 2} before the others; the others have not voted in that term yet, so it collects the votes.</p>
          <p>${Nc(v.l ?? "?")} is leader of term ${v.term ?? "?"}${v.term > 2 ? ` (it took ${v.term - 1} rounds this time)` : ""}. This is why Raft randomizes election timeouts (§5.2): split votes can happen, but the spread of timeouts makes a repeat unlikely, and the timeout range should be much larger than a message round trip.</p>${missed(v)}`,
        watch: () => `Try it again with Settings → a narrow election timeout range (for example 150–155 ms): split votes repeat much more often.`,
      },
    ],
  },

  {
    id: "leader-crash",
    title: "Leader crash",
    blurb: "The leader dies under load; a follower takes over and clients retry.",
    config: { nodes: 5, seed: 3 },
    steps: [
      {
        title: "A healthy cluster under load",
        plan(ctx, v) { v.l = waitLeader(ctx, v); ctx.act("setWorkload", { clients: 2, intervalMs: 150, keys: 3, readFraction: 0.3 }); ctx.runFor(700); v.term = ctx.state().nodes.find((n) => n.id === v.l)?.term; },
        text: (v) => `<p>${Nc(v.l ?? "?")} leads term ${v.term ?? "?"}. Two clients send a steady stream of puts, appends and gets to it.</p>
          <p>Reads go through <b>ReadIndex</b>: the leader notes its commit index, confirms with a heartbeat round that a majority still follows it, and answers once it has applied up to that index, so a read never returns stale data, and reads do not have to go through the log.</p>`,
        watch: () => `The History panel: each bar is one request, from sending to answer.`,
      },
      {
        title: "The leader crashes",
        plan(ctx, v) { ctx.act("crash", v.l); ctx.runFor(60); },
        text: (v) => `<p>${Nc(v.l)} crashes. Everything it had only in memory is gone; its current term, its vote and its log were written to disk, and survive.</p>
          <p>Requests that were waiting for it stay pending: their bars in the History panel keep growing. No more heartbeats arrive, so the followers' election timers run down.</p>`,
        watch: () => `The timer arcs on the four survivors.`,
      },
      {
        title: "A new leader",
        plan(ctx, v) { v.n = waitLeader(ctx, v, 3000, v.l); v.t2 = ctx.state().nodes.find((n) => n.id === v.n)?.term; ctx.runFor(30); },
        text: (v) => `<p>The first survivor to time out campaigns, and ${N(v.n ?? "?")} wins term ${v.t2 ?? "?"} with votes from a majority of the <i>whole</i> cluster (3 of 5: the crashed node still counts in the size).</p>
          <p>Only a server whose log is at least as up to date as a majority's can win (§5.4.1). Every committed entry is stored on a majority, and any two majorities overlap, so the new leader already has every committed entry (<i>Leader Completeness</i>).</p>${missed(v)}`,
        watch: (v) => `Compare ${N(v.n ?? "?")}'s row in the LOGS panel with the others: nothing committed is missing.`,
      },
      {
        title: "Clients find the new leader",
        plan(ctx) { ctx.runFor(900); },
        text: (v) => `<p>Clients that were waiting time out and retry at another server; followers answer with a hint naming the leader they know.</p>
          <p>A retried command might already have been committed before the crash. Each client numbers its requests, and the state machine remembers the last number it applied per client (a <b>client session</b>), so a retried <code>append</code> is applied at most once.</p>`,
        watch: () => `Pending bars finishing, some with more than one attempt (hover a bar to see).`,
      },
      {
        title: "The old leader comes back",
        plan(ctx, v) { ctx.act("restart", v.l); ctx.runFor(700); },
        text: (v) => `<p>${Nc(v.l)} restarts from its disk, as a follower in its old term. The first message from ${N(v.n ?? "?")} carries the higher term ${v.t2 ?? ""}, which ${N(v.l)} adopts at once.</p>
          <p>The leader finds where ${N(v.l)}'s log diverges from its own and sends the missing entries; uncommitted entries from the old term, if any, are overwritten.</p>`,
        watch: (v) => `${Nc(v.l)}'s row catching up, and the leader's view of it (right of the row) going from probe to replicate.`,
      },
    ],
  },

  {
    id: "stale-leader",
    title: "Partitioned old leader rejoins",
    blurb: "A leader is cut off, the majority moves on, and the stale leader learns it is out of date.",
    config: { nodes: 5, seed: 21 },
    steps: [
      {
        title: "A leader and a write",
        plan(ctx, v) { v.l = waitLeader(ctx, v); v.op = ctx.act("put", "x", "1", 1); waitOp(ctx, v, v.op); ctx.runFor(40); v.t = ctx.state().nodes.find((n) => n.id === v.l)?.term; },
        text: (v) => `<p>${Nc(v.l ?? "?")} is leader of term ${v.t ?? "?"} and client 1 has written <code>x=1</code>.</p>`,
        watch: () => `All logs agree and are committed.`,
      },
      {
        title: "The leader is cut off",
        plan(ctx, v) { const st = ctx.state(); v.rest = others(st, v.l); ctx.act("partition", [[v.l], v.rest]); ctx.runFor(80); },
        text: (v) => `<p>A network partition separates ${N(v.l)} from the other four. Its heartbeats no longer arrive, but nothing tells ${N(v.l)} so: for now it still believes it is the leader of term ${v.t}.</p>`,
        watch: (v) => `The dotted links between the two groups carry nothing. ${Nc(v.l)} is still drawn as leader.`,
      },
      {
        title: "The majority moves on",
        plan(ctx, v) {
          v.n = waitLeader(ctx, v, 3000, v.l);
          v.t2 = ctx.state().nodes.find((n) => n.id === v.n)?.term;
          v.op2 = ctx.act("put", "x", "2", 2);
          const o = waitOp(ctx, v, v.op2, 4000);
          ctx.runFor(50);
          const st = ctx.state();
          const old = st.nodes.find((n) => n.id === v.l);
          v.oldRole = old.role; v.oldTerm = old.term; v.oldUncommitted = old.lastIndex > old.commitIndex;
          v.ok2 = o?.status === "ok";
        },
        text: (v) => `<p>The four connected servers stop hearing from ${N(v.l)}, time out and elect ${N(v.n ?? "?")} for term ${v.t2 ?? "?"}: they are a majority, so the cluster stays available.</p>
          <p>Client 2 writes <code>x=2</code>${v.ok2 ? ", and the write commits on the majority side" : ""}. ${v.oldUncommitted ? `Some request also reached ${N(v.l)}, which appended it but can never commit it: it cannot reach a majority (see its dashed cells).` : ""}</p>
          <p>${v.oldRole === "leader" ? `${N(v.l)} still calls itself leader of term ${v.oldTerm}.` : `With <b>CheckQuorum</b>, ${N(v.l)} noticed that it had not heard from a majority for a whole election timeout and stepped down on its own.`} ${v.oldTerm === v.t ? `Its term is still ${v.oldTerm}: with PreVote its own election attempts fail in the minority, so it does not inflate its term while isolated.` : `Its term is now ${v.oldTerm}.`}</p>${missed(v)}`,
        watch: (v) => `Two different terms in the LOGS panel: ${N(v.l)} in term ${v.oldTerm ?? "?"}, the majority in term ${v.t2 ?? "?"}.`,
      },
      {
        title: "Healing: the stale term loses",
        plan(ctx, v) { ctx.act("heal"); ctx.runFor(500); v.after = ctx.state().nodes.find((n) => n.id === v.l); },
        text: (v) => `<p>The partition heals. Any message ${N(v.l)} sends now carries its old term and is rejected; the answer, and the next heartbeat from ${N(v.n ?? "?")}, carry term ${v.t2 ?? "?"}. A server that sees a higher term adopts it and becomes a follower at once (§5.1).</p>
          <p>Its log is then repaired by the leader: entries it appended in the old term that were never committed are removed and replaced by the committed ones. Nothing a client was told had succeeded is lost.</p>
          <p>${Nc(v.l)} is now a ${v.after?.role ?? "follower"} in term ${v.after?.term ?? "?"}.</p>`,
        watch: (v) => `${Nc(v.l)}'s row: dashed cells from term ${v.t} disappear and its log matches the leader's.`,
      },
    ],
  },

  {
    id: "figure-8",
    title: "Figure 8: committing entries from older terms",
    blurb: "Why a leader never counts replicas of an entry from an earlier term (Raft paper, Figure 8).",
    config: { nodes: 5, seed: 8 },
    steps: [
      {
        title: "Setting the stage",
        plan(ctx, v) {
          v.a = waitLeader(ctx, v);
          const op = ctx.act("put", "x", "1", 1); waitOp(ctx, v, op); ctx.runFor(30);
          const st = ctx.state();
          v.t = st.nodes.find((n) => n.id === v.a)?.term;
          v.rest = others(st, v.a);
          v.b = v.rest[0];
          v.cde = v.rest.slice(1);
        },
        text: (v) => `<p>Figure 8 of the Raft paper shows a trap: an entry can be stored on a majority and still be overwritten later. This tour walks through the same situation with ${N(v.a ?? "?")} in the role of S1 and ${N(v.b ?? "?")} as S2.</p>
          <p>${Nc(v.a ?? "?")} leads term ${v.t ?? "?"}; everything so far is committed.</p>`,
        watch: () => `The LOGS panel: one row per server, one column per log index, colour and number give the term.`,
      },
      {
        title: "(a) An entry reaches only two servers",
        plan(ctx, v) {
          for (const id of v.cde) ctx.act("cutLink", v.a, id);
          const before = ctx.state().nodes.find((n) => n.id === v.a).lastIndex;
          ctx.act("put", "y", "1", 1);
          if (!ctx.runUntil((st) => { const a = st.nodes.find((n) => n.id === v.a), b = st.nodes.find((n) => n.id === v.b); return a.lastIndex > before && b.lastIndex >= a.lastIndex; }, 1500)) v.miss = `the entry did not reach node ${v.b}`;
          v.k = ctx.state().nodes.find((n) => n.id === v.a).lastIndex;
          ctx.act("crash", v.a); ctx.act("crash", v.b);
          ctx.runFor(20);
        },
        text: (v) => `<p>We cut the links from ${N(v.a)} to ${list(v.cde)}, and a client writes <code>y=1</code>. ${Nc(v.a)} appends it at index ${v.k} in term ${v.t} and manages to replicate it only to ${N(v.b)}: 2 of 5, <b>not committed</b>.</p>
          <p>Then ${N(v.a)} and ${N(v.b)} crash. The entry survives on their disks.</p>${missed(v)}`,
        watch: (v) => `Index ${v.k}: dashed (uncommitted) term-${v.t} cells on ${N(v.a)} and ${N(v.b)}, nothing on the others.`,
      },
      {
        title: "(b) A leader that never saw it",
        plan(ctx, v) {
          ctx.act("heal");
          // stop at the very event that makes one of them leader, before its first messages arrive
          if (!ctx.stepUntil((st) => { const l = leaderOf(st); return l !== null && l !== v.a; }, 50000)) v.miss = "no new leader was elected";
          v.c = leaderOf(ctx.state());
          v.t2 = ctx.state().nodes.find((n) => n.id === v.c)?.term;
          // drop what the new leader sent, so its own entry at index k stays on it alone, then crash it
          for (const m of ctx.state().inFlight) if (Number(m.from) === v.c && m.kind === "AppendEntries") ctx.act("dropMessage", m.id);
          ctx.act("crash", v.c);
          ctx.runFor(30);
          const cn = ctx.state().nodes.find((n) => n.id === v.c);
          v.cLast = cn.lastIndex;
          v.de = v.cde.filter((id) => id !== v.c);
        },
        text: (v) => `<p>${listC(v.cde)} are a majority, so they elect ${N(v.c ?? "?")} for term ${v.t2 ?? "?"} (like S5 in the figure). Its log does not have <code>y=1</code>.</p>
          <p>As a new leader it appends an entry of its own term at index ${v.k} — a different entry at the same index. We drop its AppendEntries by hand and crash it before anyone receives them.</p>
          <p>Index ${v.k} now holds a term-${v.t} entry on ${list([v.a, v.b])} and a term-${v.t2} entry on ${N(v.c)}. Neither is committed, and that is allowed.</p>${missed(v)}`,
        watch: (v) => `${Nc(v.c ?? "?")}'s row: its entry at index ${v.k} has a different colour from ${N(v.a)}'s.`,
      },
      {
        title: "(c) The old entry reaches a majority",
        plan(ctx, v) {
          ctx.act("restart", v.a); ctx.act("restart", v.b);
          v.l2 = waitLeader(ctx, v, 3000, v.c);
          v.t3 = ctx.state().nodes.find((n) => n.id === v.l2)?.term;
          ctx.runUntil((st) => st.nodes.filter((n) => n.up && n.lastIndex >= v.k && n.commitIndex >= v.k).length >= 3, 1500);
          ctx.runFor(30);
          const l2 = ctx.state().nodes.find((n) => n.id === v.l2);
          v.commit = l2?.commitIndex;
        },
        text: (v) => `<p>${Nc(v.a)} and ${N(v.b)} restart. Their logs end with a term-${v.t} entry, more up to date than those of ${list(v.de)}, so one of them, ${N(v.l2 ?? "?")}, wins term ${v.t3 ?? "?"}. It copies the term-${v.t} entry at index ${v.k} to the others: now it is stored on a majority.</p>
          <p>This is the moment of Figure 8(c). In the paper, the leader has replicated <i>only</i> the old entry. Had it counted that majority as a commit and then crashed, S5 — whose last entry has the higher term — could still have been elected with votes from S2, S3 and S4, and overwritten the entry everywhere (Figure 8(d)): a committed entry would be lost.</p>
          <p>Hence the rule (§5.4.2): a leader commits entries of its <b>current term</b> by counting replicas; older entries become committed only indirectly, together with a current-term entry after them. Here ${N(v.l2 ?? "?")}'s own entry at index ${v.k + 1} (term ${v.t3 ?? "?"}) travels with index ${v.k}; once a majority stores both, the commit index jumps past both (it is now ${v.commit ?? "?"}). From then on ${N(v.c)} cannot win an election: a majority has a log ending in a newer term (Figure 8(e)).</p>${missed(v)}`,
        watch: (v) => `The ▲ commit markers move past index ${v.k} only when index ${v.k + 1} (term ${v.t3 ?? "?"}) is on a majority.`,
      },
      {
        title: "(e) The other branch is erased",
        plan(ctx, v) { ctx.act("restart", v.c); ctx.runFor(600); },
        text: (v) => `<p>${Nc(v.c)} restarts with its term-${v.t2} entry at index ${v.k}. It can no longer win an election: a majority now has entries of term ${v.t3}. The leader's AppendEntries finds the conflict at index ${v.k} and ${N(v.c)} replaces the uncommitted entry with the committed one (<i>Log Matching</i>).</p>
          <p>Safety never depended on luck: an entry is committed only when no future leader can lack it.</p>`,
        watch: (v) => `${Nc(v.c)}'s row at index ${v.k} changing colour to term ${v.t}.`,
      },
    ],
  },

  {
    id: "log-repair",
    title: "Repairing a far-behind follower",
    blurb: "A stale leader with conflicting entries rejoins; fast back-off finds the divergence in a few round trips.",
    config: { nodes: 5, seed: 5 },
    steps: [
      {
        title: "Load on a healthy cluster",
        plan(ctx, v) { v.l = waitLeader(ctx, v); ctx.act("setWorkload", { clients: 2, intervalMs: 40, keys: 4, readFraction: 0 }); ctx.runFor(400); v.t = ctx.state().nodes.find((n) => n.id === v.l)?.term; },
        text: (v) => `<p>${Nc(v.l ?? "?")} leads term ${v.t ?? "?"}. Two clients write as fast as they can.</p>`,
        watch: () => `The logs growing in step.`,
      },
      {
        title: "Isolate the leader",
        plan(ctx, v) { const st = ctx.state(); ctx.act("partition", [[v.l], others(st, v.l)]); ctx.runFor(1500); const s2 = ctx.state(); const old = s2.nodes.find((n) => n.id === v.l); v.oldLast = old.lastIndex; v.oldCommit = old.commitIndex; v.n = leaderOf({ nodes: s2.nodes.filter((n) => n.id !== v.l) }); v.newLast = s2.nodes.find((n) => n.id === v.n)?.lastIndex; },
        text: (v) => `<p>${Nc(v.l)} is partitioned away. Clients that still send to it get their entries appended in term ${v.t} — never committed (dashed), since it cannot reach a majority. Meanwhile the majority elects ${N(v.n ?? "?")} and commits many entries in a newer term.</p>
          <p>${Nc(v.l)}'s log now ends at index ${v.oldLast}, committed only up to ${v.oldCommit}; the leader's is at ${v.newLast ?? "?"}. After index ${v.oldCommit} the two logs disagree.</p>`,
        watch: (v) => `Row ${v.l}: a tail of dashed term-${v.t} cells; the other rows: a longer run of another colour.`,
      },
      {
        title: "Heal: find where the logs diverge",
        plan(ctx, v) { ctx.act("setWorkload", { clients: 0, intervalMs: 40, keys: 4, readFraction: 0 }); ctx.act("heal"); ctx.runFor(250); },
        text: (v) => `<p>The partition heals and ${N(v.l)} becomes a follower of ${N(v.n ?? "?")}. The leader knows nothing about ${N(v.l)}'s log: it starts by <b>probing</b> at its own last index, and ${N(v.l)} rejects the AppendEntries because the entry before it does not match (the consistency check of §5.3).</p>
          <p>Stepping back one entry per rejection would take one round trip per entry. Instead the rejection carries a hint — the term of the conflicting entry and the first index ${N(v.l)} holds for that term, or where its log ends — and the leader jumps straight past the whole conflicting term (the optimization sketched at the end of §5.3).</p>`,
        watch: (v) => `The leader's view of ${N(v.l)} at the right of its row: "probe", with m (match index) and n (next index) jumping back in one or two steps, then "replicate".`,
      },
      {
        title: "Streaming the missing entries",
        plan(ctx) { ctx.runFor(600); },
        text: (v) => `<p>Once an AppendEntries matches, the follower deletes its conflicting suffix and the leader switches to <b>replicate</b>: it sends batches back to back (pipelining, with a bounded number in flight) instead of waiting for each answer.</p>
          <p>${Nc(v.l)}'s uncommitted term-${v.t} entries are gone; its log is identical to the leader's.</p>`,
        watch: () => `The logs lined up again, and every row's ▲ commit marker at the same index.`,
      },
    ],
  },

  {
    id: "snapshot",
    title: "Snapshot to a lagging follower",
    blurb: "The entries a follower needs were compacted away; the leader sends its state instead.",
    config: { nodes: 5, seed: 13, snapshotEvery: 20 },
    steps: [
      {
        title: "A follower goes down",
        plan(ctx, v) { v.l = waitLeader(ctx, v); v.f = others(ctx.state(), v.l)[0]; ctx.act("crash", v.f); ctx.act("setWorkload", { clients: 3, intervalMs: 50, keys: 4, readFraction: 0.2 }); ctx.runFor(1500); v.snap = ctx.state().nodes.find((n) => n.id === v.l)?.snapshotIndex; },
        text: (v) => `<p>${Nc(v.f)} crashes while three clients keep writing to leader ${N(v.l ?? "?")}.</p>
          <p>In this run every server takes a <b>snapshot</b> of its key-value state every 20 applied entries and discards the log up to there (§7, log compaction). The hatched block at the start of each row is the compacted prefix; the purple bar marks its end (${N(v.l ?? "?")}: index ${v.snap ?? "?"}).</p>`,
        watch: (v) => `${Nc(v.f)}'s short log, and the hatched snapshot blocks growing on the others.`,
      },
      {
        title: "The entries are gone",
        plan(ctx, v) { ctx.act("snapshot", v.l); ctx.runFor(20); const st = ctx.state(); v.snap = st.nodes.find((n) => n.id === v.l)?.snapshotIndex; v.fLast = st.nodes.find((n) => n.id === v.f)?.lastIndex; },
        text: (v) => `<p>We ask the leader to snapshot right now: its log starts after index ${v.snap}, but ${N(v.f)}'s log ends at ${v.fLast}. The entries in between no longer exist anywhere as log entries — only inside the snapshots.</p>`,
        watch: () => `The leader's row: nothing but the hatched snapshot block and the newest entries.`,
      },
      {
        title: "InstallSnapshot",
        plan(ctx, v) { ctx.act("restart", v.f); if (!ctx.runUntil((st) => (st.nodes.find((n) => n.id === v.f)?.snapshotIndex ?? 0) >= v.snap, 3000)) v.miss = "the follower did not install a snapshot"; ctx.runFor(30); },
        text: (v) => `<p>${Nc(v.f)} restarts. When the leader probes it, the index it would have to send from has been compacted, so its progress for ${N(v.f)} switches to <b>snapshot</b> and it sends <b>InstallSnapshot</b> (purple) carrying its state machine — the keys and values, plus the client sessions so that retries stay exactly-once.</p>
          <p>${Nc(v.f)} replaces its state with the snapshot, discards the log entries the snapshot covers, and answers.</p>${missed(v)}`,
        watch: (v) => `The purple message to ${N(v.f)}, then its row's snapshot marker jumping forward. Click ${N(v.f)} to see its key-value store filled in.`,
      },
      {
        title: "Back to normal replication",
        plan(ctx) { ctx.runFor(600); },
        text: (v) => `<p>From the snapshot's last index onwards the leader sends ordinary AppendEntries again, and ${N(v.f)} is back in <b>replicate</b> state, applying new entries with everyone else.</p>`,
        watch: (v) => `The leader's view of ${N(v.f)}: snapshot → probe → replicate.`,
      },
    ],
  },

  {
    id: "read-index",
    title: "ReadIndex under a partition",
    blurb: "A read sent to a leader stuck in the minority does not complete — because it could be stale.",
    config: { nodes: 5, seed: 17 },
    steps: [
      {
        title: "x = 1",
        plan(ctx, v) { v.l = waitLeader(ctx, v); const op = ctx.act("put", "x", "1", 1); waitOp(ctx, v, op); ctx.runFor(40); v.t = ctx.state().nodes.find((n) => n.id === v.l)?.term; },
        text: (v) => `<p>${Nc(v.l ?? "?")} leads term ${v.t ?? "?"}; client 1 wrote <code>x=1</code> through it, so client 1 now knows ${N(v.l ?? "?")} as the leader.</p>`,
        watch: () => `Every node's store has x=1 (click one to see).`,
      },
      {
        title: "A read at a leader in the minority",
        plan(ctx, v) {
          const st = ctx.state(); v.b = others(st, v.l)[0]; v.rest = others(st, v.l, v.b);
          ctx.act("partition", [[v.l, v.b], v.rest]);
          v.read = ctx.act("get", "x", 1);
          ctx.runFor(120);
          v.pending = ctx.op(v.read)?.status === "pending";
        },
        text: (v) => `<p>A partition leaves ${N(v.l)} with only ${N(v.b)}, and client 1 immediately asks ${N(v.l)} for <code>x</code>.</p>
          <p>${Nc(v.l)} does not answer from its own store. With <b>ReadIndex</b> (dissertation §6.4) it records its commit index, then sends a round of heartbeats and waits until a <b>majority</b> acknowledges that it is still the leader. Only ${N(v.b)} can answer: 2 of 5.</p>
          <p>${v.pending ? "The read is still pending." : "The read already finished in this run."}</p>`,
        watch: () => `Client 1's get bar in the History panel growing, and ${"heartbeats"} crossing only the link inside the minority.`,
      },
      {
        title: "Meanwhile, x = 2",
        plan(ctx, v) { v.n = waitLeader(ctx, v, 3000, v.l); v.t2 = ctx.state().nodes.find((n) => n.id === v.n)?.term; const op = ctx.act("put", "x", "2", 2); v.w = waitOp(ctx, v, op, 4000)?.status === "ok"; ctx.runFor(30); v.pending = ctx.op(v.read)?.status === "pending"; },
        text: (v) => `<p>The majority side elects ${N(v.n ?? "?")} for term ${v.t2 ?? "?"}${v.w ? " and client 2 writes <code>x=2</code>, which commits there" : ""}.</p>
          <p>This is exactly why ${N(v.l)} must not answer: its store says <code>x=1</code>, but x=2 has been committed and acknowledged. Answering now would be a <b>stale read</b> — not linearizable, since the read began before the write and would finish after it while returning the old value.</p>
          <p>${v.pending ? "Client 1's read is still waiting." : "Client 1's read is no longer pending."}</p>${missed(v)}`,
        watch: () => `Two bars in the History: client 2's put completed, client 1's get still growing.`,
      },
      {
        title: "The read completes — with the new value",
        plan(ctx, v) { const o = waitOp(ctx, v, v.read, 6000, "the read did not complete"); v.out = o?.output; ctx.runFor(40); },
        text: (v) => `<p>With CheckQuorum, ${N(v.l)} steps down once it has not heard from a majority for an election timeout; its pending read is abandoned. Client 1 times out, retries, and is redirected to ${N(v.n ?? "?")}, which confirms its own leadership with a majority and answers.</p>
          <p>The read returns <code>${v.out === null || v.out === undefined ? "nil" : v.out}</code>. The Correctness panel checks the whole history for linearizability.</p>${missed(v)}`,
        watch: () => `The get bar closing; hover it to see the value and the number of attempts.`,
      },
      {
        title: "Heal",
        plan(ctx) { ctx.act("heal"); ctx.runFor(400); },
        text: (v) => `<p>The partition heals; ${N(v.l)} and ${N(v.b)} adopt term ${v.t2 ?? "?"} and catch up. Reads were never served from a server that could not prove it was still the leader.</p>`,
        watch: () => `All rows identical again.`,
      },
    ],
  },
];
