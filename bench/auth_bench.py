#!/usr/bin/env python3
"""What authentication costs: wrk against two fresh release servers, one with authentication off
and one with `--app-name basic-auth`, on the same machine, alternating.

  python3 bench/auth_bench.py --bin .build-release/release/reprise --reps 5 --duration 10

Cases: log-metric c=8 and experiments/search (100 of 60 experiments, filtered per caller when
auth is on) c=8, each as: auth off (no header), Basic (alice's password), and a bearer token.
Prints a JSON line per run and a median table with ratios to auth off.
"""
import argparse
import base64
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import tempfile
import time

import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ADMIN_PW = "bench-admin-password"
ALICE_PW = "bench-alice-password"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base, method, path, body=None, auth=None):
    req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body is not None else None)
    req.add_header("Content-Type", "application/json")
    if auth:
        req.add_header("Authorization", auth)
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"{}")


def basic(user, pw):
    return "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()


def start(binary, auth: bool):
    tmp = tempfile.mkdtemp(prefix="reprise-authbench-")
    port = free_port()
    env = dict(os.environ)
    args = [binary, "server", "--port", str(port)]
    if auth:
        ini = os.path.join(tmp, "auth.ini")
        with open(ini, "w") as f:
            f.write(f"[mlflow]\ndefault_permission = READ\nadmin_username = admin\nadmin_password = {ADMIN_PW}\n")
        env["MLFLOW_AUTH_CONFIG_PATH"] = ini
        args += ["--app-name", "basic-auth"]
    proc = subprocess.Popen(args, cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(base + "/health", timeout=1)
            break
        except Exception:
            time.sleep(0.05)
    return proc, base, tmp


def prepare(base, auth: bool):
    """60 experiments (half alice's, half admin's), two runs of alice's; returns the headers."""
    headers = {"off": None}
    owner = None
    if auth:
        admin = basic("admin", ADMIN_PW)
        call(base, "POST", "/api/2.0/mlflow/users/create", {"username": "alice", "password": ALICE_PW}, admin)
        headers = {"basic": basic("alice", ALICE_PW)}
        secret = call(base, "POST", "/api/reprise/v1/tokens", {"name": "bench"}, headers["basic"])["secret"]
        headers["token"] = "Bearer " + secret
        owner = headers["basic"]
        for i in range(30):
            call(base, "POST", "/api/2.0/mlflow/experiments/create", {"name": f"admin-{i}"}, admin)
    for i in range(30 if auth else 60):
        call(base, "POST", "/api/2.0/mlflow/experiments/create", {"name": f"alice-{i}"}, owner)
    exp = call(base, "POST", "/api/2.0/mlflow/experiments/create", {"name": "bench"}, owner)["experiment_id"]
    runs = [call(base, "POST", "/api/2.0/mlflow/runs/create", {"experiment_id": exp}, owner)["run"]["info"]["run_id"] for _ in range(2)]
    return headers, runs


def wrk(base, mode, runs, header, duration, conc):
    env = dict(os.environ)
    env["AUTH_HEADER"] = header or ""
    p = subprocess.run(["wrk", "-t", "2", "-c", str(conc), "-d", f"{duration}s", "--timeout", "30s",
                        "-s", os.path.join(HERE, "wrk", "auth.lua"), base, "--", mode, *runs],
                       capture_output=True, text=True, env=env, timeout=duration + 60)
    m = re.search(r"AUTHJSON (\{.*\})", p.stdout)
    if not m:
        raise SystemExit(p.stdout + p.stderr)
    r = json.loads(m.group(1))
    r["req_per_s"] = round(r["requests"] / r["seconds"], 1)
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--conc", type=int, default=8)
    a = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    results = {}
    for rep in range(a.reps):
        for auth in (False, True):
            proc, base, tmp = start(a.bin, auth)
            try:
                headers, runs = prepare(base, auth)
                for mode in ("log-metric", "search"):
                    for name, header in headers.items():
                        r = wrk(base, mode, runs, header, a.duration, a.conc)
                        if r["non2xx"]:
                            raise SystemExit(f"{mode}/{name}: {r['non2xx']} non-2xx answers")
                        results.setdefault((mode, name), []).append(r["req_per_s"])
                        print(json.dumps({"rep": rep + 1, "mode": mode, "auth": name, "c": a.conc, **r}), flush=True)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
                shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n| case (c={a.conc}) | auth | median req/s | vs auth off |")
    print("|---|---|---|---|")
    for mode in ("log-metric", "search"):
        off = statistics.median(results[(mode, "off")])
        for name in ("off", "basic", "token"):
            med = statistics.median(results[(mode, name)])
            print(f"| {mode} | {name} | {med:,.0f} | {med / off:.2f} |")


if __name__ == "__main__":
    main()
