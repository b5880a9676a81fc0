#!/usr/bin/env bash
# The operations figures of docs/BENCHMARKS.md, on a local 3-node cluster
# (release build, loopback):
#   1. writes/s and p99 at 100 clients, metrics off, then on;
#   2. write p99 while a node is added (member add: learner, catch-up,
#      promotion), against the steady p99 of step 1; then (2b) while the
#      leader is replaced: node 5 added, the leader removed (it hands over
#      first; the bench's clients started before node 5 existed);
#   3. the time for a new node to catch up on 100,000 keys of 256 bytes
#      (member add of a node that joins with an empty data folder);
#   4. the time of `snapshot save` for that store.
# Usage: scripts/bench-operations.sh [SECONDS]   (default 10 s per bench run)
#        DISTRIBKV=path/to/distribkv-native scripts/bench-operations.sh (no build)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
source scripts/lib/cluster.sh
bench_setup

# start_cluster NAME BASEPORT [EXTRA SERVER ARGS...]: three nodes, once they take writes.
start_cluster() {
    start_servers "$@"
    for _ in $(seq 50); do
        "$bin" put warmup 1 >/dev/null 2>&1 && return
        sleep 0.2
    done
    echo "cluster $1 did not start" >&2
    exit 1
}

bench() {
    "$bin" bench --clients 100 --duration "$seconds" --reads 0 --value-size 256 --json
}

echo "== 1. 100 clients, writes of 256 bytes, ${seconds} s"
start_cluster off 17400
off=$(bench)
echo "metrics off: $off"
stop_servers
start_cluster on 17410 --metrics-addr 127.0.0.1:1742ID
on=$(bench)
echo "metrics on:  $on"
curl -s 127.0.0.1:17421/metrics | grep -E '^distribkv_server_proposals_committed_total|^distribkv_disk_wal_fsync_duration_seconds_count' || true

echo "== 2. write p99 while node 4 is added"
"$bin" server --id 4 --listen 127.0.0.1:17414 --join "$DISTRIBKV_CLUSTER" --certs "$work/certs" \
    --data-dir "$work/on4" 2>>"$work/on4.log" &
pids+=($!)
bench >"$work/during.json" &
bench_pid=$!
sleep $((seconds / 3))
start=$(date +%s.%N)
"$bin" member add 4 127.0.0.1:17414
added=$(date +%s.%N)
wait "$bench_pid"
echo "during the change: $(cat "$work/during.json")"
echo "member add (learner, catch-up, promotion) took $(echo "$added - $start" | bc) s"

echo "== 2b. write p99 while the leader is replaced (node 5 added, then the leader removed)"
leader_of() {
    "$bin" member list --json |
        python3 -c 'import json,sys; print(next(m["id"] for m in map(json.loads, sys.stdin) if m["leader"]))'
}
"$bin" server --id 5 --listen 127.0.0.1:17415 --join "$DISTRIBKV_CLUSTER" --certs "$work/certs" \
    --data-dir "$work/on5" 2>>"$work/on5.log" &
pids+=($!)
old_leader=$(leader_of)
bench >"$work/replace.json" &
bench_pid=$!
sleep $((seconds / 3))
start=$(date +%s.%N)
"$bin" member add 5 127.0.0.1:17415
"$bin" member remove "$old_leader"
replaced=$(date +%s.%N)
wait "$bench_pid"
echo "during the replacement: $(cat "$work/replace.json")"
echo "member add 5 + member remove $old_leader took $(echo "$replaced - $start" | bc) s; leader now: node $(leader_of)"
stop_servers

echo "== 3. a new node catches up on 100,000 keys of 256 bytes"
start_cluster big 17430
value=$(head -c 256 /dev/zero | tr '\0' 'v')
loaded=$(date +%s.%N)
loaders=()
for part in $(seq 0 9); do
    seq $((part * 10000)) $((part * 10000 + 9999)) | sed "s/.*/put key& $value/" |
        "$bin" client >/dev/null &
    loaders+=($!)
done
for loader in "${loaders[@]}"; do wait "$loader"; done
echo "loaded 100,000 keys in $(echo "$(date +%s.%N) - $loaded" | bc) s"
"$bin" status
"$bin" server --id 4 --listen 127.0.0.1:17434 --join "$DISTRIBKV_CLUSTER" --certs "$work/certs" \
    --data-dir "$work/big4" 2>>"$work/big4.log" &
pids+=($!)
start=$(date +%s.%N)
"$bin" member add 4 127.0.0.1:17434
echo "node 4 caught up and was promoted in $(echo "$(date +%s.%N) - $start" | bc) s"

echo "== 4. snapshot save of that store"
start=$(date +%s.%N)
"$bin" snapshot save "$work/backup.snap"
echo "snapshot save took $(echo "$(date +%s.%N) - $start" | bc) s"
"$bin" snapshot status "$work/backup.snap"
stop_servers
