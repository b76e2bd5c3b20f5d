#!/usr/bin/env python3
"""Registry search benchmark (stdlib only, loopback only, bounded).

Seeds M registered models with N model versions in all (plain s3:// sources, so no runs are needed),
then times the registry searches a model-registry UI and the client make:

  model-versions/search  name = '<one model>'             (N/M versions back)
  model-versions/search  name LIKE 'bench-reg-1%' + order_by version_number DESC, max_results 100
  registered-models/search  name LIKE 'bench-reg-1%'      (the client's prompt filter appended)
  registered-models/get-latest-versions  for one model

  python3 bench/registry.py --base-url http://127.0.0.1:5000 --versions 10000 --models 100 --out reg.jsonl

Prints one line per case (p50 / p90 ms over --n requests) and appends JSON records to --out.
"""
import argparse
import http.client
import json
import statistics
import sys
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

API = "/api/2.0/mlflow"


class Client:
    def __init__(self, base):
        u = urllib.parse.urlparse(base)
        if u.hostname not in ("127.0.0.1", "localhost", "::1"):
            sys.exit("loopback URLs only")
        self.host, self.port, self.prefix = u.hostname, u.port or 80, u.path.rstrip("/")
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)

    def call(self, method, path, body=None, query=None):
        url = self.prefix + path + ("?" + urllib.parse.urlencode(query, doseq=True) if query else "")
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        self.conn.request(method, url, body=data, headers=headers)
        r = self.conn.getresponse()
        payload = r.read()
        if r.status >= 300:
            raise RuntimeError(f"{method} {path} -> {r.status}: {payload[:200]!r}")
        return json.loads(payload or b"{}")


def seed(base, models, versions, prefix, deadline):
    per_model = versions // models
    c = Client(base)
    for m in range(models):
        c.call("POST", API + "/registered-models/create", {"name": f"{prefix}-{m}"})

    def fill(m):
        cli = Client(base)
        for v in range(per_model):
            if time.monotonic() > deadline:
                raise RuntimeError("seeding ran past --max-seconds")
            cli.call("POST", API + "/model-versions/create",
                     {"name": f"{prefix}-{m}", "source": f"s3://bench-bucket/{prefix}/{m}/{v}"})
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(fill, range(models)))
    return per_model * models


def timed(c, n, method, path, body=None, query=None, check=None):
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = c.call(method, path, body, query)
        lat.append((time.perf_counter() - t0) * 1000)
        if check:
            check(r)
    lat.sort()
    return {"p50_ms": statistics.median(lat), "p90_ms": lat[int(0.9 * (len(lat) - 1))], "n": n}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--label", default="")
    ap.add_argument("--versions", type=int, default=10000)
    ap.add_argument("--models", type=int, default=100)
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--prefix", default="bench-reg")
    ap.add_argument("--max-seconds", type=float, default=1200)
    ap.add_argument("--out")
    a = ap.parse_args()
    t0 = time.monotonic()
    seeded = seed(a.base_url, a.models, a.versions, a.prefix, t0 + a.max_seconds)
    seed_s = time.monotonic() - t0
    print(f"{a.label} seeded {seeded} versions in {a.models} models in {seed_s:.1f} s ({seeded / seed_s:.0f}/s)")
    c = Client(a.base_url)
    per_model = seeded // a.models
    one = f"{a.prefix}-7"

    def expect(key, count):
        def check(r):
            got = len(r.get(key, []))
            if got != count:
                raise RuntimeError(f"expected {count} {key}, got {got}")
        return check

    cases = {
        "model-versions/search name=": timed(
            c, a.n, "GET", API + "/model-versions/search",
            query={"filter": f"name='{one}'", "max_results": 10000}, check=expect("model_versions", per_model)),
        "model-versions/search LIKE + order": timed(
            c, a.n, "GET", API + "/model-versions/search",
            query={"filter": f"name LIKE '{a.prefix}-1%'", "order_by": ["version_number DESC"], "max_results": 100},
            check=expect("model_versions", 100)),
        "registered-models/search LIKE": timed(
            c, a.n, "GET", API + "/registered-models/search",
            query={"filter": f"name LIKE '{a.prefix}-1%' AND tag.`mlflow.prompt.is_prompt` != 'true'", "max_results": 100}),
        "get-latest-versions": timed(
            c, a.n, "POST", API + "/registered-models/get-latest-versions", body={"name": one}),
    }
    for name, rec in cases.items():
        print(f"{a.label} [{name}] p50_ms={rec['p50_ms']:.2f} p90_ms={rec['p90_ms']:.2f} n={rec['n']}")
        if a.out:
            with open(a.out, "a") as f:
                f.write(json.dumps({"label": a.label, "case": name, "versions": seeded, "models": a.models,
                                    "seed_s": seed_s, **rec}) + "\n")


if __name__ == "__main__":
    main()
