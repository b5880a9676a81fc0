# Sourced by the scripts that run local clusters (after `set -euo pipefail`
# and a `cd` to the repository): the release build, the certificates and
# the server start loop they share. Every server started is in `pids`.

pids=()

# Stops every server started.
stop_servers() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    pids=()
}

# bench_setup: for the bench scripts. Builds the release binary unless
# DISTRIBKV names one (`bin`), makes a temporary folder (`work`, removed on
# exit with every server) holding certificates (`DISTRIBKV_CERTS`).
bench_setup() {
    if [[ -z ${DISTRIBKV:-} ]]; then
        cargo build --release -p distribkv-native >&2
    fi
    bin=${DISTRIBKV:-$PWD/target/release/distribkv-native}
    work=$(mktemp -d)
    trap 'stop_servers; rm -rf "$work"' EXIT
    "$bin" certs --out "$work/certs" >/dev/null
    export DISTRIBKV_CERTS=$work/certs
}

# start_servers NAME BASEPORT [EXTRA SERVER ARGS...]: three servers of
# `bench_setup`'s binary on 127.0.0.1:BASEPORT+1..3, data in $work/NAMEn,
# logs in $work/NAMEn.log (ID in an extra argument becomes the server's
# id); sets DISTRIBKV_CLUSTER.
start_servers() {
    local name=$1 base=$2
    shift 2
    local peers="127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2)),127.0.0.1:$((base + 3))"
    for id in 1 2 3; do
        local extra=()
        for arg in "$@"; do extra+=("${arg//ID/$id}"); done
        "$bin" server --id "$id" --peers "$peers" --data-dir "$work/$name$id" --certs "$work/certs" \
            "${extra[@]}" 2>>"$work/$name$id.log" &
        pids+=($!)
    done
    export DISTRIBKV_CLUSTER=$peers
}

# start_groups GROUPS: on servers started with groups 1..GROUPS on hosts
# 1,2,3, once the controller answers: joins the groups, waits until no
# shard is moving and a write goes through, then spreads the groups'
# leaders (group g on host (g-1) mod 3 + 1).
start_groups() {
    local groups=$1 g
    for _ in $(seq 50); do "$bin" shard show >/dev/null 2>&1 && break; sleep 0.2; done
    for g in $(seq 1 "$groups"); do "$bin" shard join "$g" 1,2,3 >/dev/null; done
    for _ in $(seq 100); do
        "$bin" shard show --json | grep -q '"moving":\[\]' && "$bin" put warmup 1 >/dev/null 2>&1 && break
        sleep 0.2
    done
    for g in $(seq 1 "$groups"); do "$bin" shard leader "$g" $(((g - 1) % 3 + 1)) >/dev/null; done
}

# group_leaders: how many group leaders each host holds ("host 1: 4, host
# 2: 4, host 3: 4").
group_leaders() {
    local leaders
    leaders=$("$bin" status --json | grep -v '"group":0' | grep '"role":"leader"' | sed 's/.*"id":\([0-9]*\).*/\1/' | sort | uniq -c | awk '{printf "host %s: %s, ", $2, $1}')
    echo "${leaders%, }"
}

# start_from_config CONFIG FOLDER NAME METRICS_PREFIX: for the start
# scripts. Builds the release binary if missing (`binary`, or DISTRIBKV),
# reads `peers` and `certs` from CONFIG, makes the certificates once, then
# starts server N of `count` with --id N, data in FOLDER/NAMEN, log in
# FOLDER/NAMEN.log, metrics on 127.0.0.1:METRICS_PREFIXN; every server
# stops with the script (Ctrl-C included).
start_from_config() {
    local config=$1 folder=$2 name=$3 metrics=$4
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
    mkdir -p "$folder"
    trap stop_servers INT TERM EXIT
    count=$(tr ',' '\n' <<<"$peers" | wc -l)
    local started=()
    for id in $(seq 1 "$count"); do
        "$binary" server --config "$config" --id "$id" --data-dir "$folder/$name$id" \
            --metrics-addr "127.0.0.1:$metrics$id" 2>>"$folder/$name$id.log" &
        pids+=($!)
        started+=("$id:$!")
    done
    # A server that cannot start (its data folder in use by another
    # cluster, a bad setting) exits at once: name it, with the end of its
    # log, instead of waiting for it.
    sleep 1
    local entry
    for entry in "${started[@]}"; do
        if ! kill -0 "${entry#*:}" 2>/dev/null; then
            echo "error: server ${entry%%:*} did not start; the end of $folder/$name${entry%%:*}.log:" >&2
            tail -n 5 "$folder/$name${entry%%:*}.log" >&2
            exit 1
        fi
    done
}
