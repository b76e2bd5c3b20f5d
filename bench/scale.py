#!/usr/bin/env python3
"""Scale benchmark: search over 1,000,000 runs, and writes/reads with 100,000,000 metric points stored.

    python3 bench/scale.py --reprise .build-release/release/reprise --backend sqlite --runs 1000000 --points 100000000
    python3 bench/scale.py --reprise … --backend postgres --pg-url postgresql://u@127.0.0.1:5432/postgres --runs 1000000

What it does, in order, on one fresh store (a SQLite file in --workdir, or a new PostgreSQL database):
  1. starts `reprise server` (release build) on the store and, through the REST API, creates the
     experiments and one run with 100,000 points of `loss` (the get-history target);
  2. measures the empty-store figures with the shared drivers (../shared/bench/loadgen.py):
     log-batch (1,000 metrics per call, c=4) and get-history (100k points);
  3. stops the server and fills the store in bulk (see below): --runs runs shaped like seed.py's
     (5 tags, 10 params, 10 metrics each; `metrics.m1 > 0.5 and params.p1 = 'a'` matches ~1/8 of them)
     and --points more metric points spread over filler runs of 100,000 points each;
  4. restarts the server and measures search (several filters and orders, max_results 100, c=1),
     then log-batch and get-history again.
Every measurement is appended to --out (JSON lines, loadgen's records, plus this script's own
"phase" field); --summary prints a table.

Why the bulk fill writes SQL instead of calling the API: 1,000,000 runs are 2,000,000 requests (over
an hour through the Python client on PostgreSQL, and mostly a measure of the client). The rows are the
ones the server itself writes (same tables, columns and value shapes; `latest_metrics` kept in step with
`metrics`); statistics are refreshed (ANALYZE) before the server restarts, as a DBA would after a load.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("SHARED_BENCH", HERE.parent.parent / "shared" / "bench"))
API = "/api/2.0/mlflow"
T0 = 1_700_000_000_000
HIST_POINTS = 100_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base: str, path: str, body: dict | None = None) -> dict:
    req = urllib.request.Request(base + path, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="GET" if body is None else "POST")
    with urllib.request.urlopen(req, timeout=300) as r:
        return json.loads(r.read() or b"{}")


class Server:
    def __init__(self, binary: str, uri: str, workdir: Path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        log = open(workdir / f"server-{self.port}.log", "wb")
        self.proc = subprocess.Popen(
            [binary, "server", "--host", "127.0.0.1", "--port", str(self.port), "--backend-store-uri", uri,
             "--artifacts-destination", str(workdir / "artifacts")],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"server exited ({self.proc.returncode}); see {log.name}")
            try:
                urllib.request.urlopen(self.base + "/health", timeout=2)
                return
            except OSError:
                time.sleep(0.2)
        sys.exit("server did not become healthy in 120 s")

    def stop(self):
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=60)


class Store:
    """The bulk fill, in each backend's SQL. h(i, k) is a multiplicative hash in [0, 2^32): cheap,
    deterministic, and spread evenly enough that filters match the fractions seed.py's data does."""

    def __init__(self, backend: str, workdir: Path, pg_url: str | None):
        self.backend = backend
        if backend == "sqlite":
            self.path = workdir / "scale.db"
            self.uri = f"sqlite:///{self.path}"
        else:
            name = f"reprise_scale_{int(time.time())}"
            subprocess.run(["psql", "-q", pg_url, "-c", f"CREATE DATABASE {name}"], check=True)
            self.uri = pg_url.rsplit("/", 1)[0] + "/" + name

    def h(self, i: str, k: int) -> str:
        return f"(({i}) * 2654435761 + {k * 40503 + 7}) % 4294967296"

    def hexid(self, i: str) -> str:
        return f"printf('%032x', {i})" if self.backend == "sqlite" else f"lpad(to_hex({i}), 32, '0')"

    def series(self, lo: int, hi: int) -> tuple[str, str]:
        """(WITH prefix, FROM source) yielding column i over [lo, hi)."""
        if self.backend == "sqlite":
            return (f"WITH RECURSIVE s(i) AS (SELECT {lo} UNION ALL SELECT i + 1 FROM s WHERE i < {hi - 1}) ", "s")
        return ("", f"generate_series({lo}, {hi - 1}) AS s(i)")

    def run(self, statements: list[str]):
        if self.backend == "sqlite":
            db = sqlite3.connect(self.path, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=OFF")
            db.execute("BEGIN")
            for s in statements:
                db.execute(s)
            db.execute("COMMIT")
            db.close()
        else:
            sql = "BEGIN;\n" + ";\n".join(statements) + ";\nCOMMIT;\n"
            subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", self.uri], input=sql, text=True, check=True)

    def fill_runs(self, exp: str, art: str, lo: int, hi: int):
        w, src = self.series(lo, hi)
        rid = self.hexid("i")
        cat = "||"
        stmts = [
            f"{w}INSERT INTO runs (run_uuid, experiment_id, name, user_id, status, start_time, end_time, deleted_time, lifecycle_stage, artifact_uri) "
            f"SELECT {rid}, {exp}, 'run-' {cat} i, 'user' {cat} (i % 20), 'FINISHED', {T0} + i, {T0} + i + 1000, NULL, 'active', "
            f"'{art}/' {cat} {rid} {cat} '/artifacts' FROM {src}",
        ]
        tags = {
            "team": f"CASE {self.h('i', 101)} % 3 WHEN 0 THEN 'cv' WHEN 1 THEN 'nlp' ELSE 'rl' END",
            "owner": "'user' || (i % 20)",
            "git_sha": f"{rid} || '0000000a'",
            "stage": f"CASE {self.h('i', 102)} % 2 WHEN 0 THEN 'dev' ELSE 'prod' END",
            "dataset": f"'ds' || ({self.h('i', 103)} % 50)",
        }
        for k, v in tags.items():
            stmts.append(f"{w}INSERT INTO tags (run_uuid, key, value) SELECT {rid}, '{k}', {v} FROM {src}")
        stmts.append(f"{w}INSERT INTO params (run_uuid, key, value) SELECT {rid}, 'p1', "
                     f"substr('abcd', 1 + CAST({self.h('i', 1)} % 4 AS INTEGER), 1) FROM {src}")
        for k in range(2, 11):
            stmts.append(f"{w}INSERT INTO params (run_uuid, key, value) SELECT {rid}, 'p{k}', 'v' || ({self.h('i', k)} % 80) FROM {src}")
        for table in ("metrics", "latest_metrics"):
            for k in range(1, 11):
                stmts.append(
                    f"{w}INSERT INTO {table} (run_uuid, key, timestamp, step, value, is_nan) "
                    f"SELECT {rid}, 'm{k}', {T0} + i, 0, ({self.h('i', 1000 + k)}) / 4294967296.0, 0 FROM {src}")
        self.run(stmts)

    def fill_history(self, exp: str, art: str, first_run: int, runs: int):
        """`runs` filler runs of HIST_POINTS points of `loss` each."""
        w, src = self.series(0, HIST_POINTS)
        stmts = []
        for n in range(first_run, first_run + runs):
            rid = f"{n:032x}"
            stmts.append(
                "INSERT INTO runs (run_uuid, experiment_id, name, user_id, status, start_time, end_time, deleted_time, lifecycle_stage, artifact_uri) "
                f"VALUES ('{rid}', {exp}, 'filler-{n}', 'bench', 'FINISHED', {T0 + n}, {T0 + n + 1}, NULL, 'active', '{art}/{rid}/artifacts')")
            stmts.append(
                f"{w}INSERT INTO metrics (run_uuid, key, timestamp, step, value, is_nan) "
                f"SELECT '{rid}', 'loss', {T0} + i, i, 1.0 / (1 + i), 0 FROM {src}")
            stmts.append(
                "INSERT INTO latest_metrics (run_uuid, key, timestamp, step, value, is_nan) "
                f"VALUES ('{rid}', 'loss', {T0 + HIST_POINTS - 1}, {HIST_POINTS - 1}, {1.0 / HIST_POINTS}, 0)")
        self.run(stmts)

    def analyze(self):
        if self.backend == "sqlite":
            db = sqlite3.connect(self.path)
            db.execute("ANALYZE")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            db.close()
        else:
            subprocess.run(["psql", "-q", self.uri, "-c", "VACUUM ANALYZE"], check=True)

    def size(self) -> str:
        if self.backend == "sqlite":
            return f"{self.path.stat().st_size / 2**30:.2f} GiB"
        out = subprocess.run(["psql", "-Atq", self.uri, "-c", "SELECT pg_size_pretty(pg_database_size(current_database()))"],
                             capture_output=True, text=True, check=True).stdout.strip()
        return out


def loadgen(args, base: str, pid: int, phase: str, *case: str):
    """One loadgen measurement; its record gets this script's phase and backend."""
    tmp = Path(args.workdir) / "lg.jsonl"
    tmp.unlink(missing_ok=True)
    subprocess.run([sys.executable, str(SHARED / "loadgen.py"), "--base-url", base, "--server-pids", str(pid),
                    "--reps", str(args.reps), "--out", str(tmp), *case], check=True)
    with open(args.out, "a") as out:
        for line in tmp.read_text().splitlines():
            rec = json.loads(line)
            rec.update(phase=phase, backend=args.backend)
            out.write(json.dumps(rec) + "\n")


def writes_and_history(args, srv: Server, seed_info: Path, phase: str):
    loadgen(args, srv.base, srv.proc.pid, phase, "log-batch", "-c", "4", "-n", "60")
    loadgen(args, srv.base, srv.proc.pid, phase, "get-history", "-n", "5", "--seed-info", str(seed_info))


SEARCHES = [
    ("metrics.m1 > 0.5 and params.p1 = 'a'", "metrics.m1 DESC"),   # loadgen's filter+order case
    ("params.p1 = 'a' and tags.team = 'cv'", "metrics.m2 ASC"),     # order by a metric no filter names
    ("metrics.m3 < 0.001", "metrics.m4 DESC"),                      # a selective metric filter drives
    ("tags.owner = 'user7'", "attributes.start_time DESC"),          # tag filter, default order
    ("", ""),                                                        # the first page, no filter
]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reprise", required=True, help="release binary")
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--pg-url", help="postgresql://… of a server database with CREATEDB rights")
    ap.add_argument("--runs", type=int, default=1_000_000)
    ap.add_argument("--points", type=int, default=0, help="metric points to add in filler runs (rounded to 100k)")
    ap.add_argument("--chunk", type=int, default=100_000, help="runs per bulk transaction")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--out", default="scale.jsonl")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the store")
    args = ap.parse_args()
    workdir = Path(args.workdir or f"/tmp/reprise-scale-{args.backend}-{int(time.time())}")
    workdir.mkdir(parents=True, exist_ok=True)
    args.workdir = str(workdir)
    store = Store(args.backend, workdir, args.pg_url)
    art = str(workdir / "artifacts")

    srv = Server(args.reprise, store.uri, workdir)
    exp = call(srv.base, API + "/experiments/create", {"name": "scale-search"})["experiment_id"]
    hexp = call(srv.base, API + "/experiments/create", {"name": "scale-history"})["experiment_id"]
    hrun = call(srv.base, API + "/runs/create", {"experiment_id": hexp, "start_time": T0})["run"]["info"]["run_id"]
    for b in range(0, HIST_POINTS, 1000):
        call(srv.base, API + "/runs/log-batch", {"run_id": hrun, "metrics": [
            {"key": "loss", "value": 1.0 / (1 + s), "timestamp": T0 + s, "step": s} for s in range(b, b + 1000)]})
    seed_info = workdir / "seed_info.json"
    seed_info.write_text(json.dumps({"search_experiment_id": exp, "history_run_id": hrun, "history_key": "loss",
                                     "history_points": HIST_POINTS}))
    writes_and_history(args, srv, seed_info, "empty")
    srv.stop()

    started = time.monotonic()
    for lo in range(0, args.runs, args.chunk):
        hi = min(args.runs, lo + args.chunk)
        store.fill_runs(exp, art, lo, hi)
        print(f"runs {hi:,}/{args.runs:,}  {time.monotonic() - started:.0f} s", flush=True)
    filler = args.points // HIST_POINTS
    per_tx = 10
    for n in range(0, filler, per_tx):
        store.fill_history(hexp, art, 1 << 40 | n, min(per_tx, filler - n))
        print(f"points {(n + min(per_tx, filler - n)) * HIST_POINTS:,}/{filler * HIST_POINTS:,}  {time.monotonic() - started:.0f} s", flush=True)
    store.analyze()
    print(f"filled in {time.monotonic() - started:.0f} s; store size {store.size()}", flush=True)

    srv = Server(args.reprise, store.uri, workdir)
    try:
        for filt, order in SEARCHES:
            case = ["search", "-n", "30", "--experiment-id", exp, "--filter", filt, "--order-by", order]
            loadgen(args, srv.base, srv.proc.pid, f"{args.runs}-runs", *case)
        writes_and_history(args, srv, seed_info, f"{args.points}-points")
    finally:
        srv.stop()
        if not args.keep and args.backend == "sqlite":
            shutil.rmtree(workdir / "artifacts", ignore_errors=True)
            store.path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
