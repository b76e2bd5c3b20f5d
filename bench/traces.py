"""Trace storage and search at scale (issue 13): seeds N traces through the wire protocol the MLflow
3.17.2 client uses (OTLP spans on /v1/traces, then StartTraceV3), then times the searches a user
runs over them: newest first, by tag, by status, by span name, by feedback, and reading one trace
with its spans.

    python bench/traces.py --base-url http://127.0.0.1:5000 --traces 100000 [--reps 30] [--json OUT]

Needs `requests` and the OpenTelemetry protobuf types (both come with `mlflow`). Each trace has
three spans (root CHAIN, a RETRIEVER and an LLM child with inputs and outputs), a `team` tag (one
of 8), and one trace in ten ends in ERROR. Seeding batches 50 traces per OTLP request and runs
8 requests at once; the timed part is sequential, one request at a time.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import random
import statistics
import sys
import time
import uuid

import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

TEAMS = [f"team-{i}" for i in range(8)]


def iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


def trace_batch(experiment: str, start_index: int, count: int, base_ms: int):
    req = ExportTraceServiceRequest()
    scope = req.resource_spans.add().scope_spans.add()
    infos = []
    for i in range(start_index, start_index + count):
        hexid = uuid.uuid4().hex
        tid = "tr-" + hexid
        t0 = (base_ms + i * 10) * 1_000_000
        error = i % 10 == 7
        ids = [os.urandom(8) for _ in range(3)]
        for n, (name, kind, parent) in enumerate([("agent", "CHAIN", None), ("retrieve", "RETRIEVER", 0), ("generate", "LLM", 0)]):
            s = scope.spans.add()
            s.trace_id = bytes.fromhex(hexid)
            s.span_id = ids[n]
            if parent is not None:
                s.parent_span_id = ids[parent]
            s.name = name
            s.start_time_unix_nano = t0 + n * 1_000_000
            s.end_time_unix_nano = t0 + 9_000_000 - n
            s.status.code = 2 if (error and n == 0) else 1
            for key, value in [("mlflow.traceRequestId", tid), ("mlflow.spanType", kind),
                               ("mlflow.spanInputs", json.dumps({"question": f"question number {i}"})),
                               ("mlflow.spanOutputs", json.dumps({"answer": f"answer {i * 7}"}))]:
                a = s.attributes.add()
                a.key = key
                a.value.string_value = value
        infos.append({
            "trace_id": tid,
            "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": experiment}},
            "request_time": iso(t0 // 1_000_000), "execution_duration": "0.009s", "state": "ERROR" if error else "OK",
            "trace_metadata": {"mlflow.trace_schema.version": "3", "mlflow.user": "bench"},
            "tags": {"mlflow.traceName": "agent", "team": TEAMS[i % len(TEAMS)]},
            "request_preview": json.dumps({"question": f"question number {i}"}), "response_preview": f"answer {i * 7}",
        })
    return req.SerializeToString(), infos


def seed(base: str, experiment: str, n: int) -> float:
    session = requests.Session()
    base_ms = int(time.time() * 1000) - n * 10
    batch = 50

    def one(start: int) -> None:
        s = requests.Session()
        body, infos = trace_batch(experiment, start, min(batch, n - start), base_ms)
        r = s.post(f"{base}/v1/traces", data=body, timeout=120,
                   headers={"Content-Type": "application/x-protobuf", "x-mlflow-experiment-id": experiment})
        r.raise_for_status()
        for info in infos:
            r = s.post(f"{base}/api/3.0/mlflow/traces", json={"trace": {"trace_info": info}}, timeout=120)
            r.raise_for_status()

    t = time.perf_counter()
    done = 0
    with cf.ThreadPoolExecutor(8) as pool:
        for _ in pool.map(one, range(0, n, batch)):
            done += batch
            if done % 5000 == 0:
                print(f"  seeded {done}/{n} ({done / (time.perf_counter() - t):.0f} traces/s)", file=sys.stderr)
    session.close()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--traces", type=int, default=100_000)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--experiment", help="reuse an experiment already seeded (skips seeding)")
    ap.add_argument("--json")
    args = ap.parse_args()
    base = args.base_url.rstrip("/")
    s = requests.Session()
    if args.experiment:
        experiment, seconds = args.experiment, None
    else:
        r = s.post(f"{base}/api/2.0/mlflow/experiments/create", json={"name": f"traces-bench-{uuid.uuid4().hex[:8]}"})
        r.raise_for_status()
        experiment = r.json()["experiment_id"]
        seconds = seed(base, experiment, args.traces)
        print(f"seeded {args.traces} traces in {seconds:.1f} s ({args.traces / seconds:.0f}/s)", file=sys.stderr)
    loc = [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": experiment}}]
    probe = s.post(f"{base}/api/3.0/mlflow/traces/search", json={"locations": loc, "max_results": 1}).json()["traces"][0]["trace_id"]
    s.post(f"{base}/api/3.0/mlflow/traces/{probe}/assessments",
           json={"assessment": {"assessment_name": "correct", "feedback": {"value": False}, "source": {"source_type": "HUMAN"}}})
    cases = {
        "search newest 100": {"max_results": 100},
        "search tag.team (1 in 8), 100": {"filter": "tag.team = 'team-3'", "max_results": 100},
        "search status ERROR (1 in 10), 100": {"filter": "trace.status = 'ERROR'", "max_results": 100},
        "search span.name, 100": {"filter": "span.name = 'generate'", "max_results": 100},
        "search feedback (1 trace)": {"filter": "feedback.correct = 'false'", "max_results": 100},
        "search tag AND status, oldest first, 100": {"filter": "tag.team = 'team-7' AND trace.status = 'ERROR'", "max_results": 100, "order_by": ["timestamp_ms ASC"]},
    }
    results = {}
    for name, body in cases.items():
        times = []
        for _ in range(args.reps):
            t = time.perf_counter()
            r = s.post(f"{base}/api/3.0/mlflow/traces/search", json={"locations": loc, **body}, timeout=300)
            times.append((time.perf_counter() - t) * 1000)
            r.raise_for_status()
        count = len(r.json().get("traces", []))
        results[name] = {"p50_ms": statistics.median(times), "p95_ms": sorted(times)[int(0.95 * (len(times) - 1))], "returned": count}
    ids = [t["trace_id"] for t in s.post(f"{base}/api/3.0/mlflow/traces/search", json={"locations": loc, "max_results": 50}).json()["traces"]]
    times = []
    for i in range(args.reps):
        t = time.perf_counter()
        r = s.get(f"{base}/api/3.0/mlflow/traces/get", params={"trace_id": ids[i % len(ids)]}, timeout=60)
        times.append((time.perf_counter() - t) * 1000)
        r.raise_for_status()
    results["get one trace with spans"] = {"p50_ms": statistics.median(times), "p95_ms": sorted(times)[int(0.95 * (len(times) - 1))], "returned": len(r.json()["trace"]["spans"])}
    out = {"base_url": base, "traces": args.traces, "experiment": experiment, "seed_seconds": seconds, "cases": results}
    for name, v in results.items():
        print(f"{name:45s} p50 {v['p50_ms']:8.2f} ms  p95 {v['p95_ms']:8.2f} ms  ({v['returned']} returned)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
