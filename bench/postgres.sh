#!/usr/bin/env bash
# Side-by-side on PostgreSQL: Reprise vs MLflow (and FastTrackML, the fastest peer that runs on
# PostgreSQL), each on its own database of one throwaway cluster; then Reprise with 1 vs 3 replicas
# on one database.
#
#   REPRISE_BIN=.build-release/release/reprise bench/postgres.sh
#
# Results in $OUT (default bench/results/postgres-<date>/): ab/{A,B}.jsonl + ratio.md (A = MLflow,
# B = Reprise; the shared ab_compare.sh), wrk.jsonl (writes through wrk for all three), replicas.jsonl.
# Environment: REPS (2), MAXS (40 s per loadgen measurement), WRK_DURATION (10), SKIP_MLFLOW=1,
# SKIP_FML=1, SEED_RUNS (10000), MLFLOW_WORKERS (4, MLflow's default).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
SHARED=${SHARED_BENCH:-$root/../shared/bench}
BIN=${REPRISE_BIN:?set REPRISE_BIN to a release build}
OUT=${OUT:-$root/bench/results/postgres-$(date +%Y%m%d-%H%M%S)}
REPS=${REPS:-2}
MAXS=${MAXS:-40}
WRK_DURATION=${WRK_DURATION:-10}
SEED_RUNS=${SEED_RUNS:-10000}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/run.log") 2>&1

. bench/pg_common.sh
start_reprise() {  # URI PORT DIR -> pid
  mkdir -p "$3"
  setsid "$BIN" server --host 127.0.0.1 --port "$2" --backend-store-uri "$1" --artifacts-destination "$3/artifacts" \
    >"$3/server.log" 2>&1 &
  echo $!
}

echo "machine: $(nproc) cores, $(free -g | awk '/Mem/{print $2}') GiB; $(psql --version); $(date -u +%FT%TZ)"
echo "reprise: $("$BIN" --version 2>/dev/null || echo "$BIN")"

# Reprise on PostgreSQL.
R_PORT=$(free_port); R_URI=$(db reprise_b)
R_PID=$(start_reprise "$R_URI" "$R_PORT" "$OUT/reprise"); pids+=("$R_PID")
R_URL=http://127.0.0.1:$R_PORT; wait_health "$R_URL"

if [ -z "${SKIP_MLFLOW:-}" ]; then
  # MLflow on PostgreSQL (psycopg2 in the reference venv).
  REF_VENV=${REF_VENV:-${TMPDIR:-/tmp}/mlflow-reference-venv}
  "$REF_VENV/bin/python" -c "import psycopg2" 2>/dev/null || "$REF_VENV/bin/pip" install -q psycopg2-binary
  M_PORT=$(free_port); M_URI=$(db mlflow_b); mkdir -p "$OUT/mlflow"
  MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false setsid "$REF_VENV/bin/mlflow" server --host 127.0.0.1 --port "$M_PORT" \
    --backend-store-uri "${M_URI/postgresql:/postgresql+psycopg2:}" --artifacts-destination "$OUT/mlflow/artifacts" ${MLFLOW_WORKERS:+--workers $MLFLOW_WORKERS} \
    >"$OUT/mlflow/server.log" 2>&1 &
  M_PID=$!; pids+=("$M_PID")
  M_URL=http://127.0.0.1:$M_PORT; wait_health "$M_URL"
fi

echo "== seeding ($SEED_RUNS runs + 100k-point history each)"
python3 "$SHARED/seed.py" --base-url "$R_URL" --runs "$SEED_RUNS" --out "$OUT/seed_reprise.json" | tail -2
if [ -n "${M_URL:-}" ]; then
  python3 "$SHARED/seed.py" --base-url "$M_URL" --runs "$SEED_RUNS" --out "$OUT/seed_mlflow.json" | tail -2
  echo "== A/B suite: A = MLflow on PostgreSQL, B = Reprise on PostgreSQL"
  (cd "$SHARED" && A_URL=$M_URL A_PIDS=$M_PID A_SEED=$OUT/seed_mlflow.json B_URL=$R_URL B_PIDS=$R_PID \
    B_SEED=$OUT/seed_reprise.json OUTDIR=$OUT/ab REPS=$REPS MAXS=$MAXS \
    GROUPS_="log-metric log-batch create-run search get-history" ./ab_compare.sh) | tail -40
fi

echo "== writes through wrk"
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
wrk_case() {  # LABEL URL PID
  python3 "$SHARED/wrk_bench.py" --base-url "$2" --server-pids "$3" --label "$1" --reps "$REPS" --duration "$WRK_DURATION" \
    --cases log-metric:1,log-metric:8,create-run:8,log-batch:4 --out "$OUT/wrk.jsonl" | grep MEDIAN | sed "s/^/$1 /"
}
wrk_case reprise "$R_URL" "$R_PID"
[ -n "${M_URL:-}" ] && wrk_case mlflow "$M_URL" "$M_PID"
if [ -z "${SKIP_FML:-}" ]; then
  start_fml fml_b "$OUT/fml"
  wrk_case fasttrackml "$F_URL" "$F_PID"
  kill -- -"$F_PID" 2>/dev/null || true
fi
[ -n "${M_PID:-}" ] && { kill -- -"$M_PID" 2>/dev/null || true; }

echo "== 1 vs 3 Reprise replicas on one database: three wrk drivers (c=8 each), same total load"
replica_round() {  # LABEL URL1 URL2 URL3 PIDS
  local i=0 drivers=()
  for u in "$2" "$3" "$4"; do
    python3 "$SHARED/wrk_bench.py" --base-url "$u" --server-pids "$5" --label "$1-driver$i" --reps 1 --duration "$WRK_DURATION" \
      --cases log-metric:8 --out "$OUT/replicas.jsonl" >/dev/null &
    drivers+=($!)
    i=$((i + 1))
  done
  wait "${drivers[@]}"  # only the drivers: a bare `wait` would also wait for the log's tee
}
replica_round one "$R_URL" "$R_URL" "$R_URL" "$R_PID"
P2=$(free_port); P3=$(free_port)
R2=$(start_reprise "$R_URI" "$P2" "$OUT/reprise2"); R3=$(start_reprise "$R_URI" "$P3" "$OUT/reprise3"); pids+=("$R2" "$R3")
wait_health "http://127.0.0.1:$P2"; wait_health "http://127.0.0.1:$P3"
replica_round three "$R_URL" "http://127.0.0.1:$P2" "http://127.0.0.1:$P3" "$R_PID,$R2,$R3"
python3 - "$OUT/replicas.jsonl" <<'EOF'
import json, sys, collections
tot = collections.defaultdict(float)
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("rep") == "median":
        continue
    tot[r["label"].split("-driver")[0]] += r["req_per_s"]
for k, v in tot.items():
    print(f"replicas={k}: log-metric total {v:,.0f} req/s over three c=8 drivers")
EOF
echo "results in $OUT"
