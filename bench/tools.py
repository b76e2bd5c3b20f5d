#!/usr/bin/env python3
"""Small stdlib helpers for bench/run.sh (loopback only).

  tools.py freeport                       -> prints a free TCP port on 127.0.0.1
  tools.py rss PID [PID ...]              -> JSON: VmRSS summed over each PID's process tree
  tools.py startup --n 5 --out F.json -- CMD ARGS...
        CMD/ARGS may contain {port} and {dir}: each start gets a fresh free port and a fresh
        empty temp dir.  Measures the time from spawning the command until GET /health
        answers 200 (polled every --poll-ms, default 5 ms), then kills the process group.
        Writes all samples and their median to F.json.
"""
import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------ /proc

def _children_map():
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
            ppid = int(s[s.rindex(")") + 2:].split()[1])
        except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(d))
    return children


def process_tree(root, children):
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        if os.path.exists(f"/proc/{p}"):
            out.append(p)
            todo.extend(children.get(p, []))
    return out


def vm_rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        return None
    return 0  # kernel threads / zombies have no VmRSS line


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except FileNotFoundError:
        return "?"


def cmd_rss(a):
    children = _children_map()
    procs = []
    for root in a.pids:
        for p in process_tree(root, children):
            kib = vm_rss_kib(p)
            if kib is not None:
                procs.append({"pid": p, "comm": comm(p), "rss_MiB": round(kib / 1024, 1)})
    total = round(sum(p["rss_MiB"] for p in procs), 1)
    print(json.dumps({"roots": a.pids, "rss_MiB_total": total, "n_processes": len(procs),
                      "processes": procs}))


# ------------------------------------------------------------------ start-up

def health_ok(port):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        c.request("GET", "/health")
        r = c.getresponse()
        r.read()
        c.close()
        return r.status == 200
    except (OSError, http.client.HTTPException):
        return False


def kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=15)
    # stragglers in the group (e.g. uvicorn workers that outlive their parent)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def one_start(a, i):
    port = free_port()
    d = tempfile.mkdtemp(prefix="reprise-bench-startup.")
    argv = [x.replace("{port}", str(port)).replace("{dir}", d) for x in a.cmd]
    log = open(os.path.join(d, "server.log"), "wb")
    env = dict(os.environ)
    for kv in a.env:
        k, v = kv.split("=", 1)
        env[k] = v
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    elapsed, err = None, None
    try:
        deadline = t0 + a.timeout
        while time.perf_counter() < deadline:
            if health_ok(port):
                elapsed = time.perf_counter() - t0
                break
            if proc.poll() is not None:
                err = f"exited with {proc.returncode} before /health answered"
                break
            time.sleep(a.poll_ms / 1000)
        else:
            err = f"no 200 from /health within {a.timeout} s"
    finally:
        kill_group(proc)
        log.close()
    if err:
        with open(os.path.join(d, "server.log"), "rb") as f:
            tail = f.read()[-2000:].decode(errors="replace")
        print(f"start {i + 1}: FAILED: {err}\n{tail}", file=sys.stderr)
    shutil.rmtree(d, ignore_errors=True)
    return elapsed, err


def cmd_startup(a):
    if a.cmd and a.cmd[0] == "--":
        a.cmd = a.cmd[1:]
    if not a.cmd:
        raise SystemExit("startup: no command given")
    samples, errors = [], []
    for i in range(a.n):
        t, err = one_start(a, i)
        if err:
            errors.append(err)
        else:
            samples.append(round(t, 4))
            print(f"  {a.label} start {i + 1}/{a.n}: {t * 1000:.1f} ms", flush=True)
    rec = {"label": a.label, "n": a.n, "poll_ms": a.poll_ms, "samples_s": samples,
           "median_s": round(statistics.median(samples), 4) if samples else None,
           "min_s": min(samples) if samples else None,
           "max_s": max(samples) if samples else None,
           "errors": errors, "cmd": " ".join(a.cmd)}
    if a.out:
        with open(a.out, "w") as f:
            json.dump(rec, f, indent=1)
    print(f"  {a.label} start-up median {rec['median_s']} s over {len(samples)} starts"
          + (f" ({len(errors)} failed)" if errors else ""), flush=True)
    if not samples:
        sys.exit(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="sub", required=True)
    sub.add_parser("freeport")
    p = sub.add_parser("rss")
    p.add_argument("pids", nargs="+", type=int)
    p = sub.add_parser("startup")
    p.add_argument("--n", type=int, default=5)
    p.add_argument("--poll-ms", type=float, default=5)
    p.add_argument("--timeout", type=float, default=180)
    p.add_argument("--label", default="server")
    p.add_argument("--env", action="append", default=[], help="KEY=VALUE for the server")
    p.add_argument("--out")
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    if a.sub == "freeport":
        print(free_port())
    elif a.sub == "rss":
        cmd_rss(a)
    else:
        cmd_startup(a)


if __name__ == "__main__":
    main()
