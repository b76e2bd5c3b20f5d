"""Several `reprise server` processes on one PostgreSQL database (the team deployment behind a load
balancer): concurrent writers spread across them, one replica killed with SIGKILL under load, and
then every acknowledged write is there, ids are unique, the audit chain verifies and an approval
rule counts each approver once. Runs in the PostgreSQL pass of the compat suite."""
from __future__ import annotations

import json
import os
import re
import subprocess
import signal
import threading
import time

import pytest
import requests

from conftest import COMPAT_POSTGRES_URL, REPRISE_BIN, _backend_store_uri, start_server, stop_server

pytestmark = pytest.mark.skipif(not COMPAT_POSTGRES_URL, reason="servers share one database only on PostgreSQL (the PostgreSQL pass runs this)")

A = "/api/2.0/mlflow"
G = "/api/reprise/v1"
SECRET = {"REPRISE_SECRET_KEY": "replica-test-shared-secret-0123456789abcdef"}


def post(base, path, body, timeout=30):
    return requests.post(base + path, json=body, timeout=timeout)


def test_replicas_on_one_database_keep_every_acknowledged_write(tmp_path):
    uri = _backend_store_uri(tmp_path / "shared")
    servers = [start_server(tmp_path / f"r{i}", backend_store_uri=uri, env_extra=SECRET) for i in range(3)]
    acked_metrics: list[tuple[str, int]] = []
    acked_experiments: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[str] = []

    def writer(w: int):
        n = 0
        run_id = None
        while not stop.is_set() and n < 120:
            base = servers[(w + n) % 3]
            try:
                if run_id is None:
                    r = post(base, f"{A}/runs/create", {"experiment_id": "0", "start_time": int(time.time() * 1000)})
                    if r.status_code != 200:
                        continue
                    run_id = r.json()["run"]["info"]["run_id"]
                if n % 10 == 0:
                    r = post(base, f"{A}/experiments/create", {"name": f"replica-{w}-{n}"})
                    if r.status_code == 200:
                        with lock:
                            acked_experiments.append(r.json()["experiment_id"])
                    elif r.status_code != 400:
                        errors.append(f"create experiment: {r.status_code} {r.text[:200]}")
                r = post(base, f"{A}/runs/log-metric", {"run_id": run_id, "key": "m", "value": n, "timestamp": n, "step": n})
                if r.status_code == 200:
                    with lock:
                        acked_metrics.append((run_id, n))
                elif r.status_code >= 500 and r.status_code != 503:
                    errors.append(f"log-metric: {r.status_code} {r.text[:200]}")
            except requests.RequestException:
                pass  # the killed replica: not acknowledged, so nothing is owed
            n += 1

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    try:
        for t in threads:
            t.start()
        # One replica dies mid-load without a chance to clean up.
        while len(acked_metrics) < 60:
            time.sleep(0.01)
        acked_before_kill = len(acked_metrics)
        os.killpg(servers[2].proc.pid, signal.SIGKILL)
        servers[2].proc.wait(timeout=10)
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors[:5]
        # Writers went on after the kill, through the two replicas left.
        assert len(acked_metrics) > acked_before_kill + 100, (acked_before_kill, len(acked_metrics))
        print(f"replicas: {acked_before_kill} points acknowledged before the kill, {len(acked_metrics)} in all")
        survivor = servers[0]
        # Every acknowledged point is there, read through another replica.
        by_run: dict[str, set[int]] = {}
        for run_id, step in acked_metrics:
            by_run.setdefault(run_id, set()).add(step)
        for run_id, steps in by_run.items():
            r = requests.get(f"{survivor}{A}/metrics/get-history", params={"run_id": run_id, "metric_key": "m"}, timeout=30)
            assert r.status_code == 200, r.text
            stored = {int(m["step"]) for m in r.json().get("metrics", [])}
            assert steps <= stored, f"run {run_id}: acknowledged steps missing: {sorted(steps - stored)[:10]}"
        # Ids were handed out once.
        assert len(acked_experiments) == len(set(acked_experiments))
        r = post(survivor, f"{A}/experiments/search", {"max_results": 1000})
        ids = [e["experiment_id"] for e in r.json()["experiments"]]
        assert len(ids) == len(set(ids)) and set(acked_experiments) <= set(ids)
        # One audit chain, intact, written by all three.
        v = requests.get(f"{servers[1]}{G}/audit/verify", timeout=60).json()
        assert v.get("ok") is True, v
        # And offline, straight from the database, with the servers' key.
        offline = subprocess.run([REPRISE_BIN, "audit", "verify", "--backend-store-uri", uri, "--json"], capture_output=True, text=True,
                                 timeout=120, env={**os.environ, **SECRET}, cwd=str(tmp_path))
        assert offline.returncode == 0 and json.loads(offline.stdout)["ok"] is True, offline.stdout + offline.stderr
    finally:
        stop.set()
        for s in servers[:2]:
            stop_server(s)


def test_an_approval_rule_counts_each_approver_once_across_replicas(tmp_path):
    uri = _backend_store_uri(tmp_path / "shared")
    servers = [start_server(tmp_path / f"r{i}", backend_store_uri=uri, env_extra=SECRET) for i in range(3)]
    try:
        a = servers[0]
        run = post(a, f"{A}/runs/create", {"experiment_id": "0"}).json()["run"]["info"]["run_id"]
        assert post(a, f"{A}/registered-models/create", {"name": "shared"}).status_code == 200
        for _ in range(2):
            r = post(a, f"{A}/model-versions/create", {"name": "shared", "source": f"runs:/{run}/model", "run_id": run})
            assert r.status_code == 200, r.text
        r = requests.put(f"{a}{G}/alias-policies", json={"model": "shared", "alias": "production", "required_approvals": 2,
                                                          "approvers": ["ann", "ben", "cai"]}, timeout=30)
        assert r.status_code == 200, r.text
        # Moving the alias opens a request (MLflow's client sees PERMISSION_DENIED naming it).
        r = requests.post(f"{servers[1]}{A}/registered-models/alias", json={"name": "shared", "alias": "production", "version": "2"},
                          headers={"X-Reprise-Actor": "dev"}, timeout=30)
        assert r.status_code == 403, r.text
        match = re.search(r"Approval request (req-[0-9a-f]+) was opened", r.json()["message"])
        assert match, r.text
        request_id = match.group(1)
        # The same approver votes on all three replicas at once: one vote counts.
        results = []

        def vote(s):
            results.append(requests.post(f"{s}{G}/approval-requests/{request_id}/approve", json={"rationale": "ok"},
                                         headers={"X-Reprise-Actor": "ann"}, timeout=30))
        threads = [threading.Thread(target=vote, args=(s,)) for s in servers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(r.status_code for r in results) == [200, 400, 400], [(r.status_code, r.text[:120]) for r in results]
        state = requests.get(f"{servers[2]}{G}/approval-requests/{request_id}", timeout=30).json()["approval_request"]
        assert state["state"] == "open" and len(state["votes"]) == 1, state
        r = requests.post(f"{servers[2]}{G}/approval-requests/{request_id}/approve", json={"rationale": "ok"},
                          headers={"X-Reprise-Actor": "ben"}, timeout=30)
        assert r.status_code == 200 and r.json()["approval_request"]["state"] == "approved", r.text
        alias = requests.get(f"{servers[0]}{A}/registered-models/alias", params={"name": "shared", "alias": "production"}, timeout=30)
        assert alias.json()["model_version"]["version"] == "2"
    finally:
        for s in servers:
            stop_server(s)


def test_an_unreachable_database_stops_start_up_with_a_clear_error(tmp_path):
    r = subprocess.run(
        [REPRISE_BIN, "server", "--port", "0", "--backend-store-uri", "postgresql://someone:hunter2-secret@127.0.0.1:1/reprise"],
        capture_output=True, text=True, timeout=60, cwd=str(tmp_path), env={**os.environ, "REPRISE_DB_CONNECT_TIMEOUT_S": "2"})
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert "Cannot reach or prepare the PostgreSQL database postgresql://someone:***@127.0.0.1:1/reprise" in out, out[-800:]
    assert "hunter2-secret" not in out


def test_each_webhook_event_is_delivered_once_across_replicas(tmp_path):
    """Every replica runs a delivery worker over the one outbox; each event goes out exactly once,
    whichever replica wrote it and whichever claims it."""
    from test_webhooks import Receiver

    uri = _backend_store_uri(tmp_path / "shared")
    servers = [start_server(tmp_path / f"r{i}", backend_store_uri=uri, env_extra=SECRET) for i in range(3)]
    receiver = Receiver()
    try:
        r = post(servers[0], f"{A}/webhooks", {"name": "replicas", "url": receiver.url("/ok/replicas"),
                                               "events": [{"entity": "registered_model", "action": "created"}]})
        assert r.status_code == 200, r.text
        names = [f"hooked-{i}" for i in range(36)]
        failures = []

        def create(i: int):
            r = post(servers[i % 3], f"{A}/registered-models/create", {"name": names[i]})
            if r.status_code != 200:
                failures.append((r.status_code, r.text[:200]))
        threads = [threading.Thread(target=create, args=(i,)) for i in range(len(names))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not failures, failures[:3]
        got = receiver.wait_for("/ok/replicas", len(names), timeout=60)
        time.sleep(3)  # long enough for a second claim of any event to arrive (workers poll every 0.25 s)
        got = receiver.received("/ok/replicas")
        ids = [d["headers"]["x-mlflow-delivery-id"] for d in got]
        delivered = sorted(json.loads(d["body"])["data"]["name"] for d in got)
        assert len(ids) == len(set(ids)) == len(names), (len(ids), len(set(ids)))
        assert delivered == sorted(names)
    finally:
        receiver.close()
        for s in servers:
            stop_server(s)
