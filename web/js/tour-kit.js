// What the guided tours (tours/*.js) are written with: the context a
// step's plan runs in (a scratch Timeline behind a few helpers), the query a
// step's claims are checked on, and small helpers for names and waiting.
// Raft facts come from the simulator: the cluster's leader is
// `state().leader`, a node's role is its `role`.

import { DEFAULT_CONFIG } from "./share.js";

/** Node `id` in a state. */
export const findNode = (state, id) => state.nodes.find((node) => node.id === id);
/** The ids of every node but `except`. */
export const otherNodes = (state, ...except) => state.nodes.map((node) => node.id).filter((id) => !except.includes(id));
/** "node 3", in bold, inside a sentence. */
export const nodeName = (id) => `<b class="nid">node ${id ?? "?"}</b>`;
/** "Node 3", in bold, at the start of a sentence. */
export const NodeName = (id) => `<b class="nid">Node ${id ?? "?"}</b>`;
/** "node 1, node 2 and node 3". */
export const nodeNames = (ids) => ids.length <= 1 ? ids.map(nodeName).join("") : ids.slice(0, -1).map(nodeName).join(", ") + " and " + nodeName(ids[ids.length - 1]);
/** "Node 1, node 2 and node 3", at the start of a sentence. */
export const NodeNames = (ids) => nodeNames(ids).replace(">node", ">Node");
/** The note a step shows when the run did not do what its text says. */
export const missedNote = (facts) => (facts.miss ? `<p class="miss small">In this run the simulator did not do what this step describes: ${facts.miss}. Press Next to continue anyway, or start the tour again.</p>` : "");

/** Term of the entry at `index` in a node's log (from a full state), the snapshot's term at its boundary, or null. */
export function termAt(node, index) {
  if (!node) return null;
  if (index === node.snapshotIndex) return node.snapshotTerm ?? null;
  const entry = node.log.find((e) => e.index === index);
  return entry ? entry.term : null;
}

/** Nodes in term `term` that voted for `id`. */
export const votesFor = (state, id, term) => state.nodes.filter((node) => node.votedFor === id && node.term === term).length;
/** More than half of the nodes drawn. */
export const majorityOf = (state) => Math.floor(state.nodes.length / 2) + 1;

/** Do two nodes hold the same entries (index and term) from `from` to `to`? */
export function sameLog(a, b, from, to) {
  for (let i = from; i <= to; i++) if (termAt(a, i) === null || termAt(a, i) !== termAt(b, i)) return false;
  return true;
}

/** Run until a leader (not one of `except`) is known to a majority of the nodes; returns it. */
export function waitForLeader(ctx, facts, maxMs = 3000, except = []) {
  const known = (state) => state.leader !== null && !except.includes(state.leader)
    && state.nodes.filter((node) => node.up && node.leader === state.leader).length >= majorityOf(state);
  if (!ctx.runUntil(known, maxMs)) facts.miss ??= "no leader was elected in time";
  return ctx.state().leader;
}

/** Run until operation `id` is no longer pending; returns it. */
export function waitForOp(ctx, facts, id, maxMs = 4000, what = "the operation did not complete") {
  const ok = ctx.runUntil(() => { const op = ctx.op(id); return op && op.status !== "pending"; }, maxMs);
  if (!ok) facts.miss ??= what;
  return ctx.op(id);
}

/** Client `client` puts key=value; run until it completed and every node's store has it. */
export function putEverywhere(ctx, facts, key, value, client) {
  const op = ctx.act("put", key, value, client);
  waitForOp(ctx, facts, op);
  ctx.runUntil(() => ctx.full().nodes.every((node) => node.kv[key] === value), 500);
  return op;
}

/** Fire node id's election timer until it leads (as `campaign` in core/testdata/figure8.txt); returns the number of campaigns. */
export function campaignUntilLeader(ctx, facts, id, maxTries = 6) {
  let tries = 0;
  for (; tries < maxTries && ctx.leader() !== id; tries++) {
    ctx.act("triggerElection", id);
    ctx.runUntil((state) => findNode(state, id).role !== "candidate", 40);
  }
  if (ctx.leader() !== id) facts.miss ??= `node ${id} was not elected`;
  return tries;
}

/** What expect() sees: the whole state (untrimmed logs) and the history, read once. */
export function query(sim) {
  const state = sim.state();
  let history = null;
  return {
    state,
    node: (id) => findNode(state, id) ?? null,
    leader: () => state.leader,
    op: (id) => { history ??= sim.history(); return history.find((op) => op.id === id) ?? null; },
    history: () => (history ??= sim.history()),
    check: () => sim.check(),
  };
}

/**
 * The claims of a step that do not hold, as texts: its expect() reads
 * `seen()` (a query of the run at the step's end, in either mode).
 */
export function unmetClaims(step, facts, seen) {
  if (!step.expect) return [];
  try {
    return step.expect(facts, seen()).filter(([, holds]) => !holds).map(([claim]) => claim);
  } catch (err) {
    return [`checking the step failed (${err.message})`];
  }
}

/** The claims of a step that do not hold on `sim`, as texts. */
export const failedClaims = (step, facts, sim) => unmetClaims(step, facts, () => query(sim));

/** What a step's plan works with: a scratch Timeline, seen through a few helpers. */
export function planContext(timeline) {
  const state = (tail = 4) => timeline.sim.state({ logTail: tail });
  let seq = 0;
  return {
    state: () => state(4),
    full: () => timeline.sim.state(),
    /** Node `id` now (its last few log entries only). */
    node: (id) => findNode(state(4), id),
    leader: () => state(1).leader,
    act: (op, ...args) => timeline.act(op, ...args),
    now: () => timeline.sim.now(),
    runFor: (ms) => timeline.advanceTo(Math.floor(timeline.display) + ms),
    /** Advance 1 ms at a time until holds(state) holds; false if maxMs passed first. */
    runUntil(holds, maxMs) {
      const end = Math.floor(timeline.display) + maxMs;
      if (holds(state(4))) return true;
      while (timeline.display < end) {
        timeline.advanceTo(Math.floor(timeline.display) + 1);
        if (holds(state(4))) return true;
      }
      return false;
    },
    /** Process one event at a time until holds(state) holds (stops at that very event). */
    stepUntil(holds, maxEvents = 20000) {
      for (let i = 0; i < maxEvents; i++) {
        if (!timeline.stepOnce()) return false;
        if (holds(state(4))) return true;
      }
      return false;
    },
    op: (id) => timeline.sim.history({ from: id })[0] ?? null,
    /** Trace lines since the previous call (the first call starts the count). */
    events() {
      const lines = timeline.sim.events(seq);
      if (lines.length) seq = lines[lines.length - 1].seq;
      return lines;
    },
  };
}

/** A tour's complete configuration: the page's defaults with the tour's own settings on top. */
export const tourConfig = (settings) => ({ ...DEFAULT_CONFIG, ...settings });
