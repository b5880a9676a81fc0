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
binary=${DISTRIBKV:-target/release/distribkv-native}
if [[ ! -x $binary ]]; then
    cargo build --release -p distribkv-native
fi
# The peers and the certificate folder, read from the config file.
peers=$(sed -n 's/^peers *= *\[\(.*\)\]/\1/p' "$config" | tr -d ' "')
certs=$(sed -n 's/^certs *= *"\(.*\)"/\1/p' "$config")
if [[ -z $peers || -z $certs ]]; then
    echo "error: $config needs peers = [...] and certs = \"...\"" >&2
    exit 2
fi
[[ -f $certs/ca-cert.pem ]] || "$binary" certs --out "$certs"
mkdir -p cluster
pids=()
stop() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait
}
trap stop INT TERM EXIT
count=$(tr ',' '\n' <<<"$peers" | wc -l)
for id in $(seq 1 "$count"); do
    "$binary" server --config "$config" --id "$id" --data-dir "cluster/node$id" \
        --metrics-addr "127.0.0.1:910$id" 2>>"cluster/node$id.log" &
    pids+=($!)
done
echo "cluster of $count nodes started from $config (logs in cluster/node*.log)"
echo "try: DISTRIBKV_CLUSTER=$peers DISTRIBKV_CERTS=$certs $binary status"
wait
