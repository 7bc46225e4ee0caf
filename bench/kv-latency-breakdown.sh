#!/usr/bin/env bash
# Where a put's time goes in keel kv, at CLIENTS clients (default 1: sequential puts to the leader; 128-byte
# values): the same load on 1 and 3 nodes, with the data on disk (TMPDIR) and on tmpfs (/dev/shm, where fsync costs nothing).
# For each, from the nodes' /metrics before and after the run:
#   client     what `keel kv bench` sees (mean and p50 per put)
#   http       the leader's own time per put, from request read to answer written (keel_http_request_duration)
#   persist    the mean time of one persist (one WAL write + fdatasync) on the leader and on a follower,
#              and the leader's persists per put (below 1: group commit)
#   (http is measured on the leader, over the puts sent to it directly; with many clients, the others go to
#   followers, which forward them)
#   cpu        CPU time (user + system) per put: all keel nodes together, and the load generator
# client - http is the HTTP exchange and the load generator; http - persist is Raft, the replica thread and
# the wait for the followers.
#
#   bench/kv-latency-breakdown.sh            # SECONDS_PER_RUN=10 CLIENTS=1
#   CLIENTS=64 bench/kv-latency-breakdown.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
CLIENTS=${CLIENTS:-1}
PORT_BASE=${PORT_BASE:-24100}
KEEL=${KEEL:-target/release/keel}
if [ -z "${KEEL_PREBUILT:-}" ]; then cargo build --release -q -p keel; fi
command -v curl >/dev/null || { echo "this script reads /metrics with curl: install curl" >&2; exit 1; }

dirs=()
pids=()
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  for dir in "${dirs[@]}"; do rm -rf "$dir"; done
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# cpu_seconds PID...: user + system CPU time of these processes so far.
cpu_seconds() {
  local ticks=0 pid
  for pid in "$@"; do
    ticks=$((ticks + $(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  echo "$ticks / $(getconf CLK_TCK)" | bc -l
}

# metric NAME ENDPOINT: the value of one /metrics line (0 if absent).
metric() { curl -s "$2/metrics" | awk -v name="$1" '$1 == name { print $2; found = 1 } END { if (!found) print 0 }'; }

run_case() {
  local where=$1 root=$2 nodes=$3
  local tmp
  tmp=$(mktemp -d "$root/keel-breakdown.XXXXXX")
  dirs+=("$tmp")
  local endpoints="" i j peers
  for i in $(seq "$nodes"); do endpoints="${endpoints:+$endpoints,}http://127.0.0.1:$((PORT_BASE + i))"; done
  pids=()
  for i in $(seq "$nodes"); do
    peers=""
    for j in $(seq "$nodes"); do
      [ "$i" = "$j" ] || peers="${peers:+$peers,}$j=127.0.0.1:$((PORT_BASE + 10 + j))"
    done
    "$KEEL" kv serve --id "$i" --data-dir "$tmp/node-$i" --listen "127.0.0.1:$((PORT_BASE + 10 + i))" \
      --http "127.0.0.1:$((PORT_BASE + i))" ${peers:+--peers "$peers"} >"$tmp/node-$i.log" 2>&1 &
    pids+=($!)
  done
  for _ in $(seq 60); do
    "$KEEL" kv bench --endpoints "$endpoints" --requests 1 --warmup-seconds 0 >/dev/null 2>&1 && break
    sleep 0.5
  done
  local leader="" follower=""
  for endpoint in ${endpoints//,/ }; do
    if curl -s "$endpoint/v1/status" | grep -q '"role":"leader"'; then leader=$endpoint; else follower=$endpoint; fi
  done
  [ -n "$leader" ] || { echo "no leader among $endpoints" >&2; tail "$tmp"/node-*.log >&2; exit 1; }
  local put='keel_http_request_duration_seconds_sum{route="kv_put"}'
  local put_n='keel_http_request_duration_seconds_count{route="kv_put"}'
  local before=("$(metric "$put" "$leader")" "$(metric "$put_n" "$leader")" \
    "$(metric keel_raft_persist_seconds_sum "$leader")" "$(metric keel_raft_persist_seconds_count "$leader")")
  local fbefore=(0 0)
  [ -n "$follower" ] && fbefore=("$(metric keel_raft_persist_seconds_sum "$follower")" \
    "$(metric keel_raft_persist_seconds_count "$follower")")
  local nodes_cpu_before bench_cpu
  nodes_cpu_before=$(cpu_seconds "${pids[@]}")
  "$KEEL" kv bench --endpoints "$endpoints" --clients "$CLIENTS" --seconds "$SECONDS_PER_RUN" --warmup-seconds 0 \
    --json "$tmp/run.json" >/dev/null &
  local bench_pid=$!
  # The load generator's CPU, read just before it exits (it is a child of this shell until waited for).
  while kill -0 "$bench_pid" 2>/dev/null; do
    bench_cpu=$(cpu_seconds "$bench_pid")
    sleep 0.2
  done
  wait "$bench_pid"
  local nodes_cpu
  nodes_cpu=$(echo "$(cpu_seconds "${pids[@]}") - $nodes_cpu_before" | bc -l)
  local after=("$(metric "$put" "$leader")" "$(metric "$put_n" "$leader")" \
    "$(metric keel_raft_persist_seconds_sum "$leader")" "$(metric keel_raft_persist_seconds_count "$leader")")
  local fafter=(0 0)
  [ -n "$follower" ] && fafter=("$(metric keel_raft_persist_seconds_sum "$follower")" \
    "$(metric keel_raft_persist_seconds_count "$follower")")
  local client_mean client_p50 rate puts
  client_mean=$(grep -o '"mean_us": [0-9.]*' "$tmp/run.json" | awk '{ print $2 / 1000 }')
  client_p50=$(grep -o '"p50_us": [0-9.]*' "$tmp/run.json" | awk '{ print $2 / 1000 }')
  rate=$(grep -o '"ops_per_second": [0-9.]*' "$tmp/run.json" | awk '{ printf "%.0f", $2 }')
  # No warm-up: the counters read before and after cover the measured puts (and nothing else).
  puts=$(grep -o '"requests": [0-9]*' "$tmp/run.json" | awk '{ print $2 }')
  awk -v where="$where" -v nodes="$nodes" -v rate="$rate" -v cm="$client_mean" -v cp="$client_p50" \
    -v hs="$(echo "${after[0]} - ${before[0]}" | bc -l)" -v hn="$(echo "${after[1]} - ${before[1]}" | bc -l)" \
    -v ps="$(echo "${after[2]} - ${before[2]}" | bc -l)" -v pn="$(echo "${after[3]} - ${before[3]}" | bc -l)" \
    -v ncpu="$nodes_cpu" -v bcpu="${bench_cpu:-0}" -v puts="$puts" \
    -v fs="$(echo "${fafter[0]} - ${fbefore[0]}" | bc -l)" -v fn="$(echo "${fafter[1]} - ${fbefore[1]}" | bc -l)" \
    'BEGIN { printf "%-6s %5d %7d %9.3f %9.3f %9.3f %12.3f %10.2f %14s %9.3f %9.3f\n", where, nodes, rate, cm, cp,
               (hn > 0 ? 1000 * hs / hn : 0), (pn > 0 ? 1000 * ps / pn : 0), (puts > 0 ? pn / puts : 0),
               (fn > 0 ? sprintf("%.3f", 1000 * fs / fn) : "-"), (puts > 0 ? 1000 * ncpu / puts : 0),
               (puts > 0 ? 1000 * bcpu / puts : 0) }'
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  pids=()
  rm -rf "$tmp"
}

command -v bc >/dev/null || { echo "this script needs bc" >&2; exit 1; }
echo "$CLIENTS client(s), puts (the first client to the leader), 128-byte values, ${SECONDS_PER_RUN} s per case;" \
  "times in ms (means unless p50); CPU in ms per put"
printf "%-6s %5s %7s %9s %9s %9s %12s %10s %14s %9s %9s\n" DATA NODES PUTS/S CLIENT P50 HTTP LEADER-FSYNC FSYNC/PUT \
  FOLLOWER-FSYNC CPU-NODES CPU-BENCH
run_case disk "${TMPDIR:-/tmp}" 1
run_case disk "${TMPDIR:-/tmp}" 3
run_case tmpfs /dev/shm 1
run_case tmpfs /dev/shm 3
