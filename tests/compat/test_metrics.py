"""Prometheus metrics with MLflow's flag: requests and latency by route template, the store's write
and read latency and its write queue, in Prometheus's text format."""
from __future__ import annotations

import re

import requests

from conftest import COMPAT_POSTGRES_URL, start_server, stop_server

A = "/api/2.0/mlflow"


def test_expose_prometheus_serves_metrics_by_route(tmp_path):
    url = start_server(tmp_path / "s", extra_args=("--expose-prometheus", str(tmp_path / "prom")))
    try:
        exp = requests.post(f"{url}{A}/experiments/create", json={"name": "metrics"}, timeout=30).json()["experiment_id"]
        for _ in range(3):
            assert requests.get(f"{url}{A}/experiments/get", params={"experiment_id": exp}, timeout=30).status_code == 200
        assert requests.get(f"{url}{A}/experiments/get", params={"experiment_id": "999999"}, timeout=30).status_code == 404
        r = requests.get(f"{url}/metrics", timeout=30)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain"), r.text[:200]
        text = r.text
        # Counted per route template and status, so label values stay few.
        ok = [l for l in text.splitlines() if l.startswith("hb_requests") and 'http_route="/api/2.0/mlflow/experiments/get"' in l
              and 'http_response_status_code="200"' in l]
        assert ok and ok[0].rstrip().endswith(" 3"), [l for l in text.splitlines() if l.startswith("hb_requests")][:10]
        assert re.search(r'^hb_requests_total\{[^}]*http_response_status_code="404"', text, re.M) or any(
            l.startswith("hb_requests") and 'http_response_status_code="404"' in l for l in text.splitlines()), text[:2000]
        assert "http_server_request_duration" in text
        assert re.search(r"^reprise_store_write_seconds_count(\{[^}]*\})? [1-9]", text, re.M), text[:3000]
        assert re.search(r"^reprise_store_read_seconds_count(\{[^}]*\})? [1-9]", text, re.M)
        assert "reprise_store_write_queue_depth" in text
        # The webhook outbox's backlog, refreshed every few seconds.
        import time
        deadline = time.monotonic() + 15
        while "reprise_webhook_backlog" not in text and time.monotonic() < deadline:
            time.sleep(0.5)
            text = requests.get(f"{url}/metrics", timeout=30).text
        assert re.search(r"^reprise_webhook_backlog(\{[^}]*\})? 0", text, re.M), text[-2000:]
        # Where the memory is, sampled at the scrape: resident pages (as /proc says), SQLite's share
        # and the allocator's live and kept-after-free bytes. Each is a plausible, non-zero size.
        def gauge(name):
            m = re.search(rf"^{name}(?:\{{[^}}]*\}})? ([0-9.e+]+)$", text, re.M)
            assert m, (name, text[-3000:])
            return float(m.group(1))
        resident = gauge("process_resident_memory_bytes")
        assert 10 * 2**20 < resident < 2 * 2**30, resident
        in_use = gauge("reprise_malloc_in_use_bytes")
        assert 0 < in_use < 2 * 2**30, in_use
        if COMPAT_POSTGRES_URL:
            # No SQLite store, so no SQLite share to report.
            assert "reprise_sqlite_memory_bytes" not in text
        else:
            sqlite = gauge("reprise_sqlite_memory_bytes")
            assert 0 < sqlite < min(resident, in_use), (sqlite, resident, in_use)
        assert gauge("reprise_malloc_free_held_bytes") >= 0
    finally:
        stop_server(url)


def test_metrics_are_off_unless_asked_for(server):
    r = requests.get(f"{server}/metrics", timeout=30)
    assert r.status_code == 404 and "--expose-prometheus" in r.json()["message"]
