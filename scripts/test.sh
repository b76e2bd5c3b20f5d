#!/usr/bin/env bash
# Runs every test suite of Reprise on a fresh machine:
#   1. installs what is missing (SQLite headers; a Python venv with the stock mlflow client),
#   2. builds (debug) and runs the Swift tests (core, routes, artifacts, and the store conformance
#      suites on SQLite and on PostgreSQL: a throwaway cluster from Debian's packages, started here as
#      a non-root user on a free port and stopped at exit),
#   3. runs tests/compat twice: on SQLite with artifacts on disk, then on PostgreSQL with artifacts in
#      S3 (`moto_server` from the venv, started by the suite, signatures checked; test_s3.py uses it on
#      both passes): the real `mlflow` client against the real `reprise` binary, the crash test,
#      the reproducibility end-to-end tests (reprise run/reproduce in a temporary git repository) and
#      the web UI in headless Chromium (screenshots in tests/compat/.screenshots/).
# Exits non-zero if anything fails. Safe to re-run; the venvs are reused (a second one holds MLflow
# 2.22's store code, for the import of a store an older MLflow wrote). Installs with apt-get what is
# missing: SQLite headers, python3-venv, curl, git, chromium, chromium-driver and postgresql.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

step() { printf '\n==> %s\n' "$*"; }

missing=()
dpkg -s libsqlite3-dev >/dev/null 2>&1 || missing+=(libsqlite3-dev)
command -v python3 >/dev/null 2>&1 || missing+=(python3 python3-venv)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v git >/dev/null 2>&1 || missing+=(git)
# The web UI is tested in a real headless browser.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if ((${#missing[@]})); then
  step "installing system packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

step "building (debug)"
swift build --build-tests

step "PostgreSQL: a throwaway cluster for the store conformance suites"
eval "$(scripts/postgres-throwaway.sh start)"
trap 'scripts/postgres-throwaway.sh stop "$REPRISE_PG_DIR"' EXIT
export REPRISE_REQUIRE_POSTGRES=1

step "Swift tests"
swift test --skip-build --parallel

venv=${COMPAT_VENV:-$root/tests/compat/.venv}
step "compat suite: Python venv at $venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check -r tests/compat/requirements.txt
# An older MLflow, for the import of a store MLflow 2.x wrote (test_import.py): its store code only.
venv2=${MLFLOW2_VENV:-$root/tests/compat/.venv-mlflow2}
if [ ! -x "$venv2/bin/python" ]; then
  python3 -m venv "$venv2"
fi
"$venv2/bin/pip" install -q --disable-pip-version-check "mlflow-skinny==2.22.1" "sqlalchemy<2.1" alembic
export MLFLOW2_PYTHON="$venv2/bin/python"

step "compat suite: the stock mlflow client against .build/debug/reprise (SQLite)"
REPRISE_BIN="$root/.build/debug/reprise" "$venv/bin/python" -m pytest tests/compat -q -p no:cacheprovider

step "compat suite again, every server on PostgreSQL with its artifacts in S3 (moto)"
REPRISE_COMPAT_POSTGRES_URL="$REPRISE_TEST_POSTGRES_URL" REPRISE_COMPAT_S3=1 REPRISE_BIN="$root/.build/debug/reprise" \
  "$venv/bin/python" -m pytest tests/compat -q -p no:cacheprovider
