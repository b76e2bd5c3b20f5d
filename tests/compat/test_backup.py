"""The backup and restore procedures of docs/deploy.md, done while the server keeps serving writes:
`reprise backup` (SQLite's online backup API, on the SQLite pass) and pg_dump / pg_restore (on the
PostgreSQL pass).
The restored copy, under a new server with the same secret key, has everything that was
acknowledged before the backup began and a verifying audit chain."""
from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import requests

import pytest

from conftest import COMPAT_POSTGRES_URL, REPRISE_BIN, _backend_store_uri, start_server, stop_server

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
            # `reprise backup`: a consistent copy while the server keeps its WAL open and writing.
            out = subprocess.run([REPRISE_BIN, "backup", "--backend-store-uri", f"sqlite:///{tmp_path}/live/reprise.db",
                                  "--to", str(restored_dir / "reprise.db")], capture_output=True, text=True, timeout=120)
            assert out.returncode == 0, out.stdout + out.stderr
            assert "REPRISE_SECRET_KEY" in out.stdout  # this server's key is in the environment, not a file
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


@pytest.mark.reprise_only
@pytest.mark.skipif(bool(COMPAT_POSTGRES_URL), reason="reprise backup copies SQLite stores; the PostgreSQL pass backs up with pg_dump above")
def test_reprise_backup_brings_the_key_file_and_refuses_what_it_cannot_do(tmp_path):
    """A server whose secret lives in reprise-secret.key beside its database: the backup puts the
    same key beside the copy (0600), so a server started on the copy verifies the audit chain; an
    existing destination, a folder holding another store's key and a PostgreSQL URI are refused
    with what to do instead, and nothing is written."""
    live_dir = tmp_path / "live"
    live = start_server(live_dir, env_remove=("REPRISE_SECRET_KEY",))
    try:
        requests.post(f"{live}{A}/experiments/create", json={"name": "keyed"}, timeout=30).raise_for_status()
        backups = tmp_path / "backups"
        backups.mkdir()
        cmd = [REPRISE_BIN, "backup", "--backend-store-uri", f"sqlite:///{live_dir}/reprise.db", "--quiet"]
        out = subprocess.run(cmd + ["--to", str(backups / "copy.db")], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stdout + out.stderr
        key = backups / "reprise-secret.key"
        assert key.read_bytes() == (live_dir / "reprise-secret.key").read_bytes()
        assert key.stat().st_mode & 0o777 == 0o600
        assert not (backups / "copy.db.partial").exists()

        again = subprocess.run(cmd + ["--to", str(backups / "copy.db")], capture_output=True, text=True, timeout=120)
        assert again.returncode != 0 and "exists already" in again.stderr, again.stderr
        other = tmp_path / "other"
        other.mkdir()
        (other / "reprise-secret.key").write_text("someone else's key")
        clash = subprocess.run(cmd + ["--to", str(other / "copy.db")], capture_output=True, text=True, timeout=120)
        assert clash.returncode != 0 and "another store's secret key" in clash.stderr, clash.stderr
        assert not (other / "copy.db").exists()
        pg = subprocess.run([REPRISE_BIN, "backup", "--backend-store-uri", "postgresql://u:secret@db/x", "--to", str(other / "x.db")],
                            capture_output=True, text=True, timeout=60)
        assert pg.returncode != 0 and "pg_dump" in pg.stderr and "secret" not in pg.stderr.replace("secret key", ""), pg.stderr
    finally:
        stop_server(live)

    restored = start_server(backups, env_remove=("REPRISE_SECRET_KEY",), backend_store_uri=f"sqlite:///{backups}/copy.db")
    try:
        r = requests.get(f"{restored}{A}/experiments/get-by-name", params={"experiment_name": "keyed"}, timeout=30)
        assert r.status_code == 200, r.text
        v = requests.get(f"{restored}{G}/audit/verify", timeout=60).json()
        assert v.get("ok") is True and v.get("checked", 0) >= 1, v
    finally:
        stop_server(restored)
