#!/usr/bin/env bash
# Writes on PostgreSQL through wrk, several servers side by side: two Reprise builds (before and
# after a change) and FastTrackML, each on its own database of one throwaway cluster, the cases run
# in turn for every server each repetition (interleaved, so drift hits all alike).
#
#   BEFORE=/tmp/reprise-old AFTER=.build-release/release/reprise bench/pg_writes.sh
#
# Environment: REPS (2), WRK_DURATION (8), CASES (log-metric:1,log-metric:8,create-run:8,log-batch:4),
# SKIP_FML=1. Results: $OUT/wrk.jsonl and the medians printed per server.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
SHARED=${SHARED_BENCH:-$root/../shared/bench}
BEFORE=${BEFORE:?set BEFORE to a release build}
AFTER=${AFTER:?set AFTER to a release build}
OUT=${OUT:-$root/bench/results/pg-writes-$(date +%Y%m%d-%H%M%S)}
REPS=${REPS:-2}
WRK_DURATION=${WRK_DURATION:-8}
CASES=${CASES:-log-metric:1,log-metric:8,create-run:8,log-batch:4}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/run.log") 2>&1

. bench/pg_common.sh

echo "machine: $(nproc) cores; $(psql --version); $(date -u +%FT%TZ)"
labels=(); urls=(); spids=()
start_reprise() {  # LABEL BIN
  local port dir uri
  port=$(free_port); uri=$(db "r_$1"); dir="$OUT/$1"; mkdir -p "$dir"
  setsid "$2" server --host 127.0.0.1 --port "$port" --backend-store-uri "$uri" --artifacts-destination "$dir/artifacts" \
    >"$dir/server.log" 2>&1 &
  local pid=$!; pids+=("$pid")
  wait_health "http://127.0.0.1:$port"
  labels+=("$1"); urls+=("http://127.0.0.1:$port"); spids+=("$pid")
}
start_reprise before "$BEFORE"
start_reprise after "$AFTER"
if [ -z "${SKIP_FML:-}" ]; then
  start_fml fml_w "$OUT/fml"
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
