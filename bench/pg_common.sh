# Sourced by the PostgreSQL benchmarks (postgres.sh, writes_ab.sh): a throwaway cluster for the
# run, stopped with every server started through `pids` when the script exits, and helpers.
# Expects $OUT; sets REPRISE_TEST_POSTGRES_URL / REPRISE_PG_DIR (scripts/postgres-throwaway.sh).
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -- -"$p" 2>/dev/null || kill "$p" 2>/dev/null || true; done
  # `setsid` forks when its caller leads a process group, so $! may be the wrapper: every server
  # this run started names $OUT in its arguments.
  pkill -f -- "$OUT/" 2>/dev/null || true
  [ -n "${REPRISE_PG_DIR:-}" ] && scripts/postgres-throwaway.sh stop "$REPRISE_PG_DIR" >/dev/null 2>&1 || true
}
trap cleanup EXIT

eval "$(scripts/postgres-throwaway.sh start)"
base=${REPRISE_TEST_POSTGRES_URL%/*}
db() { psql -q "$REPRISE_TEST_POSTGRES_URL" -c "CREATE DATABASE $1" >/dev/null; echo "$base/$1"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_health() {
  for _ in $(seq 1 240); do curl -sf "$1/health" >/dev/null 2>&1 && return 0; sleep 0.5; done
  echo "no /health from $1" >&2; return 1
}
# FastTrackML 0.6.0 (the fastest peer that runs on PostgreSQL) on database $1, folder $2: sets
# F_PID and F_URL.
start_fml() {
  local venv=${TMPDIR:-/tmp}/fasttrackml-venv port uri
  [ -x "$venv/bin/fml" ] || { python3 -m venv "$venv"; "$venv/bin/pip" install -q fasttrackml==0.6.0; }
  port=$(free_port); uri=$(db "$1"); mkdir -p "$2"
  # FastTrackML spells the scheme postgres://.
  setsid "$venv/bin/fml" server --listen-address "127.0.0.1:$port" --database-uri "${uri/postgresql:/postgres:}?sslmode=disable" \
    --default-artifact-root "$2/artifacts" >"$2/server.log" 2>&1 &
  F_PID=$!; pids+=("$F_PID")
  F_URL=http://127.0.0.1:$port; wait_health "$F_URL"
}
