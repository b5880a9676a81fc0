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
  diskLatencyMs?: [number, number]; leaseReads?: boolean; maxEntriesPerMessage?: number;
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
  transferTarget: number | null;
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
"#;
