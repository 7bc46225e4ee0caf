#!/usr/bin/env bash
# keel kv against etcd, side by side in one run, driven by the same load generator (`keel kv bench`).
#
# Both run as 3 members on loopback, data in one temporary directory (the same disk), fsync on (etcd's default;
# keel always fsyncs). The loads: 1 client of sequential puts, 16 and 64 clients of puts, 64 clients with 90%
# (linearizable) reads, and 64 clients of puts all sent to the leader; 128-byte values. Each load runs on keel,
# then etcd, REPEATS times (alternating, so a noisy moment of the shared machine does not land on one side only). Prints every run, then one comparison per
# load (medians over the repeats, the spread of ops/s, keel/etcd ratios), and writes a JSON file and an HTML
# latency plot per load into OUT.
#
# "Spread" means each client is given the endpoints starting at a different node, as users of either system
# would run them. keel's client then sends to the leader once answers told it which endpoint that is; etcd's
# members forward proposals to their leader.
#
#   bench/kv-vs-etcd.sh                       # SECONDS_PER_RUN=10 REPEATS=2 by default
#   SECONDS_PER_RUN=5 REPEATS=3 OUT=/tmp/kv-vs-etcd bench/kv-vs-etcd.sh
#
# Installs Debian's etcd-server with apt-get when `etcd` is missing. Uses ports PORT_BASE..PORT_BASE+23 on
# 127.0.0.1 (default 24000). Every process it starts is stopped and the temporary directory removed on any
# exit, Ctrl-C included.
set -euo pipefail

cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
REPEATS=${REPEATS:-2}
WARMUP_SECONDS=${WARMUP_SECONDS:-2}
PORT_BASE=${PORT_BASE:-24000}
OUT=${OUT:-target/bench/kv-vs-etcd}
KEEL=${KEEL:-target/release/keel}

if ! command -v etcd >/dev/null 2>&1; then
  echo "== etcd is missing: installing Debian's etcd-server"
  if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "etcd is missing and this user can neither apt-get nor sudo: install etcd-server" >&2; exit 1
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends etcd-server
  # The package may start a system etcd on the default ports; ours use their own ports, so it does not matter.
fi
if [ -z "${KEEL_PREBUILT:-}" ]; then
  echo "== building keel (release)"
  cargo build --release -q -p keel
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/keel-vs-etcd.XXXXXX")
pids=()
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  # Give them 3 s to stop cleanly (an etcd leader first tries to hand over leadership, which the others, also
  # stopping, do not take), then SIGKILL whatever is left: the data goes with the directory anyway.
  for _ in $(seq 30); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port() { echo $((PORT_BASE + $1)); }
for offset in $(seq 0 23); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$(port "$offset")") 2>/dev/null; then
    echo "port $(port "$offset") is in use: pick other ports with PORT_BASE=..." >&2; exit 1
  fi
done

echo "== starting 3 etcd members and 3 keel kv nodes (data in $tmp)"
initial_cluster="e1=http://127.0.0.1:$(port 11),e2=http://127.0.0.1:$(port 12),e3=http://127.0.0.1:$(port 13)"
etcd_endpoints="http://127.0.0.1:$(port 1),http://127.0.0.1:$(port 2),http://127.0.0.1:$(port 3)"
for i in 1 2 3; do
  etcd --name "e$i" --data-dir "$tmp/etcd-$i" \
    --listen-client-urls "http://127.0.0.1:$(port "$i")" --advertise-client-urls "http://127.0.0.1:$(port "$i")" \
    --listen-peer-urls "http://127.0.0.1:$(port $((10 + i)))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$(port $((10 + i)))" \
    --initial-cluster "$initial_cluster" --initial-cluster-state new --initial-cluster-token keel-bench \
    >"$tmp/etcd-$i.log" 2>&1 &
  pids+=($!)
done
keel_endpoints="http://127.0.0.1:$(port 21),http://127.0.0.1:$(port 22),http://127.0.0.1:$(port 23)"
for i in 1 2 3; do
  peers=""
  for j in 1 2 3; do
    [ "$i" = "$j" ] || peers="${peers:+$peers,}$j=127.0.0.1:$(port $((4 + j)))"
  done
  "$KEEL" kv serve --id "$i" --data-dir "$tmp/keel-$i" --cluster-id keel-bench \
    --listen "127.0.0.1:$(port $((4 + i)))" --http "127.0.0.1:$(port $((20 + i)))" --peers "$peers" \
    >"$tmp/keel-$i.log" 2>&1 &
  pids+=($!)
done

# Ready when a write succeeds (the bench fails when none does).
wait_ready() {
  local name=$1; shift
  for _ in $(seq 60); do
    if "$KEEL" kv bench "$@" --requests 1 --warmup-seconds 0 >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  echo "$name did not accept a write within 30 s; its logs:" >&2
  tail -n 20 "$tmp"/"$name"-*.log >&2
  exit 1
}
wait_ready etcd --etcd "$etcd_endpoints"
wait_ready keel --endpoints "$keel_endpoints"

mkdir -p "$OUT"
rm -f "$OUT"/run-*.json
# The saved runs of one load, keel's first (the comparison gives keel/etcd ratios), comma-separated.
runs_of() { printf '%s\n' "$OUT"/run-"$1"-[0-9]*-keel.json "$OUT"/run-"$1"-[0-9]*-etcd.json | paste -sd, -; }
# name clients read-percent [flags]: clients spread over the 3 nodes from the leader on, or (--leader-only) all
# on the leader, where neither system forwards.
loads=("put-c1 1 0" "put-c16 16 0" "put-c64 64 0" "read90-c64 64 90" "put-c64-leader 64 0 --leader-only")
for load in "${loads[@]}"; do
  read -r name clients read_percent flags <<<"$load"
  for repeat in $(seq "$REPEATS"); do
    for system in keel etcd; do
      if [ "$system" = keel ]; then target=(--endpoints "$keel_endpoints"); else target=(--etcd "$etcd_endpoints"); fi
      echo "== $system $name (run $repeat of $REPEATS)"
      # shellcheck disable=SC2086 # $flags is a list of flags
      "$KEEL" kv bench "${target[@]}" $flags --clients "$clients" --read-percent "$read_percent" --value-bytes 128 \
        --seconds "$SECONDS_PER_RUN" --warmup-seconds "$WARMUP_SECONDS" --label "$system $name #$repeat" \
        --json "$OUT/run-$name-$repeat-$system.json" | tail -n 1
    done
  done
  # keel's runs first: the comparison gives keel/etcd ratios.
  files=$(runs_of "$name")
  "$KEEL" kv bench --report "$files" --plot "$OUT/$name.html" >/dev/null
done

# Where keel's time goes: the leader's fsync (persist) time over the whole run, from its /metrics.
leader_metrics() {
  for endpoint in ${keel_endpoints//,/ }; do
    if "$KEEL" kv status --endpoints "$endpoint" 2>/dev/null | grep -q ' leader '; then
      curl -s "$endpoint/metrics" 2>/dev/null | grep -E '^keel_raft_persist_seconds_(sum|count)' || true
      return
    fi
  done
}

echo
echo "== results (all runs; latencies in ms)"
all=""
for load in "${loads[@]}"; do
  read -r name _ <<<"$load"
  all="${all:+$all,}$(runs_of "$name")"
done
"$KEEL" kv bench --report "$all" --json "$OUT/kv-vs-etcd.json" --plot "$OUT/kv-vs-etcd.html"
# And etcd's: its leader's WAL fsyncs, from its /metrics.
etcd_leader_metrics() {
  for endpoint in ${etcd_endpoints//,/ }; do
    metrics=$(curl -s "$endpoint/metrics" 2>/dev/null || true)
    if grep -q '^etcd_server_is_leader 1' <<<"$metrics"; then
      grep -E '^etcd_disk_wal_fsync_duration_seconds_(sum|count)' <<<"$metrics" || true
      return
    fi
  done
}
if command -v curl >/dev/null 2>&1; then
  echo
  echo "== the leaders' fsync time over the whole run"
  leader_metrics | awk '{ v[$1] = $2 } END { if (v["keel_raft_persist_seconds_count"] > 0)
    printf "  keel: %d persists (WAL write + fdatasync), mean %.3f ms\n", v["keel_raft_persist_seconds_count"],
      1000 * v["keel_raft_persist_seconds_sum"] / v["keel_raft_persist_seconds_count"] }'
  etcd_leader_metrics | awk '{ v[$1] = $2 } END { if (v["etcd_disk_wal_fsync_duration_seconds_count"] > 0)
    printf "  etcd: %d WAL fsyncs, mean %.3f ms\n", v["etcd_disk_wal_fsync_duration_seconds_count"],
      1000 * v["etcd_disk_wal_fsync_duration_seconds_sum"] / v["etcd_disk_wal_fsync_duration_seconds_count"] }'
fi
echo
echo "plots: $OUT/<load>.html (keel vs etcd per load), $OUT/kv-vs-etcd.html (every run); JSON: $OUT/kv-vs-etcd.json"
