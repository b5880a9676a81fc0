#!/usr/bin/env bash
# Starts a local sharded cluster from a config file (default:
# scripts/sharded-cluster.toml): three hosts, each holding a replica of the
# shard controller and of every shard group; certificates in
# cluster-sharded/certs (made once), host N with --id N, its data in
# cluster-sharded/hostN, its log in cluster-sharded/hostN.log, its metrics
# on 127.0.0.1:920N. On a new cluster, groups 1 and 2 are joined (they
# share the shards); group 3 waits for `shard join`. Runs until interrupted
# (Ctrl-C stops every host cleanly).
#
#   scripts/start-sharded-cluster.sh [CONFIG]
#   DISTRIBKV=path/to/distribkv-native scripts/start-sharded-cluster.sh
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-scripts/sharded-cluster.toml}
source scripts/lib/cluster.sh
start_from_config "$config" cluster-sharded host 920
export DISTRIBKV_CLUSTER=$peers DISTRIBKV_CERTS=$certs
# A new cluster: give groups 1 and 2 the shards (retried until the
# controller has a leader; a restarted cluster already has them).
for attempt in $(seq 1 30); do
    if config_json=$("$binary" shard show --json 2>/dev/null); then
        if [[ $config_json == '{"num":0,'* ]]; then
            "$binary" shard join 1 1,2,3 >/dev/null && "$binary" shard join 2 1,2,3 >/dev/null
        fi
        break
    fi
    sleep 1
done
# Until the groups have taken their shards (`shard show` lists them as
# moving until then), at most 10 s.
for attempt in $(seq 1 20); do
    "$binary" shard show --json 2>/dev/null | grep -q '"moving":\[\]' && break
    sleep 0.5
done
echo "sharded cluster of $count hosts started from $config (logs in cluster-sharded/host*.log)"
"$binary" shard show || true
echo "try: DISTRIBKV_CLUSTER=$peers DISTRIBKV_CERTS=$certs $binary shard show"
wait
