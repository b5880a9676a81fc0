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
source scripts/lib/cluster.sh
bench_setup
start_servers host 7410 --shards 24 --group 1=1,2,3 --group 2=1,2,3 --group 3=1,2,3
start_groups 3
echo "# 3 groups, 24 shards; group leaders: $(group_leaders)"
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
