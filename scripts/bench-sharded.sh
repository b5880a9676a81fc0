#!/usr/bin/env bash
# The sharding figures of docs/BENCHMARKS.md: the same 3 processes on
# loopback (release build), 256-byte values, N closed-loop clients, first
# as one Raft group (a plain cluster), then sharded over 24 shards with 1, 3
# and 12 shard groups, every group replicated on all 3 hosts, their leaders
# spread evenly (`shard leader`: group g on host (g-1) mod 3 + 1). For each
# run it prints how many group leaders each host holds, the bench summary
# (--json), and the CPU time the three server processes used during the
# bench (user + system, from /proc), in all and per write: on a machine
# whose cores are all busy, throughput follows the CPU a write costs. It
# also prints the load generator's CPU (and, capped, how long it was
# throttled) and the machine's idle share: a load generator at its cap, or
# a machine with no idle CPU left, limits a run as much as the servers.
# With ETCD=1 it then runs ../shared/etcd-compare/compare.py (etcd and the
# plain cluster, same clients and value size) in the same invocation
# (ETCD_COMPARE=path/to/compare.py if the shared folder is elsewhere).
# With CPU_PER_SERVER=C (root, Linux cgroups) every server is capped at C
# CPUs and the load generator at BENCH_CPU (default: the machine's CPUs
# less 3 C), each in a cgroup of its own: "a core per process" on one
# machine, so that one group's leader is limited by its own CPU while its
# followers have some to spare, as on three machines (the premise of
# spreading the leaders), instead of every process sharing the same cores.
# The quota is given per CFS period of CPU_PERIOD_US microseconds (default
# 20000): a capped process runs for C times the period, then waits out the
# rest; a shorter period (5000) makes a capped core behave more like a slow
# one and the one-group figures steadier (docs/BENCHMARKS.md). The quota
# must come to at least 1 ms (the kernel's minimum).
# Usage: scripts/bench-sharded.sh [SECONDS] [CLIENTS] [READS]   (default 10 s, 500 clients, 0)
#        DISTRIBKV=path/to/distribkv-native scripts/bench-sharded.sh (no build)
#        CPU_PER_SERVER=0.4 [CPU_PERIOD_US=5000] scripts/bench-sharded.sh
#        RATE=30000 scripts/bench-sharded.sh (every bench at that fixed rate)
#        SERVER_ARGS="--group-commit-interval-us 1000" scripts/bench-sharded.sh
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
clients=${2:-500}
reads=${3:-0}
# With RATE=R every bench runs at R operations per second (`bench --rate`)
# instead of closed-loop: the CPU per write of each host is then compared
# at equal load, without the batch sizes that a saturated closed loop
# settles on from run to run.
rate=${RATE:-}
# SERVER_ARGS="--flag value ..." is given to every server (split on spaces).
read -r -a server_args <<<"${SERVER_ARGS:-}"
source scripts/lib/cluster.sh
bench_setup

# CPU caps (CPU_PER_SERVER): one cgroup per server and one for the bench,
# with a CFS quota per period of CPU_PERIOD_US (cgroup v2 `cpu.max`, or v1's
# `cpu.cfs_quota_us`).
cpu_cap=${CPU_PER_SERVER:-}
caps=()
if [[ -n $cpu_cap ]]; then
    bench_cpu=${BENCH_CPU:-$(awk -v n="$(nproc)" -v c="$cpu_cap" 'BEGIN { print n - 3 * c }')}
    if ! awk -v c="$cpu_cap" -v b="$bench_cpu" 'BEGIN { exit !(c > 0 && b > 0) }'; then
        echo "error: CPU_PER_SERVER=$cpu_cap leaves BENCH_CPU=$bench_cpu for the bench" >&2
        exit 2
    fi
    period=${CPU_PERIOD_US:-20000}
    if ! [[ $period =~ ^[0-9]+$ ]] || ! awk -v c="$cpu_cap" -v b="$bench_cpu" -v p="$period" \
        'BEGIN { exit !(p <= 1000000 && c * p >= 1000 && b * p >= 1000) }'; then
        echo "error: CPU_PERIOD_US=$period: the period must be at most 1 s and give every" \
            "quota (CPU_PER_SERVER=$cpu_cap, BENCH_CPU=$bench_cpu) at least 1000 us" >&2
        exit 2
    fi
    if [[ -f /sys/fs/cgroup/cgroup.controllers ]] && grep -qw cpu /sys/fs/cgroup/cgroup.controllers; then
        cgroot=/sys/fs/cgroup
        echo +cpu >"$cgroot/cgroup.subtree_control" 2>/dev/null || true
    elif [[ -f /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]]; then
        cgroot=/sys/fs/cgroup/cpu
    else
        echo "error: CPU_PER_SERVER needs the cgroup cpu controller (v2, or v1 at /sys/fs/cgroup/cpu)" >&2
        exit 2
    fi
    # cap NAME CPUS: a cgroup of its own, NAME, limited to CPUS.
    cap() {
        local dir=$cgroot/distribkv-bench-$$-$1 quota
        mkdir -p "$dir"
        quota=$(awk -v c="$2" -v p="$period" 'BEGIN { printf "%d", c * p }')
        if [[ -f $dir/cpu.max ]]; then
            echo "$quota $period" >"$dir/cpu.max"
        else
            echo "$period" >"$dir/cpu.cfs_period_us"
            echo "$quota" >"$dir/cpu.cfs_quota_us"
        fi
        caps+=("$dir")
    }
    for id in 1 2 3; do cap "server$id" "$cpu_cap"; done
    cap load "$bench_cpu"
    trap 'stop_servers; rm -rf "$work"; for dir in "${caps[@]}"; do rmdir "$dir" 2>/dev/null || true; done' EXIT
    echo "# every server capped at $cpu_cap CPU, the bench at $bench_cpu CPU (cgroups, ${cgroot}, period $period us)"
fi

# Moves the running servers into their capped cgroups (CPU_PER_SERVER).
cap_servers() {
    [[ -n $cpu_cap ]] || return 0
    local i
    for i in 0 1 2; do echo "${pids[$i]}" >"${caps[$i]}/cgroup.procs"; done
}

# Runs the load generator, in its capped cgroup with CPU_PER_SERVER; the
# CPU ticks it used (user + system) go to $work/load-ticks.
load() {
    sh -c 'dir=$1 out=$2; shift 2
        if [ -n "$dir" ]; then echo $$ >"$dir/cgroup.procs" || exit 1; fi
        "$@"; rc=$?
        awk "{ print \$16 + \$17 }" /proc/$$/stat >"$out"
        exit $rc' load "${caps[3]:-}" "$work/load-ticks" "$bin" "$@"
}

# Milliseconds the load generator's cgroup has been throttled so far
# (CPU_PER_SERVER), empty without caps.
load_throttled_ms() {
    [[ -n $cpu_cap ]] || return 0
    awk '$1 == "throttled_time" { print int($2 / 1e6) } $1 == "throttled_usec" { print int($2 / 1e3) }' \
        "${caps[3]}/cpu.stat"
}

# The machine's idle and total CPU ticks so far (/proc/stat).
machine_ticks() {
    awk '$1 == "cpu" { print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat
}

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
    local before after woken_before woken_after result ops throttled_before throttled_after idle_before idle_after
    before=$(server_ticks)
    woken_before=$(server_wakeups)
    cap_servers
    throttled_before=$(load_throttled_ms)
    idle_before=$(machine_ticks)
    result=$(load bench --clients "$clients" --duration "$seconds" --reads "$reads" --value-size 256 \
        ${rate:+--rate "$rate"} --json)
    after=$(server_ticks)
    woken_after=$(server_wakeups)
    idle_after=$(machine_ticks)
    throttled_after=$(load_throttled_ms)
    echo "$result"
    ops=$(sed 's/.*"ops":\([0-9]*\).*/\1/' <<<"$result")
    awk -v hz="$(getconf CLK_TCK)" -v ops="$ops" -v load="$(cat "$work/load-ticks")" \
        -v throttled="${throttled_before:+$((throttled_after - throttled_before))}" \
        -v idle_before="$idle_before" -v idle_after="$idle_after" 'BEGIN {
            split(idle_before, b, " "); split(idle_after, a, " ")
            printf "# load generator CPU %.2f s, %.1f us per operation", load / hz, ops ? load / hz * 1e6 / ops : 0
            if (throttled != "") printf ", throttled %d ms", throttled
            printf "; machine idle %.0f%%\n", (a[2] > b[2]) ? 100 * (a[1] - b[1]) / (a[2] - b[2]) : 0
        }'
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
start plain 7300 "${server_args[@]}"
for _ in $(seq 50); do "$bin" put warmup 1 >/dev/null 2>&1 && break; sleep 0.2; done
bench
stop

port=7310
for groups in 1 3 12; do
    args=(--shards 24)
    for g in $(seq 1 "$groups"); do args+=(--group "$g=1,2,3"); done
    start "sharded$groups-" "$port" "${args[@]}" "${server_args[@]}"
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
