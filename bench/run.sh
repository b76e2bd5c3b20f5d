#!/usr/bin/env bash
# Side-by-side benchmark of Reprise vs the reference MLflow tracking server (loopback only).
#
#   bench/run.sh                      # full run: build, start-up, seed, A/B suite, wrk, RSS, summary
#   ONLY_REPRISE=1 bench/run.sh       # quick: Reprise only, no reference server at all
#
# Results go to bench/results/<date>/ (gitignored): summary.md (also printed), run.log,
# meta.json, startup_*.json, seed_*.json, ab/{A,B}.jsonl (A = reference, B = Reprise),
# wrk/{A,B}.jsonl, report_ab.md / report_wrk.md (shared report.py), rss_*.json, server logs.
#
# Environment (all optional):
#   REPRISE_BIN=path        use this binary, skip `swift build -c release --scratch-path .build-release`
#   ONLY_REPRISE=1          skip the reference server entirely
#   ONLY_REF=1              skip Reprise entirely (no build; for testing the plumbing)
#   REPS=3                  interleaved repetitions of the loadgen suite and of wrk
#   GROUPS_="log-metric log-batch create-run search get-history artifacts"   loadgen groups
#                           (GROUPS_=" " for none: wrk cases only)
#   MAXS=60                 per-measurement time cap for loadgen (ab_compare.sh default)
#   SUITE_ARGS="..."        extra `loadgen.py … suite` options (e.g. "--n-metric 500")
#   REF_UVLOOP=1            reference with uvloop + httptools (separate venv)
#   REF_VENV, MLFLOW_VERSION   passed to reference_server.sh (same defaults as there)
#   STARTUP_N=5             Reprise start-ups (median);  REF_STARTUP_N=1 for the reference
#   SKIP_REF_STARTUP=1      don't time the reference start-up (slow: 5-25 s per start)
#   SEED_RUNS=10000 SEED_HISTORY=100000   seed.py sizes (targets assume the defaults)
#   SKIP_WRK=1              skip wrk (otherwise installed with apt-get if missing)
#   WRK_DURATION=15 WRK_CASES=log-metric:1,log-metric:8,create-run:1,create-run:8
#   RESULTS_DIR=path        instead of bench/results/<date>[_HHMMSS]
#   KEEP_DATA=1             keep the servers' temp data dirs (SQLite DBs, artifacts)
#   SHARED_BENCH=path       the shared drivers (default: <repo>/../shared/bench)
#   PEERS="fasttrackml mlflow-go"   the Go peers as more wrk sides (C, D, …), started with the shared
#                           peer_server.sh on stores of their own (default: fasttrackml; PEERS= for none)
#   BASE=<commit>           also build that commit (release, in a git worktree, scratch .build-base)
#                           and run it as another wrk side "base", interleaved with HEAD: the
#                           before/after of a hot-path change, on the same machine in the same run
set -euo pipefail

# ------------------------------------------------------------------ the exact command
CMDLINE=""
for v in REPRISE_BIN ONLY_REPRISE ONLY_REF REPS GROUPS_ MAXS SUITE_ARGS REF_UVLOOP REF_VENV \
         MLFLOW_VERSION STARTUP_N REF_STARTUP_N SKIP_REF_STARTUP SEED_RUNS SEED_HISTORY SKIP_WRK \
         WRK_DURATION WRK_CASES RESULTS_DIR KEEP_DATA SHARED_BENCH PEERS BASE; do
  if [ -n "${!v+x}" ]; then CMDLINE+="$v=$(printf '%q' "${!v}") "; fi
done
CMDLINE+="bench/run.sh${*:+ $*}"

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(git -C "$HERE" rev-parse --show-toplevel 2>/dev/null || (cd "$HERE/.." && pwd))
SB=${SHARED_BENCH:-$ROOT/../shared/bench}
[ -f "$SB/loadgen.py" ] || { echo "shared bench drivers not found at $SB (set SHARED_BENCH)" >&2; exit 2; }
SB=$(cd "$SB" && pwd)

MODE=both
[ "${ONLY_REPRISE:-0}" = 1 ] && MODE=only-reprise
if [ "${ONLY_REF:-0}" = 1 ]; then
  [ "$MODE" = only-reprise ] && { echo "ONLY_REPRISE and ONLY_REF are exclusive" >&2; exit 2; }
  MODE=only-ref
fi
RUN_REF=1; RUN_REPRISE=1
[ "$MODE" = only-reprise ] && RUN_REF=0
[ "$MODE" = only-ref ] && RUN_REPRISE=0

REPS=${REPS:-3}
GROUPS_=${GROUPS_:-log-metric log-batch create-run search get-history artifacts}
STARTUP_N=${STARTUP_N:-5}
REF_STARTUP_N=${REF_STARTUP_N:-1}
WRK_DURATION=${WRK_DURATION:-15}
WRK_CASES=${WRK_CASES:-log-metric:1,log-metric:8,create-run:1,create-run:8}
SEED_RUNS=${SEED_RUNS:-10000}
SEED_HISTORY=${SEED_HISTORY:-100000}
PEERS=${PEERS-fasttrackml}
BASE=${BASE:-}
if [ "${REF_UVLOOP:-0}" = 1 ]; then export REF_UVLOOP=1; else unset REF_UVLOOP; fi
export MLFLOW_VERSION=${MLFLOW_VERSION:-3.17.2}
export REF_VENV=${REF_VENV:-${TMPDIR:-/tmp}/mlflow-reference-venv${REF_UVLOOP:+-uvloop}}

DATE=$(date +%F)
if [ -z "${RESULTS_DIR:-}" ]; then
  RESULTS_DIR=$ROOT/bench/results/$DATE
  if [ -e "$RESULTS_DIR" ] && [ -n "$(ls -A "$RESULTS_DIR" 2>/dev/null)" ]; then
    RESULTS_DIR=${RESULTS_DIR}_$(date +%H%M%S)
  fi
fi
OUT=$RESULTS_DIR
mkdir -p "$OUT/ab" "$OUT/wrk"
OUT=$(cd "$OUT" && pwd)
exec > >(tee -a "$OUT/run.log") 2>&1

tools() { python3 "$HERE/tools.py" "$@"; }
log() { printf '\n=== [%s] %s\n' "$(date +%T)" "$*"; }

# ------------------------------------------------------------------ cleanup
PGIDS=()          # process groups we started (servers)
DATADIRS=()       # temp data dirs to remove
CHILD=""          # current long-running step (own process group)
REF_DIR=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  if [ -n "$CHILD" ]; then kill -TERM -- -"$CHILD" 2>/dev/null; fi
  # a server whose PID was just returned may not be in PGIDS yet
  for pg in ${REF_PID:-} ${REPRISE_PID:-}; do [[ " ${PGIDS[*]} " == *" $pg "* ]] || PGIDS+=("$pg"); done
  for pg in "${PGIDS[@]}"; do kill -TERM -- -"$pg" 2>/dev/null; done
  for _ in $(seq 1 50); do
    local alive=0
    for pg in "${PGIDS[@]}" $CHILD; do kill -0 -- -"$pg" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.2
  done
  for pg in "${PGIDS[@]}" $CHILD; do kill -KILL -- -"$pg" 2>/dev/null; done
  if [ -n "$REF_DIR" ] && [ -f "$REF_DIR/server.log" ]; then
    tail -c 2000000 "$REF_DIR/server.log" >"$OUT/reference-server.log"
  fi
  if [ "${KEEP_DATA:-0}" = 1 ]; then
    [ ${#DATADIRS[@]} -gt 0 ] && echo "kept data dirs: ${DATADIRS[*]}"
  else
    for d in "${DATADIRS[@]}"; do rm -rf "$d"; done
  fi
  if [ "$rc" != 0 ]; then
    echo "bench/run.sh FAILED (exit $rc); partial results in $OUT"
    [ -f "$OUT/meta.json" ] && python3 "$HERE/summarize.py" "$OUT" >"$OUT/summary.md" 2>/dev/null \
      && echo "partial summary: $OUT/summary.md"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'echo "bench/run.sh: failed at line $LINENO: $BASH_COMMAND" >&2' ERR

# run a (bounded) step in its own process group, so cleanup can stop it on a signal
run_step() {
  setsid "$@" &
  CHILD=$!
  local rc=0
  wait "$CHILD" || rc=$?
  CHILD=""
  return "$rc"
}

wait_health() {   # PORT PID SECONDS
  local port=$1 pid=$2 secs=$3 i
  for i in $(seq 1 $((secs * 20))); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/health" && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

# ------------------------------------------------------------------ machine info
log "results: $OUT   mode: $MODE"
echo "command: $CMDLINE"
LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)
echo "load average: $LOADAVG_START"
awk -v l="${LOADAVG_START%% *}" 'BEGIN{exit !(l > 0.5)}' \
  && echo "WARNING: the machine is busy (load $LOADAVG_START); results will be noisy"

# ------------------------------------------------------------------ 1. build
if [ $RUN_REPRISE = 1 ]; then
  if [ -z "${REPRISE_BIN:-}" ]; then
    log "building Reprise (release, --scratch-path .build-release)"
    (cd "$ROOT" && swift build -c release --scratch-path .build-release --product reprise)
    REPRISE_BIN="$(cd "$ROOT" && swift build -c release --scratch-path .build-release --show-bin-path)/reprise"
  fi
  [ -x "$REPRISE_BIN" ] || { echo "REPRISE_BIN not executable: $REPRISE_BIN" >&2; exit 2; }
  REPRISE_BIN=$(cd "$(dirname "$REPRISE_BIN")" && pwd)/$(basename "$REPRISE_BIN")
fi

# ------------------------------------------------------------------ reference venv (first use installs)
MLFLOW_REPORTED=""
if [ $RUN_REF = 1 ]; then
  if ! "$REF_VENV/bin/mlflow" --version 2>/dev/null | grep -q "$MLFLOW_VERSION"; then
    log "installing the reference venv at $REF_VENV (first use; via reference_server.sh)"
    p=$(tools freeport); d=$(mktemp -d "${TMPDIR:-/tmp}/reprise-bench-refinstall.XXXXXX")
    DATADIRS+=("$d")
    pid=$("$SB/reference_server.sh" "$p" "$d")
    kill -TERM -- -"$pid" 2>/dev/null || true
    sleep 2; kill -KILL -- -"$pid" 2>/dev/null || true
  fi
  MLFLOW_REPORTED=$( ("$REF_VENV/bin/mlflow" --version 2>/dev/null || true) | tail -1 | awk '{print $NF}')
fi

# ------------------------------------------------------------------ meta.json
SWIFT_VERSION="not used"
if [ $RUN_REPRISE = 1 ] && command -v swift >/dev/null; then
  SWIFT_VERSION=$(swift --version 2>&1 | grep -m1 -i 'swift version' || true)
fi
GIT_COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "none")
[ -n "$(git -C "$ROOT" status --porcelain 2>/dev/null | head -1)" ] && GIT_COMMIT+=" (dirty tree)"
WRK_VERSION=""
export META_DATE="$(date '+%F %T %Z')" META_COMMAND="$CMDLINE" META_OUT="$OUT" META_MODE="$MODE" \
  META_SWIFT="$SWIFT_VERSION" META_MLFLOW="${MLFLOW_REPORTED:-n/a}" META_GIT="$GIT_COMMIT" \
  META_BIN="${REPRISE_BIN:-n/a}" META_REPS="$REPS" META_GROUPS="$GROUPS_" \
  META_LOADAVG="$LOADAVG_START" META_UVLOOP="${REF_UVLOOP:-}"
write_meta() {
  META_WRK="$WRK_VERSION" python3 - "$OUT/meta.json" <<'EOF'
import json, os, platform, sys
e = os.environ
cpu = "?"
with open("/proc/cpuinfo") as f:
    for line in f:
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip(); break
mem = "?"
with open("/proc/meminfo") as f:
    for line in f:
        if line.startswith("MemTotal:"):
            mem = f"{int(line.split()[1]) / 2**20:.1f} GiB"; break
meta = {"date": e["META_DATE"], "command": e["META_COMMAND"], "results_dir": e["META_OUT"],
        "mode": e["META_MODE"], "nproc": os.cpu_count(), "cpu_model": cpu, "mem_total": mem,
        "kernel": platform.release(), "swift_version": e["META_SWIFT"],
        "python_version": platform.python_version(), "mlflow_version": e["META_MLFLOW"],
        "ref_uvloop": e.get("META_UVLOOP") == "1", "git_commit": e["META_GIT"],
        "reprise_bin": e["META_BIN"], "reps": e["META_REPS"], "groups": e["META_GROUPS"],
        "loadavg_start": e["META_LOADAVG"], "wrk_version": e.get("META_WRK") or "not used"}
with open(sys.argv[1], "w") as f:
    json.dump(meta, f, indent=1)
EOF
}
write_meta

# ------------------------------------------------------------------ 2. start-up
if [ $RUN_REPRISE = 1 ]; then
  log "Reprise start-up: $STARTUP_N starts, fresh store each"
  run_step python3 "$HERE/tools.py" startup --label reprise --n "$STARTUP_N" --out "$OUT/startup_reprise.json" -- \
    "$REPRISE_BIN" server --host 127.0.0.1 --port '{port}' \
    --backend-store-uri 'sqlite:///{dir}/reprise.db' --artifacts-destination '{dir}/artifacts'
fi
if [ $RUN_REF = 1 ] && [ "${SKIP_REF_STARTUP:-0}" != 1 ]; then
  log "reference start-up: $REF_STARTUP_N start(s), fresh store each"
  run_step python3 "$HERE/tools.py" startup --label reference --n "$REF_STARTUP_N" --out "$OUT/startup_reference.json" \
    --env MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false -- \
    "$REF_VENV/bin/mlflow" server --host 127.0.0.1 --port '{port}' \
    --backend-store-uri 'sqlite:///{dir}/mlflow.db' --artifacts-destination '{dir}/artifacts'
fi

# ------------------------------------------------------------------ 3. servers side by side + seed
if [ $RUN_REPRISE = 1 ]; then
  REPRISE_PORT=$(tools freeport)
  REPRISE_DIR=$(mktemp -d "${TMPDIR:-/tmp}/reprise-bench-reprise.XXXXXX"); DATADIRS+=("$REPRISE_DIR")
  log "starting Reprise on 127.0.0.1:$REPRISE_PORT (data $REPRISE_DIR)"
  setsid "$REPRISE_BIN" server --host 127.0.0.1 --port "$REPRISE_PORT" \
    --backend-store-uri "sqlite:///$REPRISE_DIR/reprise.db" \
    --artifacts-destination "$REPRISE_DIR/artifacts" >"$OUT/reprise-server.log" 2>&1 &
  REPRISE_PID=$!; PGIDS+=("$REPRISE_PID")
  wait_health "$REPRISE_PORT" "$REPRISE_PID" 60 \
    || { echo "Reprise did not answer /health; see $OUT/reprise-server.log" >&2; exit 1; }
  REPRISE_URL=http://127.0.0.1:$REPRISE_PORT
  echo "Reprise PID $REPRISE_PID"
fi
if [ $RUN_REF = 1 ]; then
  REF_PORT=$(tools freeport)
  while [ "$REF_PORT" = "${REPRISE_PORT:-}" ]; do REF_PORT=$(tools freeport); done
  REF_DIR=$(mktemp -d "${TMPDIR:-/tmp}/reprise-bench-reference.XXXXXX"); DATADIRS+=("$REF_DIR")
  log "starting the reference on 127.0.0.1:$REF_PORT (data $REF_DIR${REF_UVLOOP:+, uvloop})"
  REF_PID=$("$SB/reference_server.sh" "$REF_PORT" "$REF_DIR")
  PGIDS+=("$REF_PID")
  REF_URL=http://127.0.0.1:$REF_PORT
  echo "reference PID $REF_PID (process group)"
fi

# More wrk sides: the Go peers and an earlier commit of Reprise, each on a fresh store of its own.
EXTRA_LABELS=(); EXTRA_URLS=(); EXTRA_PIDS=()
for peer in $PEERS; do
  port=$(tools freeport); dir=$(mktemp -d "${TMPDIR:-/tmp}/reprise-bench-$peer.XXXXXX"); DATADIRS+=("$dir")
  log "starting peer $peer on 127.0.0.1:$port (data $dir)"
  if pid=$("$SB/peer_server.sh" "$peer" "$port" "$dir"); then
    PGIDS+=("$pid"); EXTRA_LABELS+=("$peer"); EXTRA_URLS+=("http://127.0.0.1:$port"); EXTRA_PIDS+=("$pid")
  else
    echo "peer $peer did not start (see $dir/server.log); left out" >&2
  fi
done
if [ -n "$BASE" ]; then
  BASE_SHA=$(git -C "$ROOT" rev-parse --short "$BASE")
  BASE_TREE=${TMPDIR:-/tmp}/reprise-base-$BASE_SHA
  if [ ! -x "$ROOT/.build-base/$BASE_SHA/release/reprise" ]; then
    log "building BASE=$BASE ($BASE_SHA) in release (worktree $BASE_TREE)"
    [ -d "$BASE_TREE" ] || git -C "$ROOT" worktree add --detach "$BASE_TREE" "$BASE_SHA" >/dev/null
    (cd "$BASE_TREE" && swift build -c release --scratch-path "$ROOT/.build-base/$BASE_SHA" --product reprise) \
      > >(sed "s/^/  base build: /")
  fi
  port=$(tools freeport); dir=$(mktemp -d "${TMPDIR:-/tmp}/reprise-bench-base.XXXXXX"); DATADIRS+=("$dir")
  setsid "$ROOT/.build-base/$BASE_SHA/release/reprise" server --host 127.0.0.1 --port "$port" \
    --backend-store-uri "sqlite:///$dir/reprise.db" --artifacts-destination "$dir/artifacts" >"$OUT/base-server.log" 2>&1 &
  pid=$!; PGIDS+=("$pid")
  wait_health "$port" "$pid" 60 || { echo "the BASE build did not answer /health; see $OUT/base-server.log" >&2; exit 1; }
  EXTRA_LABELS+=("base-$BASE_SHA"); EXTRA_URLS+=("http://127.0.0.1:$port"); EXTRA_PIDS+=("$pid")
fi

seed() {  # LABEL URL
  log "seeding $1: $SEED_RUNS runs + $SEED_HISTORY history points"
  local t0=$SECONDS
  run_step python3 "$SB/seed.py" --base-url "$2" --runs "$SEED_RUNS" \
    --history-points "$SEED_HISTORY" --out "$OUT/seed_$1.json" > >(sed "s/^/  seed $1: /")
  echo "seeded $1 in $((SECONDS - t0)) s"
}
[ $RUN_REPRISE = 1 ] && seed reprise "$REPRISE_URL"
[ $RUN_REF = 1 ] && seed reference "$REF_URL"

# ------------------------------------------------------------------ loadgen suite
export REPS GROUPS_
[ -n "${MAXS:-}" ] && export MAXS
[ -n "${SUITE_ARGS:-}" ] && export SUITE_ARGS
if [ $MODE = both ]; then
  log "A/B suite (A = reference, B = Reprise), REPS=$REPS, groups: $GROUPS_"
  A_URL=$REF_URL A_PIDS=$REF_PID A_SEED=$OUT/seed_reference.json \
  B_URL=$REPRISE_URL B_PIDS=$REPRISE_PID B_SEED=$OUT/seed_reprise.json OUTDIR=$OUT/ab \
    run_step "$SB/ab_compare.sh"
  python3 "$SB/report.py" --labels reference,reprise "$OUT/ab/A.jsonl" "$OUT/ab/B.jsonl" >"$OUT/report_ab.md"
else
  if [ $MODE = only-ref ]; then side=A; label=reference; url=$REF_URL; pid=$REF_PID
  else side=B; label=reprise; url=$REPRISE_URL; pid=$REPRISE_PID; fi
  log "suite on $label only, REPS=$REPS, groups: $GROUPS_"
  for rep in $(seq 1 "$REPS"); do
    for g in $GROUPS_; do
      # shellcheck disable=SC2086
      run_step python3 "$SB/loadgen.py" --base-url "$url" --server-pids "$pid" --label "$side" \
        --reps 1 --max-seconds "${MAXS:-60}" --out "$OUT/ab/$side.jsonl" \
        suite --seed-info "$OUT/seed_$label.json" --only "$g" ${SUITE_ARGS:-} > >(sed "s/^/$side rep$rep /")
    done
  done
  # GROUPS_=" " runs no loadgen group (wrk only): nothing to report
  if [ -s "$OUT/ab/$side.jsonl" ]; then
    python3 "$SB/report.py" --labels "$label" "$OUT/ab/$side.jsonl" >"$OUT/report_ab.md"
  fi
fi

# ------------------------------------------------------------------ wrk
if [ "${SKIP_WRK:-0}" != 1 ]; then
  if ! command -v wrk >/dev/null; then
    log "installing wrk (apt-get)"
    { apt-get install -y -q wrk >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q wrk >/dev/null 2>&1; }; } \
      || echo "could not install wrk; skipping the wrk cases"
  fi
  if command -v wrk >/dev/null; then
    WRK_VERSION=$( (wrk -v 2>&1 || true) | head -1 | awk '{print $1, $2}')
    write_meta
    log "wrk cases ($WRK_CASES), ${WRK_DURATION}s each, REPS=$REPS interleaved"
    for rep in $(seq 1 "$REPS"); do
      sides="A B"; for i in "${!EXTRA_LABELS[@]}"; do sides+=" X$i"; done
      for side in $sides; do
        if [ $side = A ]; then [ $RUN_REF = 1 ] || continue; url=$REF_URL; pid=$REF_PID; label=reference
        elif [ $side = B ]; then [ $RUN_REPRISE = 1 ] || continue; url=$REPRISE_URL; pid=$REPRISE_PID; label=reprise
        else i=${side#X}; url=${EXTRA_URLS[$i]}; pid=${EXTRA_PIDS[$i]}; label=${EXTRA_LABELS[$i]}; fi
        run_step python3 "$SB/wrk_bench.py" --base-url "$url" --server-pids "$pid" --label "$label" \
          --reps 1 --duration "$WRK_DURATION" --cases "$WRK_CASES" --out "$OUT/wrk/$side.jsonl" \
          > >(grep --line-buffered -v MEDIAN | sed "s/^/$side rep$rep /")
      done
    done
    files=(); labels=()
    [ $RUN_REF = 1 ] && { files+=("$OUT/wrk/A.jsonl"); labels+=(reference); }
    [ $RUN_REPRISE = 1 ] && { files+=("$OUT/wrk/B.jsonl"); labels+=(reprise); }
    for i in "${!EXTRA_LABELS[@]}"; do
      [ -s "$OUT/wrk/X$i.jsonl" ] && { files+=("$OUT/wrk/X$i.jsonl"); labels+=("${EXTRA_LABELS[$i]}"); }
    done
    python3 "$SB/report.py" --labels "$(IFS=,; echo "${labels[*]}")" "${files[@]}" >"$OUT/report_wrk.md"
  fi
fi

# ------------------------------------------------------------------ RSS at the end
log "RSS after the suite"
if [ $RUN_REPRISE = 1 ]; then
  tools rss "$REPRISE_PID" >"$OUT/rss_reprise.json"
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("Reprise:", r["rss_MiB_total"], "MiB")' "$OUT/rss_reprise.json"
fi
if [ $RUN_REF = 1 ]; then
  tools rss "$REF_PID" >"$OUT/rss_reference.json"
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("reference:", r["rss_MiB_total"], "MiB over", r["n_processes"], "processes")' "$OUT/rss_reference.json"
fi

# ------------------------------------------------------------------ summary
log "summary ($OUT/summary.md)"
python3 "$HERE/summarize.py" "$OUT" >"$OUT/summary.md"
cat "$OUT/summary.md"
