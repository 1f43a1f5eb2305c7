#!/usr/bin/env bash
# CPU per request of each thread of a gateway, and its context switches, under wrk.
#
#   bench/gateway/threads.sh MODE CONC SECONDS CMD...
#   e.g. bench/gateway/threads.sh nonstream 16 8 .venv/bin/python -m architect serve \
#          --config bench/gateway/architect-bench.yaml --port 4000 --log-level warning
#
# Starts the shared reference mock (../shared/bench/gateway/mock_upstream.py) on 127.0.0.1:18080 and
# wrk on CPU 0, CMD (which must listen on 127.0.0.1:4000) on CPU 1; reads /proc/PID/task/*/stat and
# status around a SECONDS-long wrk run after a 3 s warm-up. ARCHITECT_HOME is a fresh temporary folder
# unless GW_HOME is set.
set -eu
cd "$(dirname "$0")/../.."
MODE=$1 C=$2 S=$3; shift 3
SHARED=../shared/bench/gateway
PY=.venv/bin/python
TMP=$(mktemp -d /tmp/threads-bench.XXXX)
if [ "$MODE" = stream ]; then EXTRA=',"stream":true,"stream_options":{"include_usage":true}'; else EXTRA=''; fi
printf '{"model":"mock-model","messages":[{"role":"user","content":"Say hello."}],"max_tokens":16%s}\n' "$EXTRA" > "$TMP/body.json"
taskset -c 0 $PY $SHARED/mock_upstream.py 18080 --model mock-model > "$TMP/mock.log" 2>&1 &
MOCK=$!
ARCHITECT_HOME=${GW_HOME:-$TMP/home} BENCH_UPSTREAM_PORT=18080 ARCHITECT_ADMIN_KEY= taskset -c 1 "$@" 2> "$TMP/gw.err" &
GW=$!
trap 'kill -TERM $GW $MOCK 2>/dev/null; wait $GW $MOCK 2>/dev/null; rm -rf "$TMP"' EXIT
for _ in $(seq 100); do
  curl -sf -o /dev/null -X POST -d @"$TMP/body.json" http://127.0.0.1:4000/v1/chat/completions && break
  sleep 0.2
done
run_wrk() { WRK_BODY_FILE=$TMP/body.json taskset -c 0 wrk -t1 -c"$C" -d"$1"s --latency -s $SHARED/wrk_chat.lua http://127.0.0.1:4000/v1/chat/completions; }
run_wrk 3 > /dev/null
snap() { for t in /proc/$GW/task/*; do echo "$(basename "$t") $(awk '{print $14+$15}' "$t/stat") $(awk '/voluntary_ctxt/{printf "%s ", $2}' "$t/status")"; done; }
snap > "$TMP/t0"
run_wrk "$S" > "$TMP/wrk.out"
snap > "$TMP/t1"
N=$(awk '/requests in/{print $1}' "$TMP/wrk.out")
echo "$(grep Requests/sec "$TMP/wrk.out") p50 $(awk '$1=="50%"{print $2}' "$TMP/wrk.out") p99 $(awk '$1=="99%"{print $2}' "$TMP/wrk.out")"
TICK=$(getconf CLK_TCK)
join "$TMP/t0" "$TMP/t1" | awk -v n="$N" -v hz="$TICK" '{d=$5-$2; if (d>0) printf "  thread %-8s %8.1f us CPU/req  voluntary switches/req %.2f  involuntary %.2f\n", $1, d*1e6/hz/n, ($6-$3)/n, ($7-$4)/n}'
