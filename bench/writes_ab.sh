#!/usr/bin/env bash
# Writes through wrk, several servers side by side: two Reprise builds (before and after a change)
# and FastTrackML, each on a store of its own (BACKEND=postgres: a database each on one throwaway
# cluster; BACKEND=sqlite: a file each), the cases run in turn for every server each repetition
# (interleaved, so drift hits all alike).
#
#   BEFORE=/tmp/reprise-old AFTER=.build-release/release/reprise BACKEND=postgres bench/writes_ab.sh
#
# Environment: BACKEND (postgres), REPS (2), WRK_DURATION (8), CASES
# (log-metric:1,log-metric:8,create-run:8,log-batch:4), SKIP_FML=1. Results: $OUT/wrk.jsonl and the
# medians printed per server.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
SHARED=${SHARED_BENCH:-$root/../shared/bench}
BEFORE=${BEFORE:?set BEFORE to a release build}
AFTER=${AFTER:?set AFTER to a release build}
BACKEND=${BACKEND:-postgres}
OUT=${OUT:-$root/bench/results/writes-$BACKEND-$(date +%Y%m%d-%H%M%S)}
REPS=${REPS:-2}
WRK_DURATION=${WRK_DURATION:-8}
CASES=${CASES:-log-metric:1,log-metric:8,create-run:8,log-batch:4}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/run.log") 2>&1

if [ "$BACKEND" = postgres ]; then
  . bench/pg_common.sh
else
  pids=()
  trap 'for p in "${pids[@]}"; do kill -- -"$p" 2>/dev/null || kill "$p" 2>/dev/null || true; done; pkill -f -- "$OUT/" || true' EXIT
  free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
  wait_health() {
    for _ in $(seq 1 240); do curl -sf "$1/health" >/dev/null 2>&1 && return 0; sleep 0.5; done
    echo "no /health from $1" >&2; return 1
  }
fi

echo "machine: $(nproc) cores; backend $BACKEND; $(date -u +%FT%TZ)"
labels=(); urls=(); spids=()
start_reprise() {  # LABEL BIN
  local port dir uri
  port=$(free_port); dir="$OUT/$1"; mkdir -p "$dir"
  if [ "$BACKEND" = postgres ]; then uri=$(db "r_$1"); else uri="sqlite:///$dir/reprise.db"; fi
  setsid "$2" server --host 127.0.0.1 --port "$port" --backend-store-uri "$uri" --artifacts-destination "$dir/artifacts" \
    >"$dir/server.log" 2>&1 &
  local pid=$!; pids+=("$pid")
  wait_health "http://127.0.0.1:$port"
  labels+=("$1"); urls+=("http://127.0.0.1:$port"); spids+=("$pid")
}
start_reprise before "$BEFORE"
start_reprise after "$AFTER"
if [ -z "${SKIP_FML:-}" ]; then
  if [ "$BACKEND" = postgres ]; then
    start_fml fml_w "$OUT/fml"
  else
    port=$(free_port); mkdir -p "$OUT/fml"
    F_PID=$("$SHARED/peer_server.sh" fasttrackml "$port" "$OUT/fml"); pids+=("$F_PID")
    F_URL=http://127.0.0.1:$port
  fi
  labels+=(fasttrackml); urls+=("$F_URL"); spids+=("$F_PID")
fi

for rep in $(seq 1 "$REPS"); do
  for i in "${!labels[@]}"; do
    python3 "$SHARED/wrk_bench.py" --base-url "${urls[$i]}" --server-pids "${spids[$i]}" --label "${labels[$i]}" --reps 1 \
      --duration "$WRK_DURATION" --cases "$CASES" --out "$OUT/wrk.jsonl" | grep MEDIAN | sed "s/^/rep $rep ${labels[$i]} /"
  done
done
python3 - "$OUT/wrk.jsonl" <<'EOF'
import json, sys, statistics, collections
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("rep") == "median":
        continue
    runs[(r["label"], f'{r["test"]} c={r["concurrency"]}')].append(r)
print("server case: median req/s (p50 ms, server CPU ms/request)")
for (label, case), rs in sorted(runs.items(), key=lambda kv: (kv[0][1], kv[0][0])):
    med = statistics.median(x["req_per_s"] for x in rs)
    p50 = statistics.median(x.get("p50_ms", 0) for x in rs)
    cpu = statistics.median(x.get("server_cpu_ms_per_req", 0) or 0 for x in rs)
    print(f"{case:20s} {label:12s} {med:10,.0f} ({p50:.2f} ms, {cpu:.2f} ms)")
EOF
echo "results in $OUT"
