#!/usr/bin/env python3
"""An hour (or --minutes) of mixed load against one `reprise server`, its memory sampled throughout.

    python3 bench/soak.py --reprise .build-release/release/reprise --minutes 60 --out bench/results/soak

Starts the server on a fresh store (embedded SQLite, local artifacts), then runs --workers threads,
each on its own keep-alive connection, repeating one cycle at a steady pace (--cycles-per-s in all):

    create a run with tags and params; 20 log-metric; a log-batch of 200 points; set a tag;
    a filtered + ordered search; the run and one metric history; a 256 KiB artifact up and down;
    an experiment page and the run's page in the web UI; every 50th cycle a registered model
    version; every 100th cycle a history of 20,000 points fetched whole.

So the store grows all hour (runs, points, artifacts) the way a team's server does. Every
--sample-s the server's VmRSS (its process tree; and its own split into anonymous, file-backed and
shared pages), its own account from /metrics (SQLite's bytes, the allocator's live bytes and what it
keeps after frees), the store's size on disk and the operation and
error counts go to samples.csv; summary.json has the first/last/peak RSS, the slope of a least-squares
line through the samples after the first five minutes (MiB per hour), and the errors (any non-2xx).
Stdlib only, loopback only.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_rss_mib(root: int) -> float:
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                s = open(f"/proc/{d}/stat").read()
                children.setdefault(int(s[s.rindex(")") + 2:].split()[1]), []).append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    total, todo = 0, [root]
    while todo:
        p = todo.pop()
        try:
            for line in open(f"/proc/{p}/status"):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
        todo.extend(children.get(p, []))
    return total / 1024


def rss_parts_mib(pid: int) -> tuple[float, float, float]:
    """The server's resident memory by kind: anonymous (heap, stacks, SQLite's page caches),
    file-backed (the binary, libraries) and shared (SQLite's WAL index, -shm)."""
    parts = {"RssAnon:": 0, "RssFile:": 0, "RssShmem:": 0}
    try:
        for line in open(f"/proc/{pid}/status"):
            k = line.split(":")[0] + ":"
            if k in parts:
                parts[k] = int(line.split()[1])
    except OSError:
        pass
    return parts["RssAnon:"] / 1024, parts["RssFile:"] / 1024, parts["RssShmem:"] / 1024


def memory_gauges_mib(port: int) -> tuple[float, float, float]:
    """The server's own account at a /metrics scrape: SQLite's bytes, the allocator's live bytes and
    the bytes it keeps after frees (MiB; -1 where the scrape failed)."""
    out = {"reprise_sqlite_memory_bytes": -1.0, "reprise_malloc_in_use_bytes": -1.0,
           "reprise_malloc_free_held_bytes": -1.0}
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/metrics")
        for line in c.getresponse().read().decode().splitlines():
            name, _, value = line.partition(" ")
            if name.split("{")[0] in out:
                out[name.split("{")[0]] = float(value) / (1 << 20)
        c.close()
    except (OSError, ValueError, http.client.HTTPException):
        pass
    return (round(out["reprise_sqlite_memory_bytes"], 1), round(out["reprise_malloc_in_use_bytes"], 1),
            round(out["reprise_malloc_free_held_bytes"], 1))


def dir_mib(path: str) -> float:
    n = 0
    for dp, _, fs in os.walk(path):
        for f in fs:
            try:
                n += os.path.getsize(os.path.join(dp, f))
            except OSError:
                pass
    return n / (1 << 20)


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ops = 0
        self.errors = 0
        self.first_errors: list[str] = []

    def add(self, ok: bool, what: str) -> None:
        with self.lock:
            self.ops += 1
            if not ok:
                self.errors += 1
                if len(self.first_errors) < 20:
                    self.first_errors.append(what)


class Worker(threading.Thread):
    def __init__(self, i: int, port: int, exp_id: str, pace_s: float, stop: threading.Event,
                 stats: Stats, big_run: str) -> None:
        super().__init__(daemon=True)
        self.i, self.port, self.exp_id, self.pace_s = i, port, exp_id, pace_s
        self.stop, self.stats, self.big_run = stop, stats, big_run
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.rng = random.Random(i)
        self.blob = os.urandom(256 * 1024)

    def call(self, method: str, path: str, body: bytes | None = None,
             ctype: str = "application/json") -> tuple[int, bytes]:
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=body,
                                  headers={"Content-Type": ctype} if body is not None else {})
                r = self.conn.getresponse()
                data = r.read()
                self.stats.add(200 <= r.status < 300, f"{method} {path} -> {r.status} {data[:200]!r}")
                return r.status, data
            except (OSError, http.client.HTTPException) as e:
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                if attempt == 1:
                    self.stats.add(False, f"{method} {path} -> {e!r}")
        return 0, b""

    def api(self, path: str, payload: dict | None = None, method: str = "POST") -> dict:
        body = json.dumps(payload).encode() if payload is not None else None
        status, data = self.call(method, "/api/2.0/mlflow/" + path, body)
        try:
            return json.loads(data) if status == 200 and data else {}
        except ValueError:
            return {}

    def cycle(self, n: int) -> None:
        now = int(time.time() * 1000)
        run = self.api("runs/create", {
            "experiment_id": self.exp_id, "start_time": now, "run_name": f"soak-{self.i}-{n}",
            "tags": [{"key": "team", "value": "soak"}, {"key": "worker", "value": str(self.i)}]})
        rid = run.get("run", {}).get("info", {}).get("run_id")
        if not rid:
            return
        self.api("runs/log-batch", {"run_id": rid, "params": [
            {"key": "lr", "value": str(self.rng.random())}, {"key": "seed", "value": str(n)}]})
        for s in range(20):
            self.api("runs/log-metric", {"run_id": rid, "key": "loss", "value": self.rng.random(),
                                         "timestamp": now + s, "step": s})
        self.api("runs/log-batch", {"run_id": rid, "metrics": [
            {"key": f"m{k % 4}", "value": self.rng.random(), "timestamp": now, "step": k // 4}
            for k in range(200)]})
        self.api("runs/set-tag", {"run_id": rid, "key": "stage", "value": "done"})
        self.api("runs/search", {"experiment_ids": [self.exp_id],
                                 "filter": "params.lr LIKE '0.5%' and tags.team = 'soak'",
                                 "order_by": ["metrics.loss ASC"], "max_results": 50})
        self.api(f"runs/get?run_id={rid}", method="GET")
        self.api(f"metrics/get-history?run_id={rid}&metric_key=loss", method="GET")
        art = f"/api/2.0/mlflow-artifacts/artifacts/{self.exp_id}/{rid}/artifacts/blob.bin"
        self.call("PUT", art, self.blob, "application/octet-stream")
        self.call("GET", art)
        self.call("GET", f"/ui/experiments/{self.exp_id}")
        self.call("GET", f"/ui/runs/{rid}")
        self.api("runs/update", {"run_id": rid, "status": "FINISHED", "end_time": now + 1000})
        if n % 50 == 0:
            self.api("model-versions/create", {"name": "soak-model", "source": f"runs:/{rid}/model",
                                               "run_id": rid})
        if n % 100 == 0 and self.big_run:
            self.api(f"metrics/get-history?run_id={self.big_run}&metric_key=big", method="GET")

    def run(self) -> None:
        n = 0
        next_t = time.monotonic()
        while not self.stop.is_set():
            self.cycle(n)
            n += 1
            next_t += self.pace_s
            delay = next_t - time.monotonic()
            if delay > 0:
                self.stop.wait(delay)
            else:
                next_t = time.monotonic()  # behind: do not try to catch up in a burst


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reprise", required=True)
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--cycles-per-s", type=float, default=8.0)
    ap.add_argument("--sample-s", type=float, default=30)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    store = tempfile.mkdtemp(prefix="reprise-soak-")
    port = free_port()
    log = open(os.path.join(a.out, "server.log"), "w")
    srv = subprocess.Popen([a.reprise, "server", "--host", "127.0.0.1", "--port", str(port),
                            "--backend-store-uri", f"sqlite:///{store}/mlflow.db",
                            "--artifacts-destination", f"{store}/artifacts",
                            "--expose-prometheus", f"{store}/prometheus"],
                           stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/health")
                if c.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.05)
        else:
            raise SystemExit("server did not start")
        stats = Stats()
        stop = threading.Event()
        boot = Worker(-1, port, "0", 0, stop, stats, "")
        exp = boot.api("experiments/create", {"name": f"soak-{time.time_ns()}"}).get("experiment_id")
        boot.api("registered-models/create", {"name": "soak-model"})
        big = boot.api("runs/create", {"experiment_id": exp, "start_time": 0})["run"]["info"]["run_id"]
        for b in range(20):  # 20,000 points for the occasional long history
            boot.api("runs/log-batch", {"run_id": big, "metrics": [
                {"key": "big", "value": float(k), "timestamp": k, "step": b * 1000 + k}
                for k in range(1000)]})
        workers = [Worker(i, port, exp, a.workers / a.cycles_per_s, stop, stats, big)
                   for i in range(a.workers)]
        t0 = time.time()
        rows = []
        csv = open(os.path.join(a.out, "samples.csv"), "w")
        csv.write("elapsed_s,rss_mib,anon_mib,file_mib,shmem_mib,sqlite_mib,malloc_in_use_mib,malloc_free_held_mib,"
                  "store_mib,ops,errors\n")

        def sample() -> None:
            anon, file, shmem = rss_parts_mib(srv.pid)
            row = (round(time.time() - t0, 1), round(tree_rss_mib(srv.pid), 1), round(anon, 1), round(file, 1),
                   round(shmem, 1), *memory_gauges_mib(port), round(dir_mib(store), 1), stats.ops, stats.errors)
            rows.append(row)
            csv.write(",".join(map(str, row)) + "\n")
            csv.flush()
            print("soak", *row, flush=True)

        sample()
        for w in workers:
            w.start()
        end = t0 + a.minutes * 60
        while time.time() < end and srv.poll() is None:
            time.sleep(min(a.sample_s, max(0.0, end - time.time())))
            sample()
        stop.set()
        for w in workers:
            w.join(timeout=120)
        sample()
        late = [(t, r) for t, r, *_ in rows if t >= min(300, a.minutes * 30)]
        slope = 0.0
        if len(late) >= 2:
            mt = sum(t for t, _ in late) / len(late)
            mr = sum(r for _, r in late) / len(late)
            den = sum((t - mt) ** 2 for t, _ in late)
            slope = sum((t - mt) * (r - mr) for t, r in late) / den * 3600 if den else 0.0
        summary = {
            "minutes": a.minutes, "workers": a.workers, "cycles_per_s": a.cycles_per_s,
            "ops": stats.ops, "ops_per_s": round(stats.ops / max(1e-9, rows[-1][0]), 1),
            "errors": stats.errors, "first_errors": stats.first_errors,
            "rss_first_mib": rows[0][1], "rss_after_5min_mib": late[0][1] if late else None,
            "rss_last_mib": rows[-1][1], "rss_peak_mib": max(r[1] for r in rows),
            "rss_slope_mib_per_hour_after_5min": round(slope, 2),
            "anon_first_mib": rows[0][2], "anon_last_mib": rows[-1][2], "file_last_mib": rows[-1][3],
            "sqlite_first_mib": rows[0][5], "sqlite_last_mib": rows[-1][5],
            "malloc_in_use_first_mib": rows[0][6], "malloc_in_use_last_mib": rows[-1][6],
            "malloc_free_held_first_mib": rows[0][7], "malloc_free_held_last_mib": rows[-1][7],
            "store_last_mib": rows[-1][8], "server_alive": srv.poll() is None,
        }
        json.dump(summary, open(os.path.join(a.out, "summary.json"), "w"), indent=1)
        print(json.dumps(summary, indent=1))
    finally:
        try:
            os.killpg(srv.pid, signal.SIGTERM)
            srv.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            os.killpg(srv.pid, signal.SIGKILL)
        shutil.rmtree(store, ignore_errors=True)


if __name__ == "__main__":
    main()
