// A stand-in for the wasm `Simulation` (web/pkg/distribkv_wasm.js), used only
// when the page is opened with `?mock`. It implements the same JS API with a
// small but honest Raft (PreVote, CheckQuorum, fast back-off, snapshots,
// ReadIndex, leadership transfer, client sessions) so that every drawing and
// control path of the page can be exercised before the real build exists.
// It is deterministic: same seed + same calls at the same times = same run.
//
// `?mock=stale-reads` makes every node answer reads from its own state, which
// breaks linearizability on purpose, to exercise the correctness panel.

const KINDS_WITH_TERM = new Set([
  "RequestVote", "RequestVoteResponse", "PreVote", "PreVoteResponse",
  "AppendEntries", "AppendEntriesResponse", "Heartbeat", "HeartbeatResponse",
  "InstallSnapshot", "InstallSnapshotResponse", "TimeoutNow",
]);

function rng(seed) {
  // mulberry32 over a 32-bit mix of the seed
  let a = (Number(seed) * 2654435761) >>> 0 ^ 0x9e3779b9;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Heap {
  constructor() { this.a = []; }
  get size() { return this.a.length; }
  less(x, y) { return x.at < y.at || (x.at === y.at && x.seq < y.seq); }
  push(v) {
    const a = this.a; a.push(v);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(a[i], a[p])) break;
      [a[i], a[p]] = [a[p], a[i]]; i = p;
    }
  }
  peek() { return this.a[0]; }
  pop() {
    const a = this.a; const top = a[0]; const last = a.pop();
    if (a.length) {
      a[0] = last; let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1; let m = i;
        if (l < a.length && this.less(a[l], a[m])) m = l;
        if (r < a.length && this.less(a[r], a[m])) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m], a[i]]; i = m;
      }
    }
    return top;
  }
}

function describe(op) {
  if (!op) return "no-op";
  switch (op.kind) {
    case "put": return `put ${op.key}=${op.value}`;
    case "append": return `append ${op.key}+=${op.value}`;
    case "delete": return `delete ${op.key}`;
    case "get": return `get ${op.key}`;
    default: return op.kind;
  }
}

export class Simulation {
  constructor(config = {}) {
    const c = config || {};
    this.n = Number(c.nodes ?? 5);
    if (!Number.isInteger(this.n) || this.n < 1 || this.n > 15) throw new Error(`nodes must be 1..15, got ${c.nodes}`);
    this.seed = Number(c.seed ?? 1);
    this.cfg = {
      electionTimeoutMs: (c.electionTimeoutMs ?? [150, 300]).map(Number),
      heartbeatMs: Number(c.heartbeatMs ?? 50),
      latencyMs: (c.latencyMs ?? [5, 20]).map(Number),
      dropRate: Number(c.dropRate ?? 0),
      duplicateRate: Number(c.duplicateRate ?? 0),
      snapshotEvery: Number(c.snapshotEvery ?? 1000),
      preVote: c.preVote ?? true,
      checkQuorum: c.checkQuorum ?? true,
      bug: c.mockBug ?? null,
    };
    this.rand = rng(this.seed);
    this.t = 0;
    this.seq = 0;
    this.q = new Heap();
    this.msgs = new Map(); // id -> message in flight
    this.nextMsg = 1;
    this.trace = [];
    this.traceSeq = 0;
    this.cut = new Set();
    this.groups = null;
    this.nodes = [];
    for (let id = 1; id <= this.n; id++) this.nodes.push(this.freshNode(id));
    for (const nd of this.nodes) this.resetElectionTimer(nd);
    this.clientList = [];
    this.ops = [];
    this.workload = { clients: 0, intervalMs: 100, keys: 5, readFraction: 0.3 };
    this.leaders = new Map(); // term -> leader id (Election Safety)
    this.committed = new Map(); // index -> { term, cmd } first applied (State Machine Safety)
    this.keyHistory = new Map(); // key -> [{ at, value, opId }]
    this.violations = [];
  }

  // ---------- helpers ----------
  freshNode(id) {
    return {
      id, up: true, role: "follower", term: 0, votedFor: null, leader: null,
      entries: [], snapshotIndex: 0, snapshotTerm: 0, snapKv: {}, snapSessions: {},
      commitIndex: 0, appliedIndex: 0, kv: {}, sessions: {},
      electionDeadline: null, electionGen: 0, hbGen: 0, votes: new Set(), lastHeard: -1e9,
      progress: null, reads: [], readCtx: 0, transferee: null, active: null, lastQuorumCheck: 0,
    };
  }
  node(id) {
    const i = Number(id);
    if (!Number.isInteger(i) || i < 1 || i > this.n) throw new Error(`unknown node id ${id} (nodes are 1..${this.n})`);
    return this.nodes[i - 1];
  }
  lastIndex(nd) { return nd.snapshotIndex + nd.entries.length; }
  termAt(nd, i) {
    if (i === nd.snapshotIndex) return nd.snapshotTerm;
    if (i < nd.snapshotIndex || i > this.lastIndex(nd)) return null;
    return nd.entries[i - nd.snapshotIndex - 1].term;
  }
  entry(nd, i) { return nd.entries[i - nd.snapshotIndex - 1]; }
  quorum() { return Math.floor(this.n / 2) + 1; }
  randInt(lo, hi) { return lo + Math.floor(this.rand() * (hi - lo + 1)); }
  log(node, kind, text) {
    this.trace.push({ seq: ++this.traceSeq, at: this.t, node, kind, text });
    if (this.trace.length > 6000) this.trace.splice(0, this.trace.length - 5000);
  }
  schedule(at, ev) { ev.at = at; ev.seq = ++this.seq; this.q.push(ev); }
  reachable(from, to) {
    if (this.cut.has(`${from}>${to}`)) return false;
    if (this.groups && typeof from === "number" && typeof to === "number") {
      const g = (x) => this.groups.findIndex((grp) => grp.includes(x));
      const a = g(from), b = g(to);
      if (a !== b) return false;
    }
    return true;
  }
  send(from, to, kind, body, summary) {
    if (!this.reachable(from, to)) return;
    if (this.rand() < this.cfg.dropRate) { this.log(from, "drop", `${kind} to ${to} lost`); return; }
    const copies = this.rand() < this.cfg.duplicateRate ? 2 : 1;
    for (let k = 0; k < copies; k++) {
      const [lo, hi] = this.cfg.latencyMs;
      const id = this.nextMsg++;
      const m = { id, from, to, kind, sentAt: this.t, deliverAt: this.t + this.randInt(lo, hi), summary, body };
      this.msgs.set(id, m);
      this.schedule(m.deliverAt, { type: "deliver", msg: id });
    }
  }
  resetElectionTimer(nd) {
    const [lo, hi] = this.cfg.electionTimeoutMs;
    nd.electionGen++;
    nd.electionDeadline = this.t + this.randInt(lo, hi);
    this.schedule(nd.electionDeadline, { type: "election", node: nd.id, gen: nd.electionGen });
  }
  stopElectionTimer(nd) { nd.electionGen++; nd.electionDeadline = null; }

  // ---------- roles ----------
  becomeFollower(nd, term, leader) {
    const was = nd.role;
    if (term > nd.term) { nd.term = term; nd.votedFor = null; }
    nd.role = "follower";
    nd.leader = leader;
    nd.progress = null; nd.transferee = null;
    nd.hbGen++;
    this.failReads(nd);
    this.resetElectionTimer(nd);
    if (was !== "follower") this.log(nd.id, "role", `became follower in term ${nd.term}${leader ? ` (leader ${leader})` : ""}`);
  }
  failReads(nd) { nd.reads = []; }
  startElection(nd, { force = false } = {}) {
    if (this.cfg.preVote && !force) {
      nd.role = "precandidate";
      nd.votes = new Set([nd.id]);
      nd.leader = null;
      this.log(nd.id, "role", `election timeout: PreVote for term ${nd.term + 1}`);
      this.resetElectionTimer(nd);
      for (const o of this.nodes) if (o.id !== nd.id)
        this.send(nd.id, o.id, "PreVote", { term: nd.term + 1, lastLogIndex: this.lastIndex(nd), lastLogTerm: this.termAt(nd, this.lastIndex(nd)) }, `PreVote t${nd.term + 1}`);
      return;
    }
    this.becomeCandidate(nd, force);
  }
  becomeCandidate(nd, transfer = false) {
    nd.term++;
    nd.role = "candidate";
    nd.votedFor = nd.id;
    nd.leader = null;
    nd.votes = new Set([nd.id]);
    this.log(nd.id, "role", `became candidate in term ${nd.term}`);
    this.resetElectionTimer(nd);
    for (const o of this.nodes) if (o.id !== nd.id)
      this.send(nd.id, o.id, "RequestVote", { term: nd.term, lastLogIndex: this.lastIndex(nd), lastLogTerm: this.termAt(nd, this.lastIndex(nd)), transfer }, `RequestVote t${nd.term}`);
    if (nd.votes.size >= this.quorum()) this.becomeLeader(nd);
  }
  becomeLeader(nd) {
    nd.role = "leader";
    nd.leader = nd.id;
    this.stopElectionTimer(nd);
    const prev = this.leaders.get(nd.term);
    if (prev !== undefined && prev !== nd.id) this.violations.push(`Election Safety: nodes ${prev} and ${nd.id} both leader in term ${nd.term}`);
    this.leaders.set(nd.term, nd.id);
    nd.progress = new Map();
    nd.active = new Set([nd.id]);
    nd.lastQuorumCheck = this.t;
    for (const o of this.nodes) if (o.id !== nd.id)
      nd.progress.set(o.id, { matchIndex: 0, nextIndex: this.lastIndex(nd) + 1, state: "probe", inflight: 0, paused: false });
    this.log(nd.id, "role", `became leader in term ${nd.term}`);
    // a no-op entry of its own term, so earlier entries can commit (§5.4.2)
    nd.entries.push({ index: this.lastIndex(nd) + 1, term: nd.term, op: null });
    this.maybeCommit(nd);
    this.broadcastAppend(nd);
    this.heartbeatTick(nd);
  }

  // ---------- replication ----------
  broadcastAppend(nd) { for (const id of nd.progress.keys()) this.sendAppend(nd, id); }
  sendAppend(nd, to) {
    const pr = nd.progress.get(to);
    if (pr.state === "snapshot") return;
    if (pr.state === "probe" && pr.paused) return;
    if (pr.state === "replicate" && pr.inflight >= 4) return;
    if (pr.nextIndex <= nd.snapshotIndex) {
      pr.state = "snapshot"; pr.inflight = 1;
      this.send(nd.id, to, "InstallSnapshot", { term: nd.term, lastIncludedIndex: nd.snapshotIndex, lastIncludedTerm: nd.snapshotTerm, kv: { ...nd.snapKv }, sessions: structuredClone(nd.snapSessions) }, `InstallSnapshot ≤${nd.snapshotIndex} t${nd.term}`);
      return;
    }
    const last = this.lastIndex(nd);
    if (pr.state === "replicate" && pr.nextIndex > last) return;
    const prev = pr.nextIndex - 1;
    const ents = [];
    for (let i = pr.nextIndex; i <= last && ents.length < 16; i++) ents.push({ ...this.entry(nd, i) });
    const body = { term: nd.term, prevLogIndex: prev, prevLogTerm: this.termAt(nd, prev), entries: ents, leaderCommit: nd.commitIndex };
    const sum = ents.length ? `AppendEntries [${ents[0].index}..${ents[ents.length - 1].index}] t${nd.term}` : `AppendEntries prev ${prev} t${nd.term}`;
    this.send(nd.id, to, "AppendEntries", body, sum);
    if (pr.state === "replicate") { pr.inflight++; if (ents.length) pr.nextIndex = ents[ents.length - 1].index + 1; }
    else pr.paused = true;
  }
  maybeCommit(nd) {
    const matches = [this.lastIndex(nd), ...[...nd.progress.values()].map((p) => p.matchIndex)].sort((a, b) => b - a);
    const n = matches[this.quorum() - 1];
    if (n > nd.commitIndex && this.termAt(nd, n) === nd.term) {
      nd.commitIndex = n;
      this.apply(nd);
      return true;
    }
    return false;
  }
  apply(nd) {
    while (nd.appliedIndex < nd.commitIndex) {
      const i = ++nd.appliedIndex;
      const e = this.entry(nd, i);
      const seen = this.committed.get(i);
      const cmd = describe(e.op);
      if (!seen) this.committed.set(i, { term: e.term, cmd });
      else if (seen.term !== e.term) this.violations.push(`State Machine Safety: node ${nd.id} applied index ${i} term ${e.term}, another node applied term ${seen.term}`);
      let result = null;
      if (e.op) {
        const op = e.op;
        const sess = nd.sessions[op.client];
        if (sess && sess.seq >= op.seq) result = sess.result;
        else {
          if (op.kind === "put") nd.kv[op.key] = op.value;
          else if (op.kind === "append") nd.kv[op.key] = (nd.kv[op.key] ?? "") + op.value;
          else if (op.kind === "delete") delete nd.kv[op.key];
          nd.sessions[op.client] = { seq: op.seq, result };
          if (!seen) {
            const h = this.keyHistory.get(op.key) ?? [];
            h.push({ at: this.t, value: nd.kv[op.key] ?? null, opId: op.opId });
            this.keyHistory.set(op.key, h);
          }
        }
        if (nd.role === "leader") this.send(nd.id, `c${op.client}`, "ClientResponse", { opId: op.opId, ok: true, output: null }, `ok ${op.kind} ${op.key}`);
      }
      if (i - nd.snapshotIndex >= this.cfg.snapshotEvery) this.takeSnapshot(nd);
    }
    this.serveReads(nd);
  }
  takeSnapshot(nd) {
    const i = nd.appliedIndex;
    if (i <= nd.snapshotIndex) return;
    const term = this.termAt(nd, i);
    nd.entries = nd.entries.slice(i - nd.snapshotIndex);
    nd.snapshotIndex = i; nd.snapshotTerm = term;
    nd.snapKv = { ...nd.kv }; nd.snapSessions = structuredClone(nd.sessions);
    this.log(nd.id, "snapshot", `snapshot at index ${i}, log compacted`);
  }
  heartbeatTick(nd) {
    if (nd.role !== "leader" || !nd.up) return;
    for (const id of nd.progress.keys())
      this.send(nd.id, id, "Heartbeat", { term: nd.term, commit: Math.min(nd.commitIndex, nd.progress.get(id).matchIndex), ctx: nd.readCtx }, `Heartbeat t${nd.term}`);
    if (this.cfg.checkQuorum && this.t - nd.lastQuorumCheck >= this.cfg.electionTimeoutMs[0]) {
      if (nd.active.size < this.quorum()) {
        this.log(nd.id, "role", `CheckQuorum: heard from ${nd.active.size}/${this.n}, stepping down`);
        this.becomeFollower(nd, nd.term, null);
        return;
      }
      nd.active = new Set([nd.id]);
      nd.lastQuorumCheck = this.t;
    }
    nd.hbGen++;
    this.schedule(this.t + this.cfg.heartbeatMs, { type: "heartbeat", node: nd.id, gen: nd.hbGen });
  }

  // ---------- reads (ReadIndex) ----------
  serveReads(nd) {
    if (nd.role !== "leader") return;
    const keep = [];
    for (const r of nd.reads) {
      if (r.acks.size >= this.quorum() && nd.appliedIndex >= r.index) {
        const v = nd.kv[r.op.key] ?? null;
        this.send(nd.id, `c${r.op.client}`, "ClientResponse", { opId: r.op.opId, ok: true, output: v }, `ok get ${r.op.key}`);
      } else keep.push(r);
    }
    nd.reads = keep;
  }

  // ---------- message handling ----------
  deliver(m) {
    const to = m.to;
    if (typeof to === "string") return this.clientReceive(Number(to.slice(1)), m);
    const nd = this.nodes[to - 1];
    if (!nd.up) { this.log(to, "drop", `${m.kind} from ${m.from} dropped: node down`); return; }
    const b = m.body;
    if (m.kind === "ClientRequest") return this.handleClientRequest(nd, m);
    if (KINDS_WITH_TERM.has(m.kind)) {
      const inLease = this.cfg.checkQuorum && nd.leader !== null && this.t - nd.lastHeard < this.cfg.electionTimeoutMs[0];
      if ((m.kind === "RequestVote" && !b.transfer || m.kind === "PreVote") && b.term > nd.term && inLease) {
        this.log(nd.id, "ignore", `ignored ${m.kind} from ${m.from}: heard from leader ${nd.leader} recently`);
        return;
      }
      if (b.term > nd.term && m.kind !== "PreVote" && !(m.kind === "PreVoteResponse" && b.granted)) {
        const leader = ["AppendEntries", "Heartbeat", "InstallSnapshot"].includes(m.kind) ? m.from : null;
        this.log(nd.id, "term", `term ${nd.term} → ${b.term} (${m.kind} from ${m.from})`);
        this.becomeFollower(nd, b.term, leader);
      }
    }
    this["on" + m.kind](nd, m, b);
  }
  reply(nd, m, kind, body, summary) { this.send(nd.id, m.from, kind, body, summary); }
  upToDate(nd, b) {
    const li = this.lastIndex(nd), lt = this.termAt(nd, li);
    return b.lastLogTerm > lt || (b.lastLogTerm === lt && b.lastLogIndex >= li);
  }
  onPreVote(nd, m, b) {
    const granted = b.term > nd.term && this.upToDate(nd, b);
    this.reply(nd, m, "PreVoteResponse", { term: granted ? b.term : nd.term, granted }, `PreVote ${granted ? "yes" : "no"}`);
  }
  onPreVoteResponse(nd, m, b) {
    if (nd.role !== "precandidate" || !b.granted) return;
    nd.votes.add(m.from);
    if (nd.votes.size >= this.quorum()) this.becomeCandidate(nd);
  }
  onRequestVote(nd, m, b) {
    let granted = false;
    if (b.term === nd.term && (nd.votedFor === null || nd.votedFor === m.from) && this.upToDate(nd, b) && nd.role !== "leader") {
      granted = true; nd.votedFor = m.from;
      this.resetElectionTimer(nd);
    }
    this.reply(nd, m, "RequestVoteResponse", { term: nd.term, granted }, `vote ${granted ? "yes" : "no"} t${nd.term}`);
  }
  onRequestVoteResponse(nd, m, b) {
    if (nd.role !== "candidate" || b.term !== nd.term || !b.granted) return;
    nd.votes.add(m.from);
    if (nd.votes.size >= this.quorum()) this.becomeLeader(nd);
  }
  heardFromLeader(nd, m) {
    if (nd.role !== "follower") this.becomeFollower(nd, nd.term, m.from);
    nd.leader = m.from; nd.lastHeard = this.t;
    this.resetElectionTimer(nd);
  }
  onAppendEntries(nd, m, b) {
    if (b.term < nd.term) return this.reply(nd, m, "AppendEntriesResponse", { term: nd.term, success: false, matchIndex: 0 }, `stale t${b.term}`);
    this.heardFromLeader(nd, m);
    const t = this.termAt(nd, b.prevLogIndex);
    if (b.prevLogIndex < nd.snapshotIndex) {
      // already compacted: these entries are committed, skip what we have
      return this.reply(nd, m, "AppendEntriesResponse", { term: nd.term, success: false, matchIndex: 0, conflictIndex: nd.commitIndex + 1, conflictTerm: null }, `reject: behind snapshot`);
    }
    if (t === null || t !== b.prevLogTerm) {
      // fast back-off: tell the leader where our log ends or where the conflicting term starts
      let conflictIndex, conflictTerm = null;
      if (t === null) conflictIndex = this.lastIndex(nd) + 1;
      else {
        conflictTerm = t; conflictIndex = b.prevLogIndex;
        while (conflictIndex - 1 > nd.snapshotIndex && this.termAt(nd, conflictIndex - 1) === t) conflictIndex--;
      }
      return this.reply(nd, m, "AppendEntriesResponse", { term: nd.term, success: false, matchIndex: 0, conflictIndex, conflictTerm }, `reject @${b.prevLogIndex} hint ${conflictIndex}`);
    }
    for (const e of b.entries) {
      const have = this.termAt(nd, e.index);
      if (have !== null && have !== e.term) {
        if (e.index <= nd.commitIndex) this.violations.push(`Leader Completeness: node ${nd.id} asked to overwrite committed index ${e.index}`);
        nd.entries.length = e.index - nd.snapshotIndex - 1;
        this.log(nd.id, "log", `truncated log from index ${e.index} (conflicting term)`);
      }
      if (this.termAt(nd, e.index) === null) nd.entries.push({ ...e });
    }
    const match = b.prevLogIndex + b.entries.length;
    if (b.leaderCommit > nd.commitIndex) { nd.commitIndex = Math.min(b.leaderCommit, match); this.apply(nd); }
    this.reply(nd, m, "AppendEntriesResponse", { term: nd.term, success: true, matchIndex: match }, `ok match ${match}`);
  }
  onAppendEntriesResponse(nd, m, b) {
    if (nd.role !== "leader" || b.term !== nd.term) return;
    const pr = nd.progress.get(m.from);
    nd.active.add(m.from);
    if (b.success) {
      if (b.matchIndex > pr.matchIndex) pr.matchIndex = b.matchIndex;
      if (pr.nextIndex < pr.matchIndex + 1) pr.nextIndex = pr.matchIndex + 1;
      if (pr.state === "probe") { pr.state = "replicate"; pr.paused = false; pr.inflight = 0; pr.nextIndex = pr.matchIndex + 1; }
      else pr.inflight = Math.max(0, pr.inflight - 1);
      if (this.maybeCommit(nd)) this.broadcastAppend(nd);
      this.sendAppend(nd, m.from);
      if (nd.transferee === m.from && pr.matchIndex === this.lastIndex(nd)) this.sendTimeoutNow(nd);
    } else {
      if (b.conflictIndex === undefined) return;
      let next = b.conflictIndex;
      if (b.conflictTerm !== null && b.conflictTerm !== undefined) {
        // jump past our last entry of the conflicting term, if we have that term
        for (let i = this.lastIndex(nd); i > nd.snapshotIndex; i--) {
          const t = this.termAt(nd, i);
          if (t === b.conflictTerm) { next = i + 1; break; }
          if (t < b.conflictTerm) break;
        }
      }
      pr.nextIndex = Math.max(pr.matchIndex + 1, Math.min(next, this.lastIndex(nd) + 1));
      pr.state = "probe"; pr.paused = false; pr.inflight = 0;
      this.sendAppend(nd, m.from);
    }
  }
  onHeartbeat(nd, m, b) {
    if (b.term < nd.term) return this.reply(nd, m, "HeartbeatResponse", { term: nd.term, ctx: b.ctx }, `stale t${b.term}`);
    this.heardFromLeader(nd, m);
    if (b.commit > nd.commitIndex && this.termAt(nd, b.commit) !== null) { nd.commitIndex = Math.min(b.commit, this.lastIndex(nd)); this.apply(nd); }
    this.reply(nd, m, "HeartbeatResponse", { term: nd.term, ctx: b.ctx }, `ack t${nd.term}`);
  }
  onHeartbeatResponse(nd, m, b) {
    if (nd.role !== "leader" || b.term !== nd.term) return;
    nd.active.add(m.from);
    for (const r of nd.reads) if (b.ctx >= r.ctx) r.acks.add(m.from);
    this.serveReads(nd);
    const pr = nd.progress.get(m.from);
    if (pr.matchIndex < this.lastIndex(nd)) {
      if (pr.state === "replicate" && pr.inflight >= 4) { pr.state = "probe"; pr.inflight = 0; pr.nextIndex = pr.matchIndex + 1; }
      pr.paused = false;
      this.sendAppend(nd, m.from);
    }
  }
  onInstallSnapshot(nd, m, b) {
    if (b.term < nd.term) return this.reply(nd, m, "InstallSnapshotResponse", { term: nd.term, matchIndex: 0 }, `stale`);
    this.heardFromLeader(nd, m);
    if (b.lastIncludedIndex > nd.commitIndex) {
      const keep = this.termAt(nd, b.lastIncludedIndex) === b.lastIncludedTerm ? nd.entries.slice(b.lastIncludedIndex - nd.snapshotIndex) : [];
      nd.entries = keep;
      nd.snapshotIndex = b.lastIncludedIndex; nd.snapshotTerm = b.lastIncludedTerm;
      nd.snapKv = { ...b.kv }; nd.snapSessions = structuredClone(b.sessions);
      nd.kv = { ...b.kv }; nd.sessions = structuredClone(b.sessions);
      nd.commitIndex = nd.appliedIndex = b.lastIncludedIndex;
      this.log(nd.id, "snapshot", `installed snapshot up to index ${b.lastIncludedIndex}`);
    }
    this.reply(nd, m, "InstallSnapshotResponse", { term: nd.term, matchIndex: Math.max(nd.commitIndex, b.lastIncludedIndex) }, `installed ≤${b.lastIncludedIndex}`);
  }
  onInstallSnapshotResponse(nd, m, b) {
    if (nd.role !== "leader" || b.term !== nd.term) return;
    const pr = nd.progress.get(m.from);
    nd.active.add(m.from);
    pr.matchIndex = Math.max(pr.matchIndex, b.matchIndex);
    pr.nextIndex = pr.matchIndex + 1;
    pr.state = "probe"; pr.paused = false; pr.inflight = 0;
    this.sendAppend(nd, m.from);
  }
  sendTimeoutNow(nd) {
    this.send(nd.id, nd.transferee, "TimeoutNow", { term: nd.term }, `TimeoutNow t${nd.term}`);
    this.log(nd.id, "transfer", `caught up, TimeoutNow to ${nd.transferee}`);
    nd.transferee = null;
  }
  onTimeoutNow(nd, m, b) {
    if (b.term !== nd.term || nd.role === "leader") return;
    this.log(nd.id, "transfer", `TimeoutNow from ${m.from}: campaigning now`);
    this.becomeCandidate(nd, true);
  }

  // ---------- clients ----------
  clientById(id) {
    const n = Number(id);
    if (!Number.isInteger(n) || n < 1 || n > 1000) throw new Error(`bad client id ${id}`);
    while (this.clientList.length < n) this.clientList.push({ id: this.clientList.length + 1, busy: false, leaderGuess: null, seq: 0, op: null, gen: 0, workload: false });
    return this.clientList[n - 1];
  }
  submit(kind, key, value, client) {
    key = String(key);
    if (!key) throw new Error("key must not be empty");
    let c;
    if (client !== undefined && client !== null) {
      c = this.clientById(client);
      if (c.busy) throw new Error(`client ${c.id} is busy with op ${c.op.id}`);
    } else {
      c = this.clientList.find((x) => !x.busy && !x.workload) ?? this.clientById(this.clientList.length + 1);
    }
    return this.clientStart(c, kind, key, value === undefined || value === null ? null : String(value));
  }
  clientStart(c, kind, key, value) {
    const op = { id: this.ops.length + 1, client: c.id, kind, key, value, invokedAt: this.t, completedAt: null, output: null, status: "pending", attempts: 0, seq: ++c.seq };
    this.ops.push(op);
    c.busy = true; c.op = op;
    this.log(`c${c.id}`, "client", `invoke ${describe(op)} (op ${op.id})`);
    this.clientSend(c);
    return op.id;
  }
  clientSend(c) {
    const op = c.op;
    op.attempts++;
    if (op.attempts > 12) {
      op.status = "unknown"; op.completedAt = this.t;
      c.busy = false; c.op = null;
      this.log(`c${c.id}`, "client", `gave up on op ${op.id}: outcome unknown`);
      this.clientIdle(c);
      return;
    }
    if (c.leaderGuess === null) c.leaderGuess = 1 + ((c.id + op.attempts) % this.n);
    // the injected bug also spreads reads over all nodes, so stale ones show up
    const target = this.cfg.bug === "stale-reads" && op.kind === "get" ? this.randInt(1, this.n) : c.leaderGuess;
    const body = { opId: op.id, client: c.id, seq: op.seq, kind: op.kind, key: op.key, value: op.value };
    this.send(`c${c.id}`, target, "ClientRequest", body, describe(op));
    c.gen++;
    this.schedule(this.t + this.cfg.electionTimeoutMs[1] + 200, { type: "clientTimeout", client: c.id, gen: c.gen });
  }
  handleClientRequest(nd, m) {
    const op = m.body;
    if (op.kind === "get" && this.cfg.bug === "stale-reads") {
      return this.send(nd.id, m.from, "ClientResponse", { opId: op.opId, ok: true, output: nd.kv[op.key] ?? null }, `ok get ${op.key} (local)`);
    }
    if (nd.role !== "leader") {
      return this.send(nd.id, m.from, "ClientResponse", { opId: op.opId, ok: false, notLeader: true, leaderHint: nd.leader }, `not leader${nd.leader ? `, try ${nd.leader}` : ""}`);
    }
    if (op.kind === "get") {
      if (this.termAt(nd, nd.commitIndex) !== nd.term) { this.log(nd.id, "read", `read ${op.key} waits: nothing committed in term ${nd.term} yet`); }
      nd.readCtx++;
      nd.reads.push({ op, index: nd.commitIndex, ctx: nd.readCtx, acks: new Set([nd.id]) });
      this.log(nd.id, "read", `ReadIndex ${nd.commitIndex} for get ${op.key}, confirming leadership`);
      for (const id of nd.progress.keys())
        this.send(nd.id, id, "Heartbeat", { term: nd.term, commit: Math.min(nd.commitIndex, nd.progress.get(id).matchIndex), ctx: nd.readCtx }, `Heartbeat t${nd.term} read#${nd.readCtx}`);
      return;
    }
    nd.entries.push({ index: this.lastIndex(nd) + 1, term: nd.term, op: { opId: op.opId, client: op.client, seq: op.seq, kind: op.kind, key: op.key, value: op.value } });
    this.log(nd.id, "propose", `appended ${describe(op)} at index ${this.lastIndex(nd)}`);
    this.maybeCommit(nd);
    this.broadcastAppend(nd);
  }
  clientReceive(cid, m) {
    const c = this.clientList[cid - 1];
    const b = m.body;
    if (!c || !c.op || c.op.id !== b.opId) return;
    if (!b.ok) {
      c.leaderGuess = b.leaderHint ?? (1 + (Number(m.from) % this.n));
      this.log(`c${cid}`, "client", `redirected to node ${c.leaderGuess}`);
      c.gen++;
      this.schedule(this.t + 5, { type: "clientRetry", client: cid, gen: c.gen });
      return;
    }
    const op = c.op;
    op.status = "ok"; op.completedAt = this.t; op.output = op.kind === "get" ? b.output : null;
    c.leaderGuess = m.from;
    c.busy = false; c.op = null; c.gen++;
    this.log(`c${cid}`, "client", `completed ${describe(op)}${op.kind === "get" ? ` → ${op.output === null ? "nil" : JSON.stringify(op.output)}` : ""}`);
    this.checkRead(op);
    this.clientIdle(c);
  }
  clientIdle(c) {
    if (c.workload && c.id <= this.workload.clients) {
      c.gen++;
      this.schedule(this.t + this.workload.intervalMs, { type: "workload", client: c.id, gen: c.gen });
    } else c.workload = false;
  }
  workloadOp(c) {
    if (c.busy || !c.workload) return;
    const w = this.workload;
    const key = `k${Math.floor(this.rand() * w.keys)}`;
    const r = this.rand();
    if (r < w.readFraction) this.clientStart(c, "get", key, null);
    else if (r < w.readFraction + (1 - w.readFraction) / 2) this.clientStart(c, "put", key, String(this.randInt(0, 99)));
    else this.clientStart(c, "append", key, String.fromCharCode(97 + this.randInt(0, 25)));
  }
  checkRead(op) {
    if (op.kind !== "get") return;
    const h = this.keyHistory.get(op.key) ?? [];
    let before = null, beforeOp = null; const during = [];
    for (const w of h) {
      if (w.at <= op.invokedAt) { before = w.value; beforeOp = w.opId; }
      else if (w.at <= op.completedAt) during.push(w);
    }
    const allowed = [before, ...during.map((w) => w.value)];
    if (!allowed.includes(op.output) && !this.linViolation) {
      const ops = [op.id, ...(beforeOp ? [beforeOp] : []), ...during.map((w) => w.opId)];
      this.linViolation = {
        ok: false, key: op.key, ops,
        text: `get ${op.key} (op ${op.id}) returned ${JSON.stringify(op.output)}, but between its invocation and completion ${op.key} was only ever ${allowed.map((v) => JSON.stringify(v)).join(" or ")}`,
      };
    }
  }

  // ---------- driving ----------
  peekLive() {
    for (;;) {
      const ev = this.q.peek();
      if (!ev) return null;
      if (this.isStale(ev)) { this.q.pop(); continue; }
      return ev;
    }
  }
  isStale(ev) {
    switch (ev.type) {
      case "deliver": return !this.msgs.has(ev.msg);
      case "election": { const nd = this.nodes[ev.node - 1]; return !nd.up || nd.electionGen !== ev.gen; }
      case "heartbeat": { const nd = this.nodes[ev.node - 1]; return !nd.up || nd.hbGen !== ev.gen || nd.role !== "leader"; }
      case "clientTimeout": case "clientRetry": case "workload": { const c = this.clientList[ev.client - 1]; return !c || c.gen !== ev.gen; }
      default: return false;
    }
  }
  processNext() {
    const ev = this.peekLive();
    if (!ev) return null;
    this.q.pop();
    this.t = ev.at;
    const before = this.traceSeq;
    let node = null, kind = ev.type, text = "";
    switch (ev.type) {
      case "deliver": {
        const m = this.msgs.get(ev.msg); this.msgs.delete(ev.msg);
        node = m.to; kind = m.kind; text = `${m.from} → ${m.to} ${m.summary}`;
        this.log(m.to, m.kind, `received ${m.summary} from ${m.from}`);
        this.deliver(m);
        break;
      }
      case "election": {
        const nd = this.nodes[ev.node - 1]; node = nd.id;
        if (nd.role === "leader") { text = "timer (leader)"; break; }
        text = "election timeout";
        this.startElection(nd);
        break;
      }
      case "heartbeat": node = ev.node; text = "heartbeat"; this.heartbeatTick(this.nodes[ev.node - 1]); break;
      case "clientTimeout": {
        const c = this.clientList[ev.client - 1]; node = `c${c.id}`; text = `client ${c.id} timeout, retrying`;
        this.log(node, "client", text);
        c.leaderGuess = 1 + (c.leaderGuess % this.n);
        this.clientSend(c);
        break;
      }
      case "clientRetry": { const c = this.clientList[ev.client - 1]; node = `c${c.id}`; text = "retry"; this.clientSend(c); break; }
      case "workload": { const c = this.clientList[ev.client - 1]; node = `c${c.id}`; text = "workload op"; this.workloadOp(c); break; }
    }
    if (this.traceSeq === before) this.log(node, kind, text);
    return { at: this.t, node, kind, text };
  }

  // ---------- public API ----------
  now() { return this.t; }
  nextEventAt() { const ev = this.peekLive(); return ev ? ev.at : null; }
  step() { return this.processNext(); }
  runUntil(t) {
    t = Number(t);
    for (;;) {
      const ev = this.peekLive();
      if (!ev || ev.at > t) break;
      this.processNext();
    }
    if (t > this.t) this.t = t;
  }
  runFor(ms) { this.runUntil(this.t + Number(ms)); }
  events(sinceSeq = 0) {
    const s = Number(sinceSeq);
    if (!this.trace.length || this.trace[this.trace.length - 1].seq <= s) return [];
    let i = this.trace.findIndex((e) => e.seq > s);
    return this.trace.slice(i).map((e) => ({ ...e }));
  }
  crash(id) {
    const nd = this.node(id);
    if (!nd.up) throw new Error(`node ${id} is already down`);
    nd.up = false;
    nd.role = "follower"; nd.leader = null; nd.progress = null; nd.reads = []; nd.transferee = null;
    nd.electionGen++; nd.hbGen++; nd.electionDeadline = null;
    // volatile state is lost; term, vote, log and snapshot are persisted
    nd.commitIndex = nd.appliedIndex = nd.snapshotIndex;
    nd.kv = { ...nd.snapKv }; nd.sessions = structuredClone(nd.snapSessions);
    this.log(nd.id, "crash", `node ${nd.id} crashed`);
  }
  restart(id) {
    const nd = this.node(id);
    if (nd.up) throw new Error(`node ${id} is already up`);
    nd.up = true; nd.lastHeard = -1e9;
    this.log(nd.id, "restart", `node ${nd.id} restarted in term ${nd.term}, log ${this.lastIndex(nd)} entries`);
    this.resetElectionTimer(nd);
  }
  partition(groups) {
    if (!Array.isArray(groups) || groups.some((g) => !Array.isArray(g))) throw new Error("partition expects an array of arrays of node ids");
    const seen = new Set();
    const gs = groups.map((g) => g.map((x) => { const n = this.node(x).id; if (seen.has(n)) throw new Error(`node ${n} is in two groups`); seen.add(n); return n; }));
    for (const nd of this.nodes) if (!seen.has(nd.id)) gs.push([nd.id]);
    this.groups = gs;
    this.log(null, "network", `partition ${gs.map((g) => g.join(",")).join(" | ")}`);
  }
  heal() { this.groups = null; this.cut.clear(); this.log(null, "network", "network healed"); }
  cutLink(from, to) { this.node(from); this.node(to); this.cut.add(`${Number(from)}>${Number(to)}`); this.log(null, "network", `link ${from} → ${to} cut`); }
  restoreLink(from, to) { this.node(from); this.node(to); this.cut.delete(`${Number(from)}>${Number(to)}`); this.log(null, "network", `link ${from} → ${to} restored`); }
  setDropRate(p) { p = Number(p); if (!(p >= 0 && p <= 1)) throw new Error("drop rate must be in [0, 1]"); this.cfg.dropRate = p; }
  setDuplicateRate(p) { p = Number(p); if (!(p >= 0 && p <= 1)) throw new Error("duplicate rate must be in [0, 1]"); this.cfg.duplicateRate = p; }
  setLatency(lo, hi) { lo = Number(lo); hi = Number(hi); if (!(lo >= 0 && hi >= lo)) throw new Error("latency needs 0 <= min <= max"); this.cfg.latencyMs = [lo, hi]; }
  triggerElection(id) {
    const nd = this.node(id);
    if (!nd.up) throw new Error(`node ${id} is down`);
    if (nd.role === "leader") throw new Error(`node ${id} is the leader`);
    this.log(nd.id, "timeout", `election timer fired (forced)`);
    this.startElection(nd);
  }
  transferLeadership(to) {
    const target = this.node(to);
    const leader = this.nodes.find((x) => x.up && x.role === "leader");
    if (!leader) throw new Error("there is no leader to transfer from");
    if (leader.id === target.id) throw new Error(`node ${to} is already the leader`);
    leader.transferee = target.id;
    this.log(leader.id, "transfer", `transferring leadership to ${target.id}`);
    if (leader.progress.get(target.id).matchIndex === this.lastIndex(leader)) this.sendTimeoutNow(leader);
    else this.sendAppend(leader, target.id);
  }
  snapshot(id) {
    const nd = this.node(id);
    if (!nd.up) throw new Error(`node ${id} is down`);
    this.takeSnapshot(nd);
  }
  dropMessage(id) {
    const m = this.msgs.get(Number(id));
    if (!m) return false;
    this.msgs.delete(m.id);
    this.log(m.from, "drop", `${m.kind} ${m.from} → ${m.to} dropped by hand`);
    return true;
  }
  message(id) {
    const m = this.msgs.get(Number(id));
    if (!m) return null;
    return structuredClone({ id: m.id, from: m.from, to: m.to, kind: m.kind, sentAt: m.sentAt, deliverAt: m.deliverAt, summary: m.summary, ...m.body });
  }
  put(key, value, client) { return this.submit("put", key, value, client); }
  append(key, value, client) { return this.submit("append", key, value, client); }
  get(key, client) { return this.submit("get", key, null, client); }
  delete(key, client) { return this.submit("delete", key, null, client); }
  setWorkload(w = {}) {
    this.workload = {
      clients: Number(w.clients ?? this.workload.clients), intervalMs: Number(w.intervalMs ?? this.workload.intervalMs),
      keys: Math.max(1, Number(w.keys ?? this.workload.keys)), readFraction: Number(w.readFraction ?? this.workload.readFraction),
    };
    for (let i = 1; i <= this.workload.clients; i++) {
      const c = this.clientById(i);
      if (!c.workload) {
        c.workload = true;
        if (!c.busy) { c.gen++; this.schedule(this.t + this.randInt(0, this.workload.intervalMs), { type: "workload", client: c.id, gen: c.gen }); }
      }
    }
    for (const c of this.clientList) if (c.id > this.workload.clients && c.workload) { c.workload = false; if (!c.busy) c.gen++; }
    this.log(null, "client", `workload: ${this.workload.clients} clients every ${this.workload.intervalMs} ms`);
  }
  clients() { return this.clientList.map((c) => ({ id: c.id, busy: c.busy, leaderGuess: c.leaderGuess, seq: c.seq })); }
  history(opts = {}) {
    const from = Math.max(1, Number(opts?.from ?? 1));
    return this.ops.filter((o) => o.id >= from).map((o) => ({ id: o.id, client: o.client, kind: o.kind, key: o.key, value: o.value, invokedAt: o.invokedAt, completedAt: o.completedAt, output: o.output, status: o.status, attempts: o.attempts }));
  }
  state(opts = {}) {
    const tail = opts && opts.logTail != null ? Number(opts.logTail) : Infinity;
    return {
      now: this.t,
      nodes: this.nodes.map((nd) => {
        const last = this.lastIndex(nd);
        const from = Math.max(nd.snapshotIndex + 1, last - tail + 1);
        const log = [];
        for (let i = from; i <= last; i++) { const e = this.entry(nd, i); log.push({ index: i, term: e.term, command: describe(e.op) }); }
        return {
          id: nd.id, up: nd.up, role: nd.role, term: nd.term, votedFor: nd.votedFor, leader: nd.leader,
          commitIndex: nd.commitIndex, appliedIndex: nd.appliedIndex, snapshotIndex: nd.snapshotIndex, lastIndex: last, durableIndex: last,
          electionDeadline: nd.up ? nd.electionDeadline : null, log, kv: { ...nd.kv },
          progress: nd.role === "leader" ? [...nd.progress.entries()].map(([id, p]) => ({ id, matchIndex: p.matchIndex, nextIndex: p.nextIndex, state: p.state, inflight: p.inflight })) : null,
        };
      }),
      inFlight: [...this.msgs.values()].map((m) => ({ id: m.id, from: m.from, to: m.to, kind: m.kind, sentAt: m.sentAt, deliverAt: m.deliverAt, summary: m.summary })),
      links: { cut: [...this.cut].map((s) => s.split(">").map(Number)), partition: this.groups ? this.groups.map((g) => [...g]) : null },
    };
  }
  check() {
    const safety = [...this.violations];
    // Log Matching over committed prefixes
    for (const a of this.nodes) for (const b of this.nodes) {
      if (a.id >= b.id) continue;
      const hi = Math.min(a.commitIndex, b.commitIndex);
      const lo = Math.max(a.snapshotIndex, b.snapshotIndex) + 1;
      for (let i = lo; i <= hi; i++) if (this.termAt(a, i) !== this.termAt(b, i)) { safety.push(`Log Matching: nodes ${a.id} and ${b.id} differ at committed index ${i}`); break; }
    }
    const lin = this.linViolation ?? { ok: true, key: null, ops: [], text: `${this.ops.filter((o) => o.status === "ok").length} completed operations, consistent with one order` };
    const violations = [...safety, ...(lin.ok ? [] : [`Linearizability: ${lin.text}`])];
    return { ok: violations.length === 0, violations, safety, linearizability: lin };
  }
  free() {}
}

export default async function init() {}
