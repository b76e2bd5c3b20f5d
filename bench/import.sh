#!/usr/bin/env bash
# Import rate of `reprise import mlflow` (issue 12): the shared bench seed (10,000 runs with 5 tags,
# 10 params and 10 metrics each, and one run of 100,000 points) written by MLflow 3.17.2 through its
# REST API (../shared/bench/reference_server.sh + seed.py), imported from MLflow's SQLite file and,
# separately, through the running MLflow server's REST API. Each repetition imports into a fresh
# SQLite store (BACKEND=postgres: a fresh database on a throwaway PostgreSQL cluster).
#
#   bench/import.sh REPRISE_BIN [REPS]        (run from the repository root; a release build)
#
# SEED_DIR=DIR reuses a seeded MLflow folder (DIR/mlflow.db, DIR/seed_info.json) and its server at
# SEED_URL; without it the script starts one and seeds it (about 10 minutes on 2 cores).
# REST=0 skips the REST path. Prints one line per import and a summary with runs/s and points/s.
set -euo pipefail
BIN=${1:?usage: bench/import.sh REPRISE_BIN [REPS]}
REPS=${2:-3}
OUT=$(mktemp -d "${TMPDIR:-/tmp}/reprise-import-bench.XXXXXX")
SHARED=$(cd "$(dirname "$0")/../../shared/bench" && pwd)
pids=()
if [ "${BACKEND:-sqlite}" = postgres ]; then
  source bench/pg_common.sh
else
  trap 'for p in "${pids[@]}"; do kill -- -"$p" 2>/dev/null || true; done' EXIT
fi

if [ -z "${SEED_DIR:-}" ]; then
  SEED_DIR=$OUT/mlflow
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  pid=$("$SHARED/reference_server.sh" "$port" "$SEED_DIR")
  pids+=("$pid")
  SEED_URL=http://127.0.0.1:$port
  python3 "$SHARED/seed.py" --base-url "$SEED_URL" --out "$SEED_DIR/seed_info.json" >&2
fi
SEED_URL=${SEED_URL:-$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["base_url"])' "$SEED_DIR/seed_info.json")}
runs=$(sqlite3 "$SEED_DIR/mlflow.db" "SELECT COUNT(*) FROM runs")
points=$(sqlite3 "$SEED_DIR/mlflow.db" "SELECT COUNT(*) FROM metrics")
echo "seed: $runs runs, $points metric points ($SEED_DIR/mlflow.db, $(du -h "$SEED_DIR/mlflow.db" | cut -f1))"

target() {  # a fresh store for repetition $1 of path $2
  if [ "${BACKEND:-sqlite}" = postgres ]; then db "imp_${2}_$1"; else echo "sqlite:///$OUT/$2-$1/reprise.db"; fi
}
results=()
for rep in $(seq 1 "$REPS"); do
  for path in file rest; do
    [ "$path" = rest ] && [ "${REST:-1}" = 0 ] && continue
    from=$([ "$path" = file ] && echo "sqlite:///$SEED_DIR/mlflow.db" || echo "$SEED_URL")
    mkdir -p "$OUT/$path-$rep"
    start=$(date +%s.%N)
    (cd "$OUT/$path-$rep" && "$BIN" import mlflow --from "$from" --to "$(target "$rep" "$path")" --quiet > report.txt)
    secs=$(echo "$(date +%s.%N) - $start" | bc -l)
    grep -q "Verification: passed" "$OUT/$path-$rep/report.txt" || { cat "$OUT/$path-$rep/report.txt"; exit 1; }
    printf '%-4s rep %d: %6.1f s  %7.0f runs/s  %9.0f points/s\n' "$path" "$rep" "$secs" "$(echo "$runs / $secs" | bc -l)" \
      "$(echo "$points / $secs" | bc -l)"
    results+=("$path $secs")
  done
done
echo "median (the whole command: read, write, artifacts, verification):"
for path in file rest; do
  printf '%s\n' "${results[@]}" | awk -v p="$path" -v r="$runs" -v n="$points" '$1 == p { print $2 }' | sort -n |
    awk -v p="$path" -v r="$runs" -v n="$points" '{ a[NR] = $1 } END { if (NR) { m = a[int((NR + 1) / 2)]; printf "%-4s %6.1f s  %7.0f runs/s  %9.0f points/s\n", p, m, r / m, n / m } }'
done
