#!/usr/bin/env bash
# Architect against the bare pass-through proxy with the shared reference instrument
# (../shared/bench/gateway/run.sh), in alternating rounds so both see the same machine.
#
#   bench/gateway/reference.sh [ROUNDS] [extra run.sh options...]
#   e.g. bench/gateway/reference.sh 3 --conc "1 64" --duration 8
#
# Each round starts Architect (`serve --config bench/gateway/architect-bench.yaml`, open mode, a fresh
# ARCHITECT_HOME) pinned to CPU 1, measures it, stops it, then does the same for the bare proxy
# (../shared/bench/gateway/bare_proxy.py). run.sh starts the mock upstream on 18080 and pins it and wrk
# to CPU 0. Results: one run.sh output folder per target and round under $OUT (default
# /tmp/gwbench/reference-<UTC time>); at the end bench/gateway/reference_report.py prints the ratios.
set -eu
cd "$(dirname "$0")/../.."
ROUNDS=${1:-3}
[ $# -gt 0 ] && shift
SHARED=../shared/bench/gateway
PY=.venv/bin/python
PORT=4000
OUT=${OUT:-/tmp/gwbench/reference-$(date -u +%Y%m%dT%H%M%S)}
mkdir -p "$OUT"

wait_port() {
  for _ in $(seq 150); do
    (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && return 0
    sleep 0.2
  done
  echo "nothing listens on $PORT" >&2
  return 1
}

measure() {  # LABEL ROUND CMD...
  local label=$1 round=$2
  shift 2
  "$@" > "$OUT/$label-$round.log" 2>&1 &
  local pid=$!
  wait_port
  bash $SHARED/run.sh --target "http://127.0.0.1:$PORT" --target-pid "$pid" --label "$label" \
    --out "$OUT/$label-$round" "${EXTRA[@]}" > "$OUT/$label-$round.out" 2>&1 || {
    echo "run.sh failed for $label (round $round): $OUT/$label-$round.out" >&2
    kill -TERM "$pid"; wait "$pid" || true; return 1; }
  kill -TERM "$pid"
  wait "$pid" || true
}

EXTRA=("$@")
for r in $(seq "$ROUNDS"); do
  HOME_DIR=$(mktemp -d /tmp/gwbench-home.XXXX)
  measure architect "$r" env ARCHITECT_HOME="$HOME_DIR" ARCHITECT_ADMIN_KEY= BENCH_UPSTREAM_PORT=18080 \
    taskset -c 1 .venv/bin/architect serve --config bench/gateway/architect-bench.yaml --port $PORT \
    --log-level warning
  rm -rf "$HOME_DIR"
  measure bare "$r" taskset -c 1 $PY $SHARED/bare_proxy.py $PORT http://127.0.0.1:18080
  echo "round $r done: $OUT"
done
$PY bench/gateway/reference_report.py "$OUT"
