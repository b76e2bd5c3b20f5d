#!/usr/bin/env python3
"""The stock MLflow client, end to end: N synchronous `mlflow.log_metric` calls against one server,
and where the time goes.

    tests/compat/.venv/bin/python bench/stock_client.py --url http://127.0.0.1:5000 --pid PID [--n 1000]

Runs in the compat venv (the real `mlflow` package from PyPI). Creates an experiment and a run,
warms the connection with 20 calls, then times N `mlflow.log_metric(key, value, step=i)` calls one
after another (each a POST /runs/log-metric, acknowledged once durable). Reports the wall time,
the client's own CPU (this process), the server's CPU over the same window (from /proc/PID/stat,
when --pid is given) and what is left (the loopback, scheduling, waiting on the fsync), plus a
cProfile of a second pass: the top entries by own time, grouped into mlflow, requests/urllib3,
http.client/socket and the rest. Prints one JSON object.
"""
from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import time


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--pid", type=int, default=0, help="the server's pid, for its CPU time")
    ap.add_argument("--n", type=int, default=1000)
    args = ap.parse_args()
    os.environ["MLFLOW_TRACKING_URI"] = args.url
    # mlflow prints run links on stdout; only the JSON goes there.
    real_stdout, sys.stdout = sys.stdout, sys.stderr
    import mlflow  # noqa: E402 (after the URI is set)

    mlflow.set_experiment(f"stock-client-{int(time.time() * 1000)}")
    out: dict = {"n": args.n, "url": args.url, "mlflow": mlflow.__version__}
    with mlflow.start_run():
        for i in range(20):
            mlflow.log_metric("warm", i, step=i)
        passes = []
        for p in range(3):
            s0 = cpu_seconds(args.pid) if args.pid else 0.0
            c0, t0 = time.process_time(), time.perf_counter()
            for i in range(args.n):
                mlflow.log_metric(f"loss{p}", 1.0 / (i + 1), step=i)
            wall, client = time.perf_counter() - t0, time.process_time() - c0
            server = (cpu_seconds(args.pid) - s0) if args.pid else None
            passes.append({"wall_s": round(wall, 3), "client_cpu_s": round(client, 3),
                           "server_cpu_s": None if server is None else round(server, 3)})
        out["passes"] = passes
        best = min(passes, key=lambda x: x["wall_s"])
        out["best_wall_s"] = best["wall_s"]
        out["per_call_ms"] = {
            "wall": round(best["wall_s"] / args.n * 1000, 3),
            "client_cpu": round(best["client_cpu_s"] / args.n * 1000, 3),
            "server_cpu": None if best["server_cpu_s"] is None else round(best["server_cpu_s"] / args.n * 1000, 3),
        }
        prof = cProfile.Profile()
        prof.enable()
        for i in range(args.n):
            mlflow.log_metric("profiled", float(i), step=i)
        prof.disable()
    stats = pstats.Stats(prof).stats  # (file, line, name) -> (cc, nc, tt, ct, callers)
    groups = {"socket receive (waiting for the server)": 0.0, "socket send": 0.0, "module lookups (importlib, stat)": 0.0,
              "mlflow": 0.0, "requests/urllib3": 0.0, "other": 0.0}
    for (fname, _, name), (_, _, tt, _, _) in stats.items():
        if "recv" in name:
            groups["socket receive (waiting for the server)"] += tt
        elif "send" in name:
            groups["socket send"] += tt
        elif "importlib" in fname or "posix.stat" in name or fname.endswith("<frozen os>"):
            groups["module lookups (importlib, stat)"] += tt
        elif "/mlflow/" in fname:
            groups["mlflow"] += tt
        elif "/requests/" in fname or "/urllib3/" in fname:
            groups["requests/urllib3"] += tt
        else:
            groups["other"] += tt
    # Who asks for the module lookups (mlflow's per-call checks), by cumulative time.
    lookups = [(k, v) for k, v in stats.items() if k[2] == "find_spec" and "importlib" not in k[0]]
    callers: dict[str, float] = {}
    for (f, ln, name), (_, _, _, _, cs) in stats.items():
        if "find_spec" in name:
            for (cf, cl, cn), (_, _, _, ct) in cs.items():
                if "importlib" not in cf and "<frozen" not in cf:
                    key = f"{os.path.basename(cf)}:{cl}:{cn}"
                    callers[key] = callers.get(key, 0.0) + ct
    out["module_lookup_callers_ms_per_call"] = {k: round(v / args.n * 1000, 4) for k, v in sorted(callers.items(), key=lambda kv: -kv[1])[:5]}
    del lookups
    total = sum(groups.values()) or 1.0
    out["profile_own_time_share"] = {k: round(v / total, 3) for k, v in groups.items()}
    top = sorted(stats.items(), key=lambda kv: kv[1][2], reverse=True)[:12]
    out["profile_top"] = [
        {"fn": f"{os.path.basename(f)}:{ln}:{name}", "own_ms_per_call": round(tt / args.n * 1000, 4)} for (f, ln, name), (_, _, tt, _, _) in top
    ]
    print(json.dumps(out, indent=1), file=real_stdout)


if __name__ == "__main__":
    main()
