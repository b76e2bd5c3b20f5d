#!/usr/bin/env python3
"""Before/after of the read paths: two Reprise binaries, each on a fresh SQLite store seeded alike
(the shared seed.py: 10,000 runs with 5 tags, 10 params and 10 metrics each), measured in
alternating rounds on the same machine.

Cases (the loadgen suite's search bodies, plus a single run):
  search-filter-order  runs/search, "metrics.m1 > 0.5 and params.p1 = 'a'", order metrics.m1 DESC, 100 runs
  search-no-filter     runs/search, 100 runs, default order
  get-run              runs/get of one seeded run
  get-history          metrics/get-history of the seeded history (100,000 points by default), whole

For each case and side: p50 and p90 of the wall time per request over one keep-alive connection,
and the server's CPU per request (user + system from /proc/<pid>/stat across the round).

    python3 bench/reads_ab.py --before OLD_BIN --after NEW_BIN [--rounds 5] [--n 200] [--out DIR]

A side may be a wrapper script that sets the environment and execs the binary.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from tools import free_port, health_ok, kill_group  # noqa: E402

SHARED = Path(os.environ.get("SHARED_BENCH", HERE.parent.parent / "shared" / "bench"))
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def server_pid(port: int) -> int:
    """The process listening on the port (a wrapper script execs, so it is the server itself)."""
    out = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True).stdout
    return int(out.split("pid=")[1].split(",")[0])


class Side:
    def __init__(self, label: str, binary: str, root: Path):
        self.label, self.binary = label, binary
        self.dir = root / label
        self.dir.mkdir(parents=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [binary, "server", "--host", "127.0.0.1", "--port", str(self.port),
             "--backend-store-uri", f"sqlite:///{self.dir}/reprise.db", "--artifacts-destination", str(self.dir / "artifacts")],
            stdout=open(self.dir / "server.log", "w"), stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 60
        while not health_ok(self.port):
            if time.time() > deadline:
                sys.exit(f"{label} did not start; see {self.dir / 'server.log'}")
            time.sleep(0.1)
        self.pid = server_pid(self.port)

    def seed(self, runs: int, history: int):
        info = self.dir / "seed.json"
        subprocess.run([sys.executable, str(SHARED / "seed.py"), "--base-url", self.url, "--runs", str(runs),
                        "--history-points", str(history), "--out", str(info)], check=True, stdout=subprocess.DEVNULL)
        self.info = json.loads(info.read_text())
        c = http.client.HTTPConnection("127.0.0.1", self.port)
        body = json.dumps({"experiment_ids": [self.info["search_experiment_id"]], "max_results": 1})
        c.request("POST", "/api/2.0/mlflow/runs/search", body, {"Content-Type": "application/json"})
        self.run_id = json.loads(c.getresponse().read())["runs"][0]["info"]["run_id"]

    def stop(self):
        kill_group(self.proc)


def cases(side: Side):
    exp = side.info["search_experiment_id"]
    search = "/api/2.0/mlflow/runs/search"
    return {
        "search-filter-order": ("POST", search, json.dumps({
            "experiment_ids": [exp], "max_results": 100, "run_view_type": "ACTIVE_ONLY",
            "filter": "metrics.m1 > 0.5 and params.p1 = 'a'", "order_by": ["metrics.m1 DESC"]}), 100),
        "search-no-filter": ("POST", search, json.dumps({
            "experiment_ids": [exp], "max_results": 100, "run_view_type": "ACTIVE_ONLY"}), 100),
        "get-run": ("GET", f"/api/2.0/mlflow/runs/get?run_id={side.run_id}", None, None),
        "get-history": ("GET", "/api/2.0/mlflow/metrics/get-history?run_id={}&metric_key={}".format(
            side.info["history_run_id"], side.info["history_key"]), None, None),
    }


def measure(side: Side, method: str, path: str, body: str | None, expect: int | None, n: int):
    c = http.client.HTTPConnection("127.0.0.1", side.port)
    headers = {"Content-Type": "application/json"} if body else {}
    for _ in range(5):  # warm the connection, the statement cache and the page cache
        c.request(method, path, body, headers)
        c.getresponse().read()
    times = []
    cpu0 = cpu_seconds(side.pid)
    for _ in range(n):
        t = time.perf_counter()
        c.request(method, path, body, headers)
        r = c.getresponse()
        data = r.read()
        times.append(time.perf_counter() - t)
        if r.status != 200:
            sys.exit(f"{side.label} {path}: {r.status} {data[:200]!r}")
    cpu = cpu_seconds(side.pid) - cpu0
    if expect is not None and len(json.loads(data).get("runs", [])) != expect:
        sys.exit(f"{side.label} {path}: expected {expect} runs")
    times.sort()
    return {"p50_ms": times[len(times) // 2] * 1000, "p90_ms": times[int(len(times) * 0.9)] * 1000,
            "cpu_ms": cpu / n * 1000, "bytes": len(data)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", required=True)
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--history-points", type=int, default=100_000)
    ap.add_argument("--cases", default="search-filter-order,search-no-filter,get-run,get-history",
                    help="comma list of the cases to run")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()

    root = Path(tempfile.mkdtemp(prefix="reads-ab-"))
    sides = [Side("before", a.before, root), Side("after", a.after, root)]
    try:
        for s in sides:
            s.seed(a.runs, a.history_points)
        results: dict = {}
        for r in range(a.rounds):
            order = sides if r % 2 == 0 else sides[::-1]
            for s in order:
                for name, (method, path, body, expect) in cases(s).items():
                    if name not in a.cases.split(","):
                        continue
                    m = measure(s, method, path, body, expect, a.n if name != "get-history" else max(5, a.n // 20))
                    results.setdefault(name, {}).setdefault(s.label, []).append(m)
                    print(f"round {r} {s.label:6} {name:20} p50 {m['p50_ms']:.2f} ms  cpu {m['cpu_ms']:.2f} ms/req", flush=True)
        summary = {
            name: {label: {k: statistics.median(x[k] for x in runs) for k in runs[0]} for label, runs in by_side.items()}
            for name, by_side in results.items()
        }
        machine = {"cpus": os.cpu_count(), "load": os.getloadavg(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
        print(f"\nmedian of {a.rounds} rounds of {a.n} requests; {machine}")
        print("| case | before p50 ms (CPU ms/req) | after p50 ms (CPU ms/req) | CPU change |")
        print("|---|---|---|---|")
        for name, by in summary.items():
            b, f = by["before"], by["after"]
            print(f"| {name} | {b['p50_ms']:.2f} ({b['cpu_ms']:.2f}) | {f['p50_ms']:.2f} ({f['cpu_ms']:.2f}) | "
                  f"{(f['cpu_ms'] / b['cpu_ms'] - 1) * 100:+.0f} % |")
        if a.out:
            Path(a.out).mkdir(parents=True, exist_ok=True)
            (Path(a.out) / "reads_ab.json").write_text(json.dumps(
                {"machine": machine, "args": vars(a), "rounds": results, "summary": summary}, indent=1))
    finally:
        for s in sides:
            s.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
