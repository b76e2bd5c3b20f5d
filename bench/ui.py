#!/usr/bin/env python3
"""Web UI page times over an experiment of 100,000 runs (Reprise only; the reference has no such pages).

  REPRISE_BIN=.build-release/release/reprise python3 bench/ui.py [--runs 100000] [--reps 20]

Starts a fresh server, seeds it with ../shared/bench/seed.py (N runs with 10 params, 10 metrics and
5 tags each, and one run with a 100,000-point metric history), then requests each page REPS times
after one warm-up and prints p50/p95/max in milliseconds. Times are wall clock on loopback with a
keep-alive connection, so they are the server's time plus well under a millisecond.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import http.client

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED = os.environ.get("SHARED_BENCH", os.path.join(ROOT, "..", "shared", "bench"))


def post(base, path, body):
    req = urllib.request.Request(base + "/api/2.0/mlflow/" + path, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read() or b"{}")


def seed_extras(base, run_id, million=False):
    """A registered model version from a run, a prompt with three versions, and optionally one run
    with a 1,000,000-point history (1,000 points per log-batch)."""
    suffix = str(int(time.time()))
    model = f"bench-model-{suffix}"
    post(base, "registered-models/create", {"name": model})
    post(base, "model-versions/create", {"name": model, "source": f"runs:/{run_id}/model", "run_id": run_id})
    prompt = f"bench-prompt-{suffix}"
    post(base, "registered-models/create", {"name": prompt, "tags": [{"key": "mlflow.prompt.is_prompt", "value": "true"}]})
    for v in range(3):
        post(base, "model-versions/create", {"name": prompt, "source": "dummy", "tags": [
            {"key": "mlflow.prompt.is_prompt", "value": "true"},
            {"key": "mlflow.prompt.text", "value": f"Answer in {v + 1} sentences: {{{{question}}}}"}]})
    out = {"model": model, "prompt": prompt}
    if million:
        exp = post(base, "experiments/create", {"name": f"bench-million-{suffix}"})["experiment_id"]
        rid = post(base, "runs/create", {"experiment_id": exp, "start_time": 1_700_000_000_000})["run"]["info"]["run_id"]
        t0 = time.time()
        for k in range(0, 1_000_000, 1000):
            post(base, "runs/log-batch", {"run_id": rid, "metrics": [
                {"key": "loss", "value": 1.0 / (1 + j / 1000), "timestamp": 1_700_000_000_000 + j, "step": j} for j in range(k, k + 1000)]})
        print(f"seeded a 1,000,000-point history in {time.time() - t0:.0f} s", file=sys.stderr)
        out["million"] = rid
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--port", type=int, default=5391)
    ap.add_argument("--million", action="store_true", help="also seed a 1,000,000-point history (about 20 s more)")
    args = ap.parse_args()
    binary = os.environ.get("REPRISE_BIN", os.path.join(ROOT, ".build-release", "release", "reprise"))
    data = tempfile.mkdtemp(prefix="reprise-uibench-")
    server = subprocess.Popen([binary, "server", "--port", str(args.port), "--backend-store-uri", f"sqlite:///{data}/r.db",
                               "--artifacts-destination", f"{data}/a"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{args.port}"
    try:
        for _ in range(100):
            try:
                c = http.client.HTTPConnection("127.0.0.1", args.port, timeout=2)
                c.request("GET", "/health")
                if c.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        t0 = time.time()
        info_path = os.path.join(data, "seed.json")
        subprocess.run([sys.executable, os.path.join(SHARED, "seed.py"), "--base-url", base, "--runs", str(args.runs),
                        "--out", info_path], check=True, stdout=subprocess.DEVNULL)
        print(f"seeded {args.runs} runs in {time.time() - t0:.0f} s", file=sys.stderr)
        info = json.load(open(info_path))
        exp = info.get("search_experiment_id") or info.get("experiments", {}).get("search")
        hist_run = info.get("history_run_id")
        conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=60)

        def get(path):
            conn.request("GET", path)
            r = conn.getresponse()
            body = r.read()
            assert r.status == 200, (path, r.status, body[:300])
            return body.decode()

        first = get(f"/ui/experiments/{exp}")
        run_ids = [part.split('"')[0] for part in first.split('name="runs" value="')[1:]][:3]
        # The page token of offset 50,000 (the UI's "next" links carry the same form).
        import base64
        deep = base64.b64encode(json.dumps({"offset": args.runs // 2}).encode()).decode()
        f = urllib.parse.quote("metrics.m1 > 0.5 and params.p1 = 'a'")
        pages = [
            ("experiments list (run counts over all runs)", "/ui/"),
            (f"runs table, first 50 of {args.runs:,}", f"/ui/experiments/{exp}"),
            ("runs table, filter metrics.m1 > 0.5 and params.p1 = 'a'", f"/ui/experiments/{exp}?filter={f}"),
            ("runs table, sorted by metric m1", f"/ui/experiments/{exp}?order=" + urllib.parse.quote("metrics.`m1` DESC")),
            (f"runs table, page at offset {args.runs // 2:,}", f"/ui/experiments/{exp}?page={urllib.parse.quote(deep)}"),
            ("runs table, CSV of 1,000 runs", f"/ui/experiments/{exp}?size=1000&format=csv"),
            ("run page", f"/ui/runs/{run_ids[0]}"),
            ("compare 3 runs", f"/ui/compare?runs={','.join(run_ids)}"),
        ]
        if hist_run:
            pages.append(("run page with a 100,000-point metric chart", f"/ui/runs/{hist_run}"))
            pages.append(("charts workspace, the 100,000-point history", f"/ui/charts?runs={hist_run}"))
            pages.append(("same, zoomed to 1,000 steps", f"/ui/charts?runs={hist_run}&from=50000&to=51000"))
        pages.append(("charts workspace, 3 runs x 10 metrics", f"/ui/charts?runs={','.join(run_ids)}"))
        pages.append((f"one metric across the first 100 of {args.runs:,} runs", f"/ui/experiments/{exp}/chart?metric=m1&size=100"))
        extra = seed_extras(base, run_ids[0], million=args.million)
        pages.append(("model version page", f"/ui/models/{extra['model']}/versions/1"))
        pages.append(("prompt page (3 versions)", f"/ui/prompts/{extra['prompt']}"))
        pages.append(("logged models of the experiment", f"/ui/experiments/{exp}/models"))
        if extra.get("million"):
            m = extra["million"]
            pages.append(("charts workspace, a 1,000,000-point history", f"/ui/charts?runs={m}"))
            pages.append(("same, wall-time axis", f"/ui/charts?runs={m}&xaxis=time"))
            pages.append(("same, zoomed to 100,000 steps", f"/ui/charts?runs={m}&from=400000&to=500000"))
            pages.append(("same, zoomed to 1,000 steps", f"/ui/charts?runs={m}&from=500000&to=501000"))
        print(f"| page | p50 ms | p95 ms | max ms |\n|---|---|---|---|")
        for label, path in pages:
            get(path)
            times = []
            for _ in range(args.reps):
                s = time.perf_counter()
                get(path)
                times.append((time.perf_counter() - s) * 1000)
            times.sort()
            p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
            print(f"| {label} | {statistics.median(times):.1f} | {p95:.1f} | {times[-1]:.1f} |")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
