#!/usr/bin/env bash
# The time a large shard takes to move (docs/BENCHMARKS.md, "A large shard
# moving in parts"), on a local 3-host sharded cluster (release build,
# loopback; 8 shards, groups 1 and 2 on every host): MIB values of 1 MiB
# are written into shard 3 (default 50), then `shard move 3` hands it to
# the other group, timed until every replica of that group serves it
# (`status --json`).
# Usage: scripts/bench-shard-move.sh [MIB]
#        DISTRIBKV=path/to/distribkv-native scripts/bench-shard-move.sh (no build)
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-50}
source scripts/lib/cluster.sh
bench_setup
start_servers move 17700 --shards 8 --group 1=1,2,3 --group 2=1,2,3
for _ in $(seq 50); do "$bin" shard show >/dev/null 2>&1 && break; sleep 0.2; done
"$bin" shard join 1 1,2,3 >/dev/null
"$bin" shard join 2 1,2,3 >/dev/null
owner=$("$bin" shard show --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["shards"][3])')
to=$((3 - owner))
# Keys of shard 3: the service's hash (FNV-1a, 64 bits) modulo 8 shards.
keys=$(python3 -c "
def fnv(b):
    h = 0xcbf29ce484222325
    for c in b:
        h = ((h ^ c) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h
print(' '.join([k for k in ('big%d' % i for i in range(100 * $mib)) if fnv(k.encode()) % 8 == 3][:$mib]))
")
value=$(head -c 1048576 /dev/zero | tr '\0' 'v')
start=$(date +%s.%N)
for k in $keys; do echo "put $k $value"; done | "$bin" client >/dev/null
echo "wrote $mib values of 1 MiB into shard 3 (group $owner) in $(echo "$(date +%s.%N) - $start" | bc) s"
start=$(date +%s.%N)
"$bin" shard move 3 "$to" >/dev/null
until "$bin" status --json |
    python3 -c "import json,sys; lines=[json.loads(l) for l in sys.stdin]; served=[3 in l['shards'] for l in lines if l['group'] == $to]; sys.exit(0 if len(served) == 3 and all(served) else 1)"; do
    sleep 0.05
done
echo "shard 3 moved to group $to in $(echo "$(date +%s.%N) - $start" | bc) s"
"$bin" status | grep "group $to:"
