//! The TypeScript shapes of everything the JS API takes and returns,
//! written into the built package's `distribkv_wasm.d.ts`.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** A node id (1..n) or a client ("c1", "c2", ...). */
export type Endpoint = number | string;

export interface SimulationConfig {
  nodes?: number; seed?: number | bigint;
  electionTimeoutMs?: [number, number]; heartbeatMs?: number; latencyMs?: [number, number];
  dropRate?: number; duplicateRate?: number; snapshotEvery?: number;
  preVote?: boolean; checkQuorum?: boolean;
  diskLatencyMs?: [number, number]; leaseReads?: boolean; followerReads?: boolean;
  maxEntriesPerMessage?: number;
  snapshotChunkBytes?: number; clientTimeoutMs?: number; clientGiveUpMs?: number | null;
  checkSafety?: boolean; traceCapacity?: number;
}

export interface LogEntry { index: number; term: number; command: string; }

export interface FollowerProgress {
  id: number; matchIndex: number; nextIndex: number;
  state: "probe" | "replicate" | "snapshot"; inflight: number;
}

export interface NodeState {
  id: number; up: boolean; role: "leader" | "follower" | "candidate" | "precandidate" | "learner";
  term: number; votedFor: number | null; leader: number | null;
  commitIndex: number; appliedIndex: number; snapshotIndex: number; snapshotTerm: number;
  lastIndex: number; durableIndex: number; electionDeadline: number | null;
  log: LogEntry[]; kv: Record<string, string>; progress: FollowerProgress[] | null;
  transferTarget: number | null; followerReadsServed: number;
}

export interface InFlightMessage {
  id: number; from: Endpoint; to: Endpoint; kind: string;
  sentAt: number; deliverAt: number; summary: string;
}

export interface SimulationState {
  now: number; leader: number | null; nodes: NodeState[]; inFlight: InFlightMessage[];
  links: { cut: [Endpoint, Endpoint][]; partition: Endpoint[][] | null };
  membership: { voters: number[]; learners: number[] };
}

export interface HistoryOp {
  id: number; client: number; kind: "put" | "append" | "get" | "delete"; key: string;
  value: string | null; invokedAt: number; completedAt: number | null; output: string | null;
  status: "pending" | "ok" | "unknown" | "failed"; attempts: number; error: string | null;
}

export interface SimEvent { seq?: number; at: number; node: Endpoint | null; kind: string; text: string; }

export interface ClientInfo {
  id: number; busy: boolean; leaderGuess: number | null; seq: number;
  workload: boolean; session: number | null;
}

export interface WorkloadConfig { clients?: number; intervalMs?: number; keys?: number; readFraction?: number; }

export interface CheckResult {
  ok: boolean; violations: string[]; safety: string[];
  linearizability: { ok: boolean; key: string | null; ops: number[]; text: string; decided: boolean };
}

export interface SimStats {
  events: number; packetsSent: number; rpcsSent: number; bytesSent: number;
  delivered: number; dropped: number; syncs: number; writesLost: number;
}
/** `new ShardedSimulation(config)`: every field optional. Groups are 100, 101, ...
 * Without `placement`, group i's `replicas` replicas go round robin on consecutive hosts;
 * the controller group (0) is on hosts 1..controllerReplicas. `join`: the groups asked to join
 * at the start (default: all). `clients`/`keys`: the workload (started by `setWorkload(true)`).
 * `adminTimeoutMs`: how long a page operation waits for its answer (default 10,000). */
export interface ShardedConfig {
  seed?: number | bigint; hosts?: number; groups?: number; replicas?: number; shards?: number;
  controllerReplicas?: number; placement?: number[][]; join?: number[];
  clients?: number; keys?: number; latencyMs?: [number, number]; dropRate?: number;
  /** Journal lines kept for `events()` (default 1000; 0: no journal). */
  traceCapacity?: number;
  /** `[min, max]` ms, 1 <= min < max <= 86,400,000 (default [150, 300]). */
  electionTimeoutMs?: [number, number];
  /** Below `electionTimeoutMs`' min (default 50). */
  heartbeatMs?: number;
  snapshotEvery?: number;
  adminTimeoutMs?: number;
  /** The workload's clients read at any replica of a key's group, after a ReadIndex round with
   * its leader (default false); the page's own client ("c0") reads at the leaders. */
  followerReads?: boolean;
}

/** A replica a host holds; role "down" while the host is down. */
export interface ShardedReplica {
  group: number; role: "leader" | "follower" | "candidate" | "precandidate" | "learner" | "down";
  term: number; leader: number | null; commitIndex: number; appliedIndex: number;
  configNum: number; hibernating: boolean;
  /** Follower reads it answered while not leading its group, since its host last started. */
  followerReadsServed: number;
}

export interface ShardedHost { id: number; up: boolean; replicas: ShardedReplica[]; }

export interface HeldShard { shard: number; status: "serving" | "pulling" | "sending"; peer: number | null; keys: number; }

/** A group (id 0: the controller); `shards` as its most advanced up replica holds them. */
export interface ShardedGroup {
  id: number; hosts: number[]; leader: number | null; joined: boolean;
  /** The group left and was retired: its replicas are gone, its id cannot join again. */
  retired: boolean;
  configNum: number | null; shards: HeldShard[];
}

/** The shard map: `owner` from the controller's latest configuration (0: none). */
export interface ShardInfo {
  shard: number; owner: number;
  status: "serving" | "moving" | "pending" | "unassigned"; from: number | null;
}

export interface ShardConfiguration { num: number; shards: number[]; groups: Record<string, number[]>; }

/** `from`, `to`: a host id (from 1) or a client (`"c0"`: the page's); a reply's `from` is the host
 * that answers (the `to` of the request it answers). */
export interface ShardedInFlight {
  /** For `message(id)` and `dropMessage(id)`. */
  id: number; from: Endpoint; to: Endpoint; deliverAt: number; kinds: string[];
  pushes: { shard: number; fromGroup: number; toGroup: number; configNum: number }[];
  groups: number[];
}

export interface ShardedClient {
  id: number; pending: number | null; key: string | null; shard: number | null;
  group: number | null; configNum: number | null;
}

export interface AdminDone {
  op: string; askedAt: number; endedAt: number; outcome: "ok" | "refused" | "timeout"; text: string;
  /** A refusal's name and argument (`"UnknownGroup(101)"`), for programs; null unless refused. */
  error: string | null;
}

export interface ShardedState {
  now: number; hosts: ShardedHost[]; groups: ShardedGroup[]; config: ShardConfiguration | null;
  shards: ShardInfo[]; inFlight: ShardedInFlight[]; clients: ShardedClient[]; workload: boolean;
  admin: { running: string | null; queued: string[]; done: AdminDone[] };
  links: { partition: Endpoint[][] | null; cut: [Endpoint, Endpoint][] };
}

export interface ShardedHistoryOp {
  id: number; client: number; kind: "put" | "append" | "get" | "delete"; key: string;
  value: string | null; shard: number; invokedAt: number; completedAt: number | null;
  output: string | null; status: "pending" | "ok" | "unknown";
}

/** `message(id)`: one item in flight. `messages[]`: `{ kind, group, ...fields }`, a Raft
 * message's fields by the core's serde names (`term`, `prevLogIndex`, `entries`, ...), as the
 * single-group `message(id)` gives them; `from`/`to` inside a Raft message are host ids; a
 * client request's `op` and its fields (`key`, `value`), `seq`, and `client` (a random 64-bit
 * id, as a decimal string); a reply's `ok` and `output`, `reply` or `error`. */
export interface ShardedMessage {
  id: number; from: Endpoint; to: Endpoint; deliverAt: number; kind: string;
  messages: ({ kind: string; group?: number } & Record<string, unknown>)[];
}

/** `events(since)`: one journal line. `node`: the host it happened on; `group`: 0 is the controller. */
export interface ShardedEvent {
  seq: number; at: number; node: number | null; group?: number; kind: string; text: string;
}

export interface ShardedCheckResult {
  ok: boolean; violations: string[];
  groups: { group: number; ok: boolean; violations: string[] }[];
  other: string[];
  linearizability: { ok: boolean; key: string | null; ops: number[]; text: string; decided: boolean };
}
"#;
