#!/usr/bin/env bash
# The sharded follower-read figures of docs/BENCHMARKS.md: 3 processes on
# loopback (release build) holding 3 shard groups over 24 shards, every
# group on all 3 hosts, their leaders spread (group g on host g). The keys
# are written once (a write bench), then read-only benches alternate: reads
# at each group's leader, then with --follower-reads (any replica of the
# owning group), ROUNDS times each.
# Usage: scripts/bench-sharded-reads.sh [SECONDS] [CLIENTS] [ROUNDS]   (default 5 s, 100 clients, 2)
#        DISTRIBKV=path/to/distribkv-native scripts/bench-sharded-reads.sh (no build)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5}
clients=${2:-100}
rounds=${3:-2}
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
export DISTRIBKV_CLUSTER=127.0.0.1:7411,127.0.0.1:7412,127.0.0.1:7413
for id in 1 2 3; do
    "$bin" server --id "$id" --peers "$DISTRIBKV_CLUSTER" --data-dir "$work/host$id" \
        --certs "$work/certs" --shards 24 --group 1=1,2,3 --group 2=1,2,3 --group 3=1,2,3 \
        2>>"$work/host$id.log" &
    pids+=($!)
done
for _ in $(seq 50); do "$bin" shard show >/dev/null 2>&1 && break; sleep 0.2; done
for g in 1 2 3; do "$bin" shard join "$g" 1,2,3 >/dev/null; done
for _ in $(seq 100); do
    "$bin" shard show --json | grep -q '"moving":\[\]' && "$bin" put warmup 1 >/dev/null 2>&1 && break
    sleep 0.2
done
for g in 1 2 3; do "$bin" shard leader "$g" "$g" >/dev/null; done
leaders=$("$bin" status --json | grep -v '"group":0' | grep '"role":"leader"' | sed 's/.*"id":\([0-9]*\).*/\1/' | sort | uniq -c | awk '{printf "host %s: %s, ", $2, $1}')
echo "# 3 groups, 24 shards; group leaders: ${leaders%, }"
bench() {
    "$bin" bench --clients "$clients" --duration "$seconds" --keys 1000 --value-size 256 --json "$@"
}
echo "# writing the keys"
bench --reads 0
for round in $(seq 1 "$rounds"); do
    echo "# round $round: reads at the leaders"
    bench --reads 1.0
    echo "# round $round: --follower-reads"
    bench --reads 1.0 --follower-reads
done
