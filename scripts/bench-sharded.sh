#!/usr/bin/env bash
# The sharding figures of docs/BENCHMARKS.md: the same 3 processes on
# loopback (release build), 256-byte values, N closed-loop clients, first
# as one Raft group (a plain cluster), then sharded over 24 shards with 1, 3
# and 12 shard groups, every group replicated on all 3 hosts, their leaders
# spread evenly (`shard leader`: group g on host (g-1) mod 3 + 1). For each
# run it prints how many group leaders each host holds, the bench summary
# (--json), and the CPU time the three server processes used during the
# bench (user + system, from /proc), in all and per write: on a machine
# whose cores are all busy, throughput follows the CPU a write costs.
# With ETCD=1 it then runs ../shared/etcd-compare/compare.py (etcd and the
# plain cluster, same clients and value size) in the same invocation
# (ETCD_COMPARE=path/to/compare.py if the shared folder is elsewhere).
# Usage: scripts/bench-sharded.sh [SECONDS] [CLIENTS] [READS]   (default 10 s, 500 clients, 0)
#        DISTRIBKV=path/to/distribkv-native scripts/bench-sharded.sh (no build)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
clients=${2:-500}
reads=${3:-0}
if [[ -z ${DISTRIBKV:-} ]]; then
    cargo build --release -p distribkv-native >&2
fi
bin=${DISTRIBKV:-$PWD/target/release/distribkv-native}
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
"$bin" certs --out "$work/certs" >/dev/null
export DISTRIBKV_CERTS=$work/certs

# start NAME BASEPORT [EXTRA SERVER ARGS...]: three processes.
start() {
    local name=$1 base=$2
    shift 2
    local peers="127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2)),127.0.0.1:$((base + 3))"
    for id in 1 2 3; do
        "$bin" server --id "$id" --peers "$peers" --data-dir "$work/$name$id" --certs "$work/certs" \
            "$@" 2>>"$work/$name$id.log" &
        pids+=($!)
    done
    export DISTRIBKV_CLUSTER=$peers
}

stop() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    pids=()
}

# CPU ticks (user + system) used so far by the running servers.
server_ticks() {
    local total=0 pid
    for pid in "${pids[@]}"; do
        total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
    done
    echo "$total"
}

bench() {
    local before after result ops
    before=$(server_ticks)
    result=$("$bin" bench --clients "$clients" --duration "$seconds" --reads "$reads" --value-size 256 --json)
    after=$(server_ticks)
    echo "$result"
    ops=$(sed 's/.*"ops":\([0-9]*\).*/\1/' <<<"$result")
    awk -v ticks=$((after - before)) -v hz="$(getconf CLK_TCK)" -v ops="$ops" \
        'BEGIN { s = ticks / hz; printf "# servers CPU %.2f s, %.1f us per operation\n", s, ops ? s * 1e6 / ops : 0 }'
}

echo "# one group (plain cluster)"
start plain 7300
for _ in $(seq 50); do "$bin" put warmup 1 >/dev/null 2>&1 && break; sleep 0.2; done
bench
stop

port=7310
for groups in 1 3 12; do
    args=(--shards 24)
    for g in $(seq 1 "$groups"); do args+=(--group "$g=1,2,3"); done
    start "sharded$groups-" "$port" "${args[@]}"
    port=$((port + 10))
    for _ in $(seq 50); do "$bin" shard show >/dev/null 2>&1 && break; sleep 0.2; done
    for g in $(seq 1 "$groups"); do "$bin" shard join "$g" 1,2,3 >/dev/null; done
    for _ in $(seq 100); do
        "$bin" shard show --json | grep -q '"moving":\[\]' && "$bin" put warmup 1 >/dev/null 2>&1 && break
        sleep 0.2
    done
    for g in $(seq 1 "$groups"); do "$bin" shard leader "$g" $(((g - 1) % 3 + 1)) >/dev/null; done
    leaders=$("$bin" status --json | grep -v '"group":0' | grep '"role":"leader"' | sed 's/.*"id":\([0-9]*\).*/\1/' | sort | uniq -c | awk '{printf "host %s: %s, ", $2, $1}')
    echo "# sharded: $groups groups, 24 shards; group leaders: ${leaders%, }"
    bench
    stop
done

if [[ ${ETCD:-0} == 1 ]]; then
    echo "# etcd against the plain cluster (../shared/etcd-compare/compare.py)"
    compare_args=(--project . --clients "$clients" --seconds "$seconds")
    if [[ $reads != 0 ]]; then compare_args+=(--reads); fi
    python3 "${ETCD_COMPARE:-../shared/etcd-compare/compare.py}" "${compare_args[@]}" || true
fi
