#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster for the tests: initdb in a temp folder as a non-root user
# (initdb refuses root), C locale (byte-order text sorting, as on SQLite), trust auth on 127.0.0.1
# only, a free port. Installs the server from Debian's packages if it is missing.
#
#   eval "$(scripts/postgres-throwaway.sh start)"   # sets REPRISE_TEST_POSTGRES_URL, REPRISE_PG_DIR
#   scripts/postgres-throwaway.sh stop "$REPRISE_PG_DIR"
set -euo pipefail

pgbin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u nobody -- "$@"; else "$@"; fi; }

case "${1:-}" in
start)
  if [ -z "$(pgbin)" ] || [ ! -x "$(pgbin)/initdb" ]; then
    echo "installing postgresql from Debian's packages" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
  fi
  bin=$(pgbin)
  dir=$(mktemp -d /tmp/reprise-pg.XXXXXX)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  [ "$(id -u)" = 0 ] && chown nobody "$dir"
  as_owner "$bin/initdb" -D "$dir/data" -U reprise --auth=trust -E UTF8 --locale=C >"$dir/initdb.log"
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=400 -c fsync=on" start >&2
  echo "export REPRISE_TEST_POSTGRES_URL=postgresql://reprise@127.0.0.1:$port/postgres REPRISE_PG_DIR=$dir"
  ;;
stop)
  dir=${2:?usage: $0 stop DIR}
  as_owner "$(pgbin)/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || true
  rm -rf "$dir"
  ;;
*)
  echo "usage: $0 start | stop DIR" >&2
  exit 2
  ;;
esac
