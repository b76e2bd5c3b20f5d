"""Crash safety (Reprise only): every write the server acknowledged survives a SIGKILL.

Bounded load on loopback only: 8 metric writer threads (at most 2000 requests each) and one
artifact writer (at most 200 PUTs), all stopping on their own after a deadline.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import signal
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests

from conftest import kill_server, start_server, stop_server

N_THREADS = 8
MAX_CALLS = 2000
MAX_PUTS = 200
LOAD_BEFORE_KILL_S = 1.5
HARD_DEADLINE_S = 30.0


def _conn(url):
    return http.client.HTTPConnection("127.0.0.1", url.port, timeout=10)


def _metric_writer(url, run_id, key, acked, stop_at):
    conn = _conn(url)
    try:
        for step in range(MAX_CALLS):
            if time.monotonic() > stop_at:
                return
            value = step * 0.5 + 0.25
            body = json.dumps({"run_id": run_id, "key": key, "value": value,
                               "timestamp": 1_700_000_000_000 + step, "step": step})
            try:
                conn.request("POST", "/api/2.0/mlflow/runs/log-metric", body=body,
                             headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
            except (OSError, http.client.HTTPException):
                return  # server died
            if resp.status == 200:
                acked.append((step, value))
    finally:
        conn.close()


def _artifact_writer(url, prefix, acked, stop_at):
    conn = _conn(url)
    try:
        for i in range(MAX_PUTS):
            if time.monotonic() > stop_at:
                return
            data = (f"{i}:".encode() * 4096)[: 16 * 1024 + i]
            path = f"/api/2.0/mlflow-artifacts/artifacts/{prefix}/f{i:04d}.bin"
            try:
                conn.request("PUT", path, body=data,
                             headers={"Content-Type": "application/octet-stream",
                                      "Content-Length": str(len(data))})
                resp = conn.getresponse()
                resp.read()
            except (OSError, http.client.HTTPException):
                return
            if resp.status == 200:
                acked.append((path, hashlib.sha256(data).hexdigest()))
    finally:
        conn.close()


KILLS = 10
LOAD_PER_ROUND_S = 0.8


@pytest.mark.reprise_only
def test_acknowledged_writes_survive_repeated_sigkill():
    """Ten SIGKILLs under concurrent metric and artifact writes on the same store: after each restart
    every acknowledged write is there, nothing is invented, and SQLite's integrity check passes."""
    with tempfile.TemporaryDirectory(prefix="reprise-crash-") as d:
        tmp = Path(d)
        url = start_server(tmp)
        try:
            s = requests.Session()
            r = s.post(f"{url}/api/2.0/mlflow/experiments/create", json={"name": "crash"}, timeout=10)
            assert r.status_code == 200, r.text
            eid = r.json()["experiment_id"]
            r = s.post(f"{url}/api/2.0/mlflow/runs/create",
                       json={"experiment_id": eid, "run_name": "crash-run", "start_time": 1}, timeout=10)
            assert r.status_code == 200, r.text
            run_id = r.json()["run"]["info"]["run_id"]
            s.close()
        finally:
            stop_server(url)

        acked: dict[str, list] = {}
        art_acked: list = []
        for round_no in range(KILLS):
            url = start_server(tmp)
            try:
                stop_at = time.monotonic() + HARD_DEADLINE_S
                keys = {f"r{round_no}k{i}": [] for i in range(N_THREADS)}
                acked.update(keys)
                threads = [threading.Thread(target=_metric_writer, args=(url, run_id, k, keys[k], stop_at), daemon=True)
                           for k in keys]
                threads.append(threading.Thread(target=_artifact_writer,
                                                args=(url, f"{eid}/{run_id}/artifacts/crash{round_no}", art_acked, stop_at),
                                                daemon=True))
                for t in threads:
                    t.start()
                time.sleep(LOAD_PER_ROUND_S)
                kill_server(url)
                for t in threads:
                    t.join(timeout=HARD_DEADLINE_S)
                assert not any(t.is_alive() for t in threads), "writer threads did not stop"
            finally:
                stop_server(url)

        total = sum(len(v) for v in acked.values())
        assert total > 0, "no metric write was acknowledged before the kills"

        url2 = start_server(tmp)
        try:
            r = requests.get(f"{url2}/health", timeout=10)
            assert r.status_code == 200 and r.text == "OK"
            r = requests.get(f"{url2}/api/2.0/mlflow/runs/get", params={"run_id": run_id}, timeout=10)
            assert r.status_code == 200, r.text
            assert r.json()["run"]["info"]["run_name"] == "crash-run"
            lost = 0
            for key, points in acked.items():
                r = requests.get(f"{url2}/api/2.0/mlflow/metrics/get-history",
                                 params={"run_id": run_id, "metric_key": key}, timeout=30)
                assert r.status_code == 200, r.text
                stored = {(m["step"], m["value"]) for m in r.json().get("metrics", [])}
                missing = [p for p in points if p not in stored]
                lost += len(missing)
                assert not missing, f"{key}: {len(missing)} acknowledged points lost, e.g. {missing[:5]}"
                # nothing invented either
                assert all(v == st * 0.5 + 0.25 for st, v in stored), key
            assert lost == 0
            for path, digest in art_acked:
                r = requests.get(f"{url2}{path}", timeout=30)
                assert r.status_code == 200, (path, r.status_code)
                assert hashlib.sha256(r.content).hexdigest() == digest, path
            # the audit chain stayed whole through every kill
            r = requests.get(f"{url2}/api/reprise/v1/audit/verify", timeout=60)
            assert r.status_code == 200 and r.json()["ok"] is True, r.text
            # the store still accepts writes after recovery
            r = requests.post(f"{url2}/api/2.0/mlflow/runs/log-metric",
                              json={"run_id": run_id, "key": "after", "value": 1.0, "timestamp": 1}, timeout=10)
            assert r.status_code == 200, r.text
        finally:
            stop_server(url2)
        con = sqlite3.connect(tmp / "reprise.db")
        try:
            assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finally:
            con.close()


@pytest.mark.reprise_only
def test_sigterm_during_load_shuts_down_cleanly_and_keeps_acknowledged_writes():
    """SIGTERM mid-load: the server exits 0, and every acknowledged point is there after a restart."""
    with tempfile.TemporaryDirectory(prefix="reprise-term-") as d:
        tmp = Path(d)
        url = start_server(tmp)
        try:
            r = requests.post(f"{url}/api/2.0/mlflow/runs/create",
                              json={"experiment_id": "0", "run_name": "term-run", "start_time": 1}, timeout=10)
            assert r.status_code == 200, r.text
            run_id = r.json()["run"]["info"]["run_id"]
            stop_at = time.monotonic() + HARD_DEADLINE_S
            acked = {f"t{i}": [] for i in range(4)}
            threads = [threading.Thread(target=_metric_writer, args=(url, run_id, k, acked[k], stop_at), daemon=True)
                       for k in acked]
            for t in threads:
                t.start()
            time.sleep(1.0)
            url.proc.send_signal(signal.SIGTERM)
            rc = url.proc.wait(timeout=20)
            for t in threads:
                t.join(timeout=HARD_DEADLINE_S)
            assert rc == 0, f"server exited with {rc} on SIGTERM"
        finally:
            stop_server(url)
        assert sum(len(v) for v in acked.values()) > 0

        url2 = start_server(tmp)
        try:
            for key, points in acked.items():
                r = requests.get(f"{url2}/api/2.0/mlflow/metrics/get-history",
                                 params={"run_id": run_id, "metric_key": key}, timeout=30)
                assert r.status_code == 200, r.text
                stored = {(m["step"], m["value"]) for m in r.json().get("metrics", [])}
                missing = set(points) - stored
                assert not missing, f"{len(missing)} acknowledged points of {key} lost after SIGTERM"
        finally:
            stop_server(url2)
