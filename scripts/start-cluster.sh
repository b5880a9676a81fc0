#!/usr/bin/env bash
# Starts a local cluster from a config file (default: scripts/cluster.toml):
# certificates in cluster/certs (made once), node N with --id N, its data in
# cluster/nodeN, its log in cluster/nodeN.log, its metrics on 127.0.0.1:910N.
# Runs until interrupted (Ctrl-C stops every node cleanly).
#
#   scripts/start-cluster.sh [CONFIG]
#   DISTRIBKV=path/to/distribkv-native scripts/start-cluster.sh
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-scripts/cluster.toml}
source scripts/lib/cluster.sh
start_from_config "$config" cluster node 910
echo "cluster of $count nodes started from $config (logs in cluster/node*.log)"
echo "try: DISTRIBKV_CLUSTER=$peers DISTRIBKV_CERTS=$certs $binary status"
wait
