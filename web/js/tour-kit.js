// What the guided tours (scenarios.js) are written with: the context a
// step's plan runs in (a scratch Timeline behind a few helpers), the query a
// step's claims are checked on, and small helpers for names and waiting.

import { DEFAULT_CONFIG } from "./share.js";

export const others = (st, ...not) => st.nodes.map((n) => n.id).filter((id) => !not.includes(id));
export const N = (id) => `<b class="nid">node ${id ?? "?"}</b>`;
export const Nc = (id) => `<b class="nid">Node ${id ?? "?"}</b>`; // at the start of a sentence
export const list = (ids) => ids.length <= 1 ? ids.map(N).join("") : ids.slice(0, -1).map(N).join(", ") + " and " + N(ids[ids.length - 1]);
export const listC = (ids) => list(ids).replace(">node", ">Node");
export const missed = (v) => (v.miss ? `<p class="miss small">In this run the simulator did not do what this step describes: ${v.miss}. Press Next to continue anyway, or start the tour again.</p>` : "");

/** The leader with the highest term among the up nodes, or null. */
export function leaderOf(st) {
  let best = null;
  for (const n of st.nodes) if (n.up && n.role === "leader" && (!best || n.term > best.term)) best = n;
  return best ? best.id : null;
}

/** Term of the entry at `index` in a node's log (from a full state), the snapshot's term at its boundary, or null. */
export function termAt(nd, index) {
  if (!nd) return null;
  if (index === nd.snapshotIndex) return nd.snapshotTerm ?? null;
  const e = nd.log.find((x) => x.index === index);
  return e ? e.term : null;
}

/** Nodes in term `term` that voted for `id`. */
export const votesFor = (st, id, term) => st.nodes.filter((n) => n.votedFor === id && n.term === term).length;
export const majority = (st) => Math.floor(st.nodes.length / 2) + 1;

/** Do two nodes hold the same entries (index and term) from `from` to `to`? */
export function sameLog(a, b, from, to) {
  for (let i = from; i <= to; i++) if (termAt(a, i) === null || termAt(a, i) !== termAt(b, i)) return false;
  return true;
}

export function waitLeader(ctx, v, maxMs = 3000, not = []) {
  const ok = ctx.runUntil((st) => { const l = leaderOf(st); return l !== null && !not.includes(l) && st.nodes.filter((n) => n.up && n.leader === l).length >= majority(st); }, maxMs);
  if (!ok) v.miss ??= "no leader was elected in time";
  return leaderOf(ctx.state());
}

export function waitOp(ctx, v, id, maxMs = 4000, what = "the operation did not complete") {
  const ok = ctx.runUntil(() => { const o = ctx.op(id); return o && o.status !== "pending"; }, maxMs);
  if (!ok) v.miss ??= what;
  return ctx.op(id);
}

/** Client `client` puts key=value; run until it completed and every node's store has it. */
export function putEverywhere(ctx, v, key, value, client) {
  const op = ctx.act("put", key, value, client);
  waitOp(ctx, v, op);
  ctx.runUntil(() => ctx.full().nodes.every((n) => n.kv[key] === value), 500);
  return op;
}

/** Fire node id's election timer until it leads (as `campaign` in core/testdata/figure8.txt); returns the number of campaigns. */
export function campaignUntilLeader(ctx, v, id, maxTries = 6) {
  let tries = 0;
  for (; tries < maxTries && leaderOf(ctx.state()) !== id; tries++) {
    ctx.act("triggerElection", id);
    ctx.runUntil((st) => { const n = st.nodes.find((x) => x.id === id); return n.role !== "candidate"; }, 40);
  }
  if (leaderOf(ctx.state()) !== id) v.miss ??= `node ${id} was not elected`;
  return tries;
}

/** What expect() sees: the whole state (untrimmed logs) and the history, read once. */
export function query(sim) {
  const st = sim.state();
  let hist = null;
  return {
    st,
    node: (id) => st.nodes.find((n) => n.id === id) ?? null,
    leader: () => leaderOf(st),
    op: (id) => { hist ??= sim.history(); return hist.find((o) => o.id === id) ?? null; },
    history: () => (hist ??= sim.history()),
    check: () => sim.check(),
  };
}

/** The claims of a step that do not hold, as texts. */
export function failedClaims(step, v, sim) {
  if (!step.expect) return [];
  try {
    const q = query(sim);
    return step.expect(v, q).filter(([, ok]) => !ok).map(([what]) => what);
  } catch (err) {
    return [`checking the step failed (${err.message})`];
  }
}

/** What a step's plan works with: a scratch Timeline `tl`, seen through a few helpers. */
export function makeCtx(tl) {
  const state = (tail = 4) => tl.sim.state({ logTail: tail });
  let seq = 0;
  return {
    state: () => state(4),
    full: () => tl.sim.state(),
    leader: () => leaderOf(state(1)),
    act: (op, ...args) => tl.act(op, ...args),
    now: () => tl.sim.now(),
    runFor: (ms) => tl.advanceTo(Math.floor(tl.display) + ms),
    /** Advance 1 ms at a time until pred(state) holds; false if maxMs passed first. */
    runUntil(pred, maxMs) {
      const end = Math.floor(tl.display) + maxMs;
      if (pred(state(4))) return true;
      while (tl.display < end) {
        tl.advanceTo(Math.floor(tl.display) + 1);
        if (pred(state(4))) return true;
      }
      return false;
    },
    /** Process one event at a time until pred(state) holds (stops at that very event). */
    stepUntil(pred, maxEvents = 20000) {
      for (let i = 0; i < maxEvents; i++) {
        if (!tl.stepOnce()) return false;
        if (pred(state(4))) return true;
      }
      return false;
    },
    op: (id) => tl.sim.history({ from: id })[0] ?? null,
    /** Trace lines since the previous call (the first call starts the count). */
    events() {
      const evs = tl.sim.events(seq);
      if (evs.length) seq = evs[evs.length - 1].seq;
      return evs;
    },
  };
}

/** A tour's complete configuration: the page's defaults with the tour's own settings on top. */
export const CONFIG = (c) => ({ ...DEFAULT_CONFIG, ...c });
