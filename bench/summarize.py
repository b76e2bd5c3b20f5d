#!/usr/bin/env python3
"""Markdown summary of one bench/run.sh result folder (stdlib only).

  python3 bench/summarize.py bench/results/<date>      -> markdown on stdout

Reads (whatever exists): meta.json, startup_{reference,reprise}.json,
rss_{reference,reprise}.json, seed_{reference,reprise}.json, ab/A.jsonl (reference),
ab/B.jsonl (Reprise), wrk/A.jsonl, wrk/B.jsonl, and appends report_ab.md / report_wrk.md
(the shared report.py output) as they are.

Every case value is the median over its repetitions (records with rep == "median" are
skipped, as in report.py).  "Reprise/ref" is a speed-up: > 1 means Reprise is better
(throughput Reprise/ref; for start-up and memory ref/Reprise).
"""
import json
import os
import re
import statistics
import sys

TARGETS = [
    # id, description, unit, target, higher_is_better
    ("log-metric", "log-metric c=8", "req/s", 5000, True),
    ("log-batch", "log-batch (1000 metrics/request)", "points/s", 500_000, True),
    ("search", "search-runs over 10k runs (filter + order), p50", "ms", 20, False),
    ("history", "get-history of 100k points, p50", "ms", 100, False),
    ("startup", "start-up to /health 200 (median)", "s", 0.5, False),
    ("rss", "RSS after the suite", "MiB", 150, False),
]


def jload(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def key(r):
    parts = [r["test"]]
    if r.get("variant"):
        parts.append(r["variant"])
    if "size_bytes" in r:
        parts.append(f"{r['size_bytes'] / 2**20:g}MiB")
    if "concurrency" in r:
        parts.append(f"c={r['concurrency']}")
    return " ".join(parts)


def thr(r):
    if "MiB_per_s" in r:
        return r["MiB_per_s"], "MiB/s"
    if "metric_points_per_s" in r and r["test"] != "get-history":
        return r["metric_points_per_s"], "points/s"
    return r.get("req_per_s"), "req/s"


def load_jsonl(path):
    """-> ({case: median record}, [case order], max server-memory record or None)"""
    groups, order, mem = {}, [], None
    if not os.path.exists(path):
        return {}, [], None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            r = json.loads(line)
            if r["test"].startswith("server-memory"):
                if mem is None or r["rss_MiB_total"] > mem["rss_MiB_total"]:
                    mem = r
                continue
            if r.get("rep") == "median":
                continue
            k = key(r)
            if k not in groups:
                groups[k] = []
                order.append(k)
            groups[k].append(r)
    out = {}
    for k in order:
        rs = groups[k]
        m = dict(rs[0])
        for fld, v in rs[0].items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                vals = [x[fld] for x in rs if isinstance(x.get(fld), (int, float))]
                m[fld] = statistics.median(vals)
        m["errors"] = sum(x.get("errors", 0) for x in rs)
        m["n_reps"] = len(rs)
        out[k] = m
    return out, order, mem


def fmt(x, unit=""):
    if x is None:
        return "n/a"
    if isinstance(x, float):
        if abs(x) >= 100:
            s = f"{x:,.0f}"
        elif abs(x) >= 1:
            s = f"{x:.3g}" if abs(x) < 10 else f"{x:.1f}"
        else:
            s = f"{x:.3g}"
    elif isinstance(x, int):
        s = f"{x:,}"
    else:
        s = str(x)
    return f"{s} {unit}".strip()


def ratio(b, a):
    if a in (None, 0) or b in (None, 0):
        return "–"
    return f"{b / a:.2f}x"


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    d = sys.argv[1]
    meta = jload(os.path.join(d, "meta.json")) or {}
    su = {s: jload(os.path.join(d, f"startup_{s}.json")) for s in ("reference", "reprise")}
    rss = {s: jload(os.path.join(d, f"rss_{s}.json")) for s in ("reference", "reprise")}
    seed = {s: jload(os.path.join(d, f"seed_{s}.json")) for s in ("reference", "reprise")}
    ab = {s: load_jsonl(os.path.join(d, "ab", f"{f}.jsonl"))
          for s, f in (("reference", "A"), ("reprise", "B"))}
    wrk = {s: load_jsonl(os.path.join(d, "wrk", f"{f}.jsonl"))
           for s, f in (("reference", "A"), ("reprise", "B"))}
    ref_name = "reference" + (" (uvloop)" if meta.get("ref_uvloop") else "")
    P = print

    P(f"# Reprise vs reference MLflow — {meta.get('date', '?')}\n")
    P(f"- command: `{meta.get('command', '?')}`")
    P(f"- results: `{meta.get('results_dir', d)}`")
    P(f"- machine: {meta.get('nproc', '?')} CPUs ({meta.get('cpu_model', '?')}), "
      f"{meta.get('mem_total', '?')} RAM, kernel {meta.get('kernel', '?')}")
    P(f"- load average before the run: {meta.get('loadavg_start', '?')}")
    P(f"- swift: {meta.get('swift_version', '?')}; python: {meta.get('python_version', '?')}; "
      f"wrk: {meta.get('wrk_version', 'not used')}")
    P(f"- reference: MLflow {meta.get('mlflow_version', '?')}, SQLite, "
      f"{'uvloop + httptools' if meta.get('ref_uvloop') else 'default install (no uvloop)'}"
      f"{'' if meta.get('mode') != 'only-reprise' else ' — not run (ONLY_REPRISE=1)'}")
    P(f"- Reprise: `{meta.get('reprise_bin', '?')}` (commit {meta.get('git_commit', '?')})"
      f"{'' if meta.get('mode') != 'only-ref' else ' — not run (ONLY_REF=1)'}")
    P(f"- repetitions: {meta.get('reps', '?')} (interleaved A/B), groups: {meta.get('groups', '?')}")
    for s in ("reference", "reprise"):
        if seed[s]:
            x = seed[s]
            P(f"- seed {s}: {x.get('runs_seeded')} runs in {x.get('seed_runs_s')} s "
              f"({x.get('seed_runs_per_s')} runs/s), {x.get('history_points')} history points "
              f"in {x.get('seed_history_s')} s, {x.get('seed_errors')} errors")
    P()

    # ---------------------------------------------------------------- per-case table
    P("## Cases (median of repetitions)\n")
    P("Reprise/ref > 1 means Reprise is better (more throughput, faster start-up, less memory).\n")
    P(f"| case | unit | {ref_name} | Reprise | Reprise/ref | ref p50 ms | Reprise p50 ms |")
    P("|---|---|---|---|---|---|---|")
    for src in (ab, wrk):
        cases = []
        for s in ("reference", "reprise"):
            for k in src[s][1]:
                if k not in cases:
                    cases.append(k)
        for k in cases:
            a = src["reference"][0].get(k)
            b = src["reprise"][0].get(k)
            unit = thr(a or b)[1]
            ta = thr(a)[0] if a else None
            tb = thr(b)[0] if b else None

            def cell(r, t):
                if r is None:
                    return "n/a"
                return fmt(t) + (f" ({r['errors']} err)" if r.get("errors") else "")
            P(f"| {k} | {unit} | {cell(a, ta)} | {cell(b, tb)} | {ratio(tb, ta)} | "
              f"{fmt(a.get('p50_ms')) if a else 'n/a'} | {fmt(b.get('p50_ms')) if b else 'n/a'} |")
    sa = (su["reference"] or {}).get("median_s")
    sb = (su["reprise"] or {}).get("median_s")
    na = (su["reference"] or {}).get("n")
    nb = (su["reprise"] or {}).get("n")
    P(f"| start-up to /health (median of {na or '-'} / {nb or '-'}) | s | {fmt(sa)} | {fmt(sb)} | "
      f"{ratio(sa, sb)} | | |")
    ra = (rss["reference"] or {}).get("rss_MiB_total")
    rb = (rss["reprise"] or {}).get("rss_MiB_total")
    pa = (rss["reference"] or {}).get("n_processes")
    P(f"| RSS at end (VmRSS, ref summed over {pa or '-'} processes) | MiB | {fmt(ra)} | {fmt(rb)} | "
      f"{ratio(ra, rb)} | | |")
    P()

    # ---------------------------------------------------------------- targets
    B = ab["reprise"][0]
    W = wrk["reprise"][0]
    measured = {}
    lm_wrk = W.get("wrk-log-metric c=8")
    lm_lg = B.get("log-metric c=8")
    if lm_wrk and lm_wrk.get("req_per_s") is not None:
        measured["log-metric"] = (lm_wrk["req_per_s"], "wrk" + (
            f"; loadgen.py: {fmt(lm_lg.get('req_per_s'))} req/s" if lm_lg else ""))
    elif lm_lg and lm_lg.get("req_per_s") is not None:
        measured["log-metric"] = (lm_lg["req_per_s"],
                                  "loadgen.py (no wrk; Python client-bound above ~2-4k req/s)")
    lb = [(B[k].get("metric_points_per_s"), k) for k in ("log-batch c=1", "log-batch c=4")
          if k in B and B[k].get("metric_points_per_s") is not None]
    if lb:
        v, k = max(lb)
        measured["log-batch"] = (v, f"best of c=1/c=4: {k}")
    s = B.get("search-runs filter+order c=1")
    if s:
        measured["search"] = (s.get("p50_ms"),
                              f"{(seed['reprise'] or {}).get('runs_seeded', '?')} runs seeded")
    h = B.get("get-history c=1")
    if h:
        measured["history"] = (h.get("p50_ms"), f"{h.get('points_returned', '?')} points returned")
    if sb is not None:
        measured["startup"] = (sb, f"median of {nb} starts")
    if rb is not None:
        peak = ab["reprise"][2]
        measured["rss"] = (rb, "VmRSS at end" + (f"; loadgen max after a group "
                                                  f"{peak['rss_MiB_total']} MiB" if peak else ""))
    sr = (seed["reprise"] or {})
    small = {"search": sr.get("runs_seeded") is not None and sr["runs_seeded"] < 10_000,
             "history": sr.get("history_points") is not None and sr["history_points"] < 100_000}
    P("## Targets (Reprise)\n")
    P("| target | goal | measured | met? | note |")
    P("|---|---|---|---|---|")
    for tid, desc, unit, goal, hib in TARGETS:
        v, note = measured.get(tid, (None, "not measured"))
        met = "n/a" if v is None else (("yes" if v >= goal else "NO") if hib
                                       else ("yes" if v <= goal else "NO"))
        if small.get(tid) and v is not None:
            met += " (seed smaller than the target's)"
        P(f"| {desc} | {'≥' if hib else '≤'} {fmt(goal)} {unit} | {fmt(v, unit) if v is not None else 'n/a'} "
          f"| {met} | {note} |")
    P()

    # ---------------------------------------------------------------- raw reports
    for name, title in (("report_ab.md", "loadgen.py suite (shared report.py, A = reference, B = Reprise)"),
                        ("report_wrk.md", "wrk write cases (shared report.py)")):
        p = os.path.join(d, name)
        if os.path.exists(p):
            with open(p) as f:
                body = f.read().strip()
            if body:
                P(f"## {title}\n")
                P(re.sub(r"^###", "####", body, flags=re.M))
                P()
    if (su["reprise"] or {}).get("samples_s") or (su["reference"] or {}).get("samples_s"):
        P("## Start-up samples (s)\n")
        for s in ("reference", "reprise"):
            if su[s]:
                P(f"- {s}: {su[s]['samples_s']}" + (f" errors: {su[s]['errors']}" if su[s]['errors'] else ""))
        P()


if __name__ == "__main__":
    main()
