#!/usr/bin/env bash
# The backup figures of docs/BENCHMARKS.md, on local three-server clusters
# (release build, loopback): KEYS keys of 256 bytes (default 100,000) are
# loaded into a single group and into a sharded cluster (24 shards, 3
# groups, leaders spread); each is saved with `snapshot save`, and each
# backup is loaded into a new, empty cluster of the other kind with
# `snapshot restore FILE --cluster` (and the sharded one into a new
# sharded cluster too). Prints the seconds each step took and the files'
# `snapshot status`.
# Usage: scripts/bench-backup.sh [KEYS]
#        DISTRIBKV=path/to/distribkv-native scripts/bench-backup.sh (no build)
set -euo pipefail
cd "$(dirname "$0")/.."
keys=${1:-100000}
source scripts/lib/cluster.sh
bench_setup

sharded_args=(--shards 24 --group 1=1,2,3 --group 2=1,2,3 --group 3=1,2,3)

# single NAME BASEPORT / sharded NAME BASEPORT: a cluster that takes writes.
single() {
    start_servers "$@"
    for _ in $(seq 50); do
        "$bin" put warmup 1 >/dev/null 2>&1 && "$bin" delete warmup >/dev/null && return
        sleep 0.2
    done
    echo "cluster $1 did not start" >&2
    exit 1
}
sharded() {
    start_servers "$@" "${sharded_args[@]}"
    start_groups 3
    "$bin" delete warmup >/dev/null
}

now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }

# fill: KEYS puts of 256 bytes from 10 clients.
fill() {
    local value part loaders=() start
    value=$(head -c 256 /dev/zero | tr '\0' 'v')
    start=$(now)
    for part in $(seq 0 9); do
        seq $((part * keys / 10)) $(((part + 1) * keys / 10 - 1)) | sed "s/.*/put key& $value/" |
            "$bin" client >/dev/null &
        loaders+=($!)
    done
    for loader in "${loaders[@]}"; do wait "$loader"; done
    echo "  filled with $keys keys in $(since "$start") s"
}

# save FILE, load FILE: timed.
save() {
    local start
    start=$(now)
    "$bin" snapshot save "$1" | sed 's/^/  /'
    echo "  snapshot save: $(since "$start") s"
    "$bin" snapshot status "$1" | head -1 | sed 's/^/  status: /'
}
load() {
    local start
    start=$(now)
    "$bin" snapshot restore "$1" --cluster "$DISTRIBKV_CLUSTER" | sed 's/^/  /'
    echo "  snapshot restore --cluster: $(since "$start") s"
    "$bin" get "key$((keys - 1))" >/dev/null
}

echo "== single group: fill, save"
single plain 17500
fill
save "$work/single.snap"
stop_servers

echo "== sharded, 3 groups: fill, save"
sharded shard 17510
fill
save "$work/sharded.snap"
stop_servers

echo "== the single group's backup loaded into a new sharded cluster"
sharded load1 17520
load "$work/single.snap"
stop_servers

echo "== the sharded backup loaded into a new sharded cluster"
sharded load2 17530
load "$work/sharded.snap"
stop_servers

echo "== the sharded backup loaded into a new single group"
single load3 17540
load "$work/sharded.snap"
stop_servers
