#!/usr/bin/env bash
# Failover time of keel kv: `keel kv bench --failover` starts its own 3-node cluster (`keel kv serve` processes,
# data in a temporary directory, default timeouts), keeps a light write load on it, kills the leader with SIGKILL
# TRIALS times, and reports the time from each kill to the first successful write through a survivor
# (min/median/p90/max), restarting the killed node and waiting until it caught up between trials.
#
#   bench/failover.sh                  # TRIALS=20; JSON in target/bench/failover.json
#
# Every node it starts is killed and its directory removed on exit, Ctrl-C included (keel does this itself).
set -euo pipefail
cd "$(dirname "$0")/.."
TRIALS=${TRIALS:-20}
OUT=${OUT:-target/bench}
KEEL=${KEEL:-target/release/keel}
if [ -z "${KEEL_PREBUILT:-}" ]; then
  cargo build --release -q -p keel
fi
mkdir -p "$OUT"
"$KEEL" kv bench --failover --trials "$TRIALS" --json "$OUT/failover.json"
