#!/usr/bin/env bash
# Trace storage and search (issue 13), Reprise beside the reference MLflow server: each gets a fresh
# store, is seeded through the wire protocol the 3.17.2 client uses (OTLP spans, then StartTraceV3)
# and searched by bench/traces.py. Reprise is also measured at 10x the reference's size.
#
#   bench/traces.sh REPRISE_BIN [TRACES] [REFERENCE_TRACES]     (a release build; defaults 100000 and 10000)
#
# Needs the compat venv (tests/compat/.venv: requests, the OpenTelemetry protobuf types) or PYTHON=.
set -euo pipefail
BIN=${1:?usage: bench/traces.sh REPRISE_BIN [TRACES] [REFERENCE_TRACES]}
N=${2:-100000}
NREF=${3:-10000}
PY=${PYTHON:-tests/compat/.venv/bin/python}
SHARED=$(cd "$(dirname "$0")/../../shared/bench" && pwd)
OUT=$(mktemp -d "${TMPDIR:-/tmp}/reprise-traces-bench.XXXXXX")
pids=()
trap 'for p in "${pids[@]}"; do kill -- -"$p" 2>/dev/null || kill "$p" 2>/dev/null || true; done' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_reprise() {  # $1: folder
  local p; p=$(port)
  mkdir -p "$1"
  setsid "$BIN" server --port "$p" --backend-store-uri "sqlite:///$1/reprise.db" --artifacts-destination "$1/artifacts" >"$1/server.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$p/health" >/dev/null 2>&1 && break; sleep 0.1; done
  echo "http://127.0.0.1:$p"
}

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; $(date -u +%F)"
url=$(start_reprise "$OUT/reprise-$NREF")
echo "== Reprise, $NREF traces"
"$PY" bench/traces.py --base-url "$url" --traces "$NREF" --json "$OUT/reprise-$NREF.json"
if [ "$N" != "$NREF" ]; then
  url=$(start_reprise "$OUT/reprise-$N")
  echo "== Reprise, $N traces"
  "$PY" bench/traces.py --base-url "$url" --traces "$N" --json "$OUT/reprise-$N.json"
fi
p=$(port)
pid=$(REF_VENV=${REF_VENV:-$PWD/tests/compat/.venv} "$SHARED/reference_server.sh" "$p" "$OUT/mlflow")
pids+=("$pid")
echo "== MLflow 3.17.2, $NREF traces"
"$PY" bench/traces.py --base-url "http://127.0.0.1:$p" --traces "$NREF" --json "$OUT/mlflow-$NREF.json"
"$PY" - "$OUT/reprise-$NREF.json" "$OUT/mlflow-$NREF.json" "$OUT/reprise-$N.json" <<'PYEOF'
import json, sys, os
r, m = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
big = json.load(open(sys.argv[3])) if os.path.exists(sys.argv[3]) and sys.argv[3] != sys.argv[1] else None
print(f"\n| case | Reprise p50 ({r['traces']}) | MLflow p50 ({m['traces']}) | ratio | Reprise p50 ({big['traces'] if big else '-'}) |")
print("|---|---|---|---|---|")
for k, v in r["cases"].items():
    mv = m["cases"][k]["p50_ms"]
    b = f"{big['cases'][k]['p50_ms']:.2f} ms" if big else "-"
    print(f"| {k} | {v['p50_ms']:.2f} ms | {mv:.2f} ms | {mv / v['p50_ms']:.1f}x | {b} |")
print(f"| seeding (traces/s) | {r['traces'] / r['seed_seconds']:.0f} | {m['traces'] / m['seed_seconds']:.0f} | {(r['traces'] / r['seed_seconds']) / (m['traces'] / m['seed_seconds']):.1f}x | {big['traces'] / big['seed_seconds']:.0f} |" if big else "")
PYEOF
echo "results in $OUT"
