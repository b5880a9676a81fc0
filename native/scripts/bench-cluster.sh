#!/usr/bin/env bash
# Measures a local 3-node distribkv-native cluster on loopback (fsync on)
# with `bench`: writes, then linearizable reads, at 1, 16, 100 and 500
# clients, 256-byte values. Prints one JSON line per run.
#
#   native/scripts/bench-cluster.sh [SECONDS_PER_RUN]   (default 10)
#
# Everything lives in a temporary folder, removed at exit; the servers are
# stopped at exit too, even on failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
duration=${1:-10}
cargo build --release -p distribkv-native >&2
bin=$PWD/target/release/distribkv-native
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
"$bin" certs --out "$work/certs" >&2
ports=()
for _ in 1 2 3; do
    ports+=("$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')")
done
peers="127.0.0.1:${ports[0]},127.0.0.1:${ports[1]},127.0.0.1:${ports[2]}"
for id in 1 2 3; do
    "$bin" server --id "$id" --peers "$peers" --data-dir "$work/node$id" --certs "$work/certs" \
        2>"$work/node$id.log" &
    pids+=($!)
done
# Wait for a leader.
for _ in $(seq 100); do
    if "$bin" status --json --cluster "$peers" --certs "$work/certs" 2>/dev/null | grep -q '"role":"leader"'; then
        break
    fi
    sleep 0.1
done
echo "# $(nproc) cores, $(uname -r), $(date -u +%Y-%m-%dT%H:%MZ)" >&2
for reads in 0.0 1.0; do
    for clients in 1 16 100 500; do
        "$bin" bench --cluster "$peers" --certs "$work/certs" --clients "$clients" \
            --duration "$duration" --value-size 256 --keys 1000 --reads "$reads" --json
    done
done
