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
source scripts/lib/cluster.sh
bench_setup

# start NAME BASEPORT [EXTRA SERVER ARGS...]: three processes.
start() { start_servers "$@"; }
stop() { stop_servers; }

# CPU ticks (user + system) used so far by each running server, in id order.
server_ticks() {
    local pid
    for pid in "${pids[@]}"; do
        awk '{printf "%d ", $14 + $15}' "/proc/$pid/stat"
    done
}

# Voluntary context switches (wake-ups) so far of every thread of the servers.
server_wakeups() {
    local pid
    cat /proc/"${pids[0]}"/task/*/status /proc/"${pids[1]}"/task/*/status \
        /proc/"${pids[2]}"/task/*/status 2>/dev/null |
        awk '/^voluntary_ctxt_switches/ { n += $2 } END { print n + 0 }'
}

bench() {
    local before after woken_before woken_after result ops
    before=$(server_ticks)
    woken_before=$(server_wakeups)
    result=$("$bin" bench --clients "$clients" --duration "$seconds" --reads "$reads" --value-size 256 --json)
    after=$(server_ticks)
    woken_after=$(server_wakeups)
    echo "$result"
    ops=$(sed 's/.*"ops":\([0-9]*\).*/\1/' <<<"$result")
    awk -v before="$before" -v after="$after" -v hz="$(getconf CLK_TCK)" -v ops="$ops" \
        -v woken=$((woken_after - woken_before)) 'BEGIN {
            n = split(before, b, " "); split(after, a, " ")
            for (i = 1; i <= n; i++) { d[i] = (a[i] - b[i]) / hz; s += d[i]; if (d[i] > top) top = d[i] }
            printf "# servers CPU %.2f s, %.1f us per operation", s, ops ? s * 1e6 / ops : 0
            printf " (host 1, 2, 3: %.1f, %.1f, %.1f us)", d[1] * 1e6 / ops, d[2] * 1e6 / ops, d[3] * 1e6 / ops
            printf "; busiest host %.1f us per operation: %.0f operations/s on a core of its own", top * 1e6 / ops, top ? ops / top : 0
            printf "; %.3f wake-ups per operation\n", ops ? woken / ops : 0
        }'
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
    start_groups "$groups"
    echo "# sharded: $groups groups, 24 shards; group leaders: $(group_leaders)"
    bench
    stop
done

if [[ ${ETCD:-0} == 1 ]]; then
    echo "# etcd against the plain cluster (../shared/etcd-compare/compare.py)"
    # compare.py runs <project>/target/release/distribkv-native: point it at
    # the binary benched above (DISTRIBKV), not at whatever the tree holds.
    project=$work/etcd-compare
    mkdir -p "$project/target/release"
    ln -s "$(realpath "$bin")" "$project/target/release/distribkv-native"
    compare_args=(--project "$project" --clients "$clients" --seconds "$seconds")
    if [[ $reads != 0 ]]; then compare_args+=(--reads); fi
    python3 "${ETCD_COMPARE:-../shared/etcd-compare/compare.py}" "${compare_args[@]}" || true
fi
