"""The backup and restore procedures of docs/deploy.md, done while the server keeps serving writes:
SQLite's online backup API (on the SQLite pass) and pg_dump / pg_restore (on the PostgreSQL pass).
The restored copy, under a new server with the same secret key, has everything that was
acknowledged before the backup began and a verifying audit chain."""
from __future__ import annotations

import shutil
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import requests

from conftest import COMPAT_POSTGRES_URL, _backend_store_uri, start_server, stop_server

A = "/api/2.0/mlflow"
G = "/api/reprise/v1"
SECRET = {"REPRISE_SECRET_KEY": "backup-test-secret-key-0123456789abcdef"}


def test_backup_while_serving_and_restore(tmp_path):
    live = start_server(tmp_path / "live", env_extra=SECRET)
    stop = threading.Event()
    try:
        run = requests.post(f"{live}{A}/runs/create", json={"experiment_id": "0"}, timeout=30).json()["run"]["info"]["run_id"]
        for i in range(50):
            assert requests.post(f"{live}{A}/runs/log-metric", json={"run_id": run, "key": "m", "value": i, "timestamp": i, "step": i},
                                 timeout=30).status_code == 200
        requests.post(f"{live}{A}/experiments/create", json={"name": "before-backup"}, timeout=30).raise_for_status()

        # Writes go on while the backup is taken.
        def writer():
            i = 1000
            while not stop.is_set():
                requests.post(f"{live}{A}/runs/log-metric", json={"run_id": run, "key": "m", "value": i, "timestamp": i, "step": i},
                              timeout=30)
                i += 1
        t = threading.Thread(target=writer)
        t.start()
        time.sleep(0.3)
        restored_dir = tmp_path / "restored"
        restored_dir.mkdir()
        if COMPAT_POSTGRES_URL:
            source = _backend_store_uri(tmp_path / "live")
            dump = tmp_path / "reprise.dump"
            subprocess.run(["pg_dump", "-Fc", "-f", str(dump), source], check=True, capture_output=True)
            target = _backend_store_uri(restored_dir)
            subprocess.run(["pg_restore", "--no-owner", "-d", target, str(dump)], check=True, capture_output=True)
            backend = target
        else:
            # SQLite's online backup API: a consistent copy while the server keeps its WAL open.
            src = sqlite3.connect(str(tmp_path / "live" / "reprise.db"))
            dst = sqlite3.connect(str(restored_dir / "reprise.db"))
            src.backup(dst)
            dst.close()
            src.close()
            backend = f"sqlite:///{restored_dir}/reprise.db"
        stop.set()
        t.join(timeout=30)
    finally:
        stop.set()
        stop_server(live)

    restored = start_server(restored_dir, env_extra=SECRET, backend_store_uri=backend)
    try:
        r = requests.get(f"{restored}{A}/metrics/get-history", params={"run_id": run, "metric_key": "m"}, timeout=30)
        steps = {int(m["step"]) for m in r.json()["metrics"]}
        assert set(range(50)) <= steps
        r = requests.get(f"{restored}{A}/experiments/get-by-name", params={"experiment_name": "before-backup"}, timeout=30)
        assert r.status_code == 200, r.text
        v = requests.get(f"{restored}{G}/audit/verify", timeout=60).json()
        assert v.get("ok") is True, v
        # The restored server takes writes.
        assert requests.post(f"{restored}{A}/runs/log-metric", json={"run_id": run, "key": "m", "value": 1, "timestamp": 1, "step": 99999},
                             timeout=30).status_code == 200
    finally:
        stop_server(restored)
