"""Governance beside the MLflow protocol (Reprise only): protected aliases behind approvals,
rollback, sealed runs, and the tamper-evident audit trail, through the stock client, raw HTTP and
the `reprise` CLI."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import uuid

import numpy as np
import pytest
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import mlflow
import mlflow.pyfunc
import mlflow.sklearn
from conftest import REPRISE_BIN, sqlite_file_only, start_server, stop_server

pytestmark = pytest.mark.reprise_only

G = "/api/reprise/v1"


def as_actor(base: str, actor: str) -> requests.Session:
    s = requests.Session()
    s.headers["X-Reprise-Actor"] = actor
    s.base = base.rstrip("/")
    return s


def post(s, path, body):
    return s.post(s.base + path, json=body, timeout=30)


def cli(*args, check=True):
    r = subprocess.run([REPRISE_BIN, *args], capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        raise AssertionError(f"reprise {' '.join(args)} failed ({r.returncode}): {r.stdout}\n{r.stderr}")
    return r


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


def register_two_versions(name, iris):
    X, y = iris
    models = []
    for c in (0.01, 10.0):
        m = LogisticRegression(C=c, max_iter=500).fit(X, y)
        with mlflow.start_run():
            mlflow.log_metric("accuracy", float(m.score(X, y)))
            mlflow.sklearn.log_model(m, name="model", registered_model_name=name)
        models.append(m)
    return models


def test_protected_alias_moves_only_with_n_of_m_approvals(server, experiment, iris):
    name = f"fraud-{uuid.uuid4().hex[:8]}"
    m1, m2 = register_two_versions(name, iris)
    client = MlflowClient(server)
    client.set_registered_model_alias(name, "production", "1")  # not protected yet: moves
    admin = as_actor(server, "admin")
    r = admin.put(admin.base + f"{G}/alias-policies", json={
        "model": name, "alias": "production", "required_approvals": 2, "approvers": ["alice", "bob", "carol"]}, timeout=30)
    assert r.status_code == 200, r.text

    # The stock client cannot move it: it gets a clear error naming the request that was opened.
    with pytest.raises(MlflowException) as e:
        client.set_registered_model_alias(name, "production", "2")
    assert e.value.error_code == "PERMISSION_DENIED"
    match = re.search(r"Approval request (req-[0-9a-f]+) was opened", str(e.value))
    assert match, str(e.value)
    req = match.group(1)
    assert client.get_model_version_by_alias(name, "production").version == "1"

    r = admin.get(admin.base + f"{G}/approval-requests/{req}", timeout=30)
    body = r.json()["approval_request"]
    assert body["state"] == "open" and body["target_version"] == "2" and body["previous_version"] == "1"
    assert body["requester"] == "anonymous"

    # Not an approver, missing rationale: refused. One approval is not enough.
    r = post(as_actor(server, "mallory"), f"{G}/approval-requests/{req}/approve", {"rationale": "lgtm"})
    assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED"
    r = post(as_actor(server, "alice"), f"{G}/approval-requests/{req}/approve", {})
    assert r.status_code == 400
    r = post(as_actor(server, "alice"), f"{G}/approval-requests/{req}/approve", {"rationale": "accuracy up"})
    assert r.status_code == 200 and r.json()["approval_request"]["state"] == "open"
    assert client.get_model_version_by_alias(name, "production").version == "1"
    r = post(as_actor(server, "bob"), f"{G}/approval-requests/{req}/approve", {"rationale": "checked the eval"})
    assert r.json()["approval_request"]["state"] == "approved", r.text
    assert client.get_model_version_by_alias(name, "production").version == "2"

    # `models:/name@production` now loads version 2.
    X, _ = iris
    loaded = mlflow.pyfunc.load_model(f"models:/{name}@production")
    assert np.array_equal(loaded.predict(X), m2.predict(X))
    assert not np.array_equal(m1.predict_proba(X), m2.predict_proba(X))


def test_self_approval_reject_cancel_and_rollback(server, experiment, iris):
    name = f"churn-{uuid.uuid4().hex[:8]}"
    register_two_versions(name, iris)
    admin = as_actor(server, "admin")
    admin.put(admin.base + f"{G}/alias-policies", json={"model": name, "alias": "prod"}, timeout=30).raise_for_status()
    dave = as_actor(server, "dave")
    r = post(dave, f"{G}/approval-requests", {"model": name, "alias": "prod", "version": "1", "rationale": "first release"})
    assert r.status_code == 202, r.text
    req = r.json()["approval_request"]["id"]
    r = post(dave, f"{G}/approval-requests/{req}/approve", {"rationale": "mine"})
    assert r.status_code == 403 and "Self-approval" in r.json()["message"]
    r = post(as_actor(server, "erin"), f"{G}/approval-requests/{req}/approve", {"rationale": "ok"})
    assert r.json()["approval_request"]["state"] == "approved"

    # A rejected request changes nothing.
    r = post(dave, f"{G}/approval-requests", {"model": name, "alias": "prod", "version": "2", "rationale": "new"})
    req2 = r.json()["approval_request"]["id"]
    r = post(as_actor(server, "erin"), f"{G}/approval-requests/{req2}/reject", {"rationale": "not evaluated"})
    assert r.json()["approval_request"]["state"] == "rejected"
    client = MlflowClient(server)
    assert client.get_model_version_by_alias(name, "prod").version == "1"
    r = post(as_actor(server, "erin"), f"{G}/approval-requests/{req2}/approve", {"rationale": "changed my mind"})
    assert r.status_code == 400

    # Cancel, then move by approval and roll back (the rollback needs approval too).
    r = post(dave, f"{G}/approval-requests", {"model": name, "alias": "prod", "version": "2", "rationale": "retry"})
    req3 = r.json()["approval_request"]["id"]
    assert post(dave, f"{G}/approval-requests/{req3}/cancel", {"rationale": "oops"}).json()["approval_request"]["state"] == "cancelled"
    r = post(dave, f"{G}/approval-requests", {"model": name, "alias": "prod", "version": "2", "rationale": "for real"})
    post(as_actor(server, "erin"), f"{G}/approval-requests/{r.json()['approval_request']['id']}/approve", {"rationale": "ok"})
    assert client.get_model_version_by_alias(name, "prod").version == "2"
    r = post(dave, f"{G}/aliases/rollback", {"model": name, "alias": "prod", "rationale": "latency regression"})
    assert r.status_code == 202, r.text
    rb = r.json()["approval_request"]
    assert rb["kind"] == "rollback" and rb["target_version"] == "1"
    post(as_actor(server, "erin"), f"{G}/approval-requests/{rb['id']}/approve", {"rationale": "confirmed"})
    assert client.get_model_version_by_alias(name, "prod").version == "1"
    hist = admin.get(admin.base + f"{G}/aliases/history", params={"model": name, "alias": "prod"}, timeout=30).json()["history"]
    assert [h["version"] for h in hist] == ["1", "2", "1"]
    # A protected alias and the version it points at cannot be deleted.
    with pytest.raises(MlflowException) as e:
        client.delete_registered_model_alias(name, "prod")
    assert e.value.error_code == "PERMISSION_DENIED"
    with pytest.raises(MlflowException) as e:
        client.delete_model_version(name, "1")
    assert e.value.error_code == "PERMISSION_DENIED"


def test_sealed_run_refuses_writes_from_the_stock_client(server, experiment, iris):
    X, y = iris
    name = f"sealed-{uuid.uuid4().hex[:8]}"
    with mlflow.start_run() as run:
        mlflow.log_param("C", 1.0)
        mlflow.sklearn.log_model(LogisticRegression(max_iter=300).fit(X, y), name="model", registered_model_name=name)
        mlflow.log_metric("after_registering", 1.0)  # still running: allowed
    client = MlflowClient(server)
    rid = run.info.run_id
    for attempt in (lambda: client.log_metric(rid, "late", 2.0),
                    lambda: client.log_param(rid, "D", "2"),
                    lambda: client.set_tag(rid, "team", "x"),
                    lambda: client.delete_run(rid)):
        with pytest.raises(MlflowException) as e:
            attempt()
        assert e.value.error_code == "PERMISSION_DENIED"
        assert "sealed" in str(e.value)
    client.set_tag(rid, "mlflow.note.content", "why this run matters")
    assert client.get_run(rid).data.tags["mlflow.note.content"] == "why this run matters"
    assert "late" not in client.get_run(rid).data.metrics


def test_cli_protect_request_approve_and_history(server, experiment, iris):
    name = f"cli-{uuid.uuid4().hex[:8]}"
    register_two_versions(name, iris)
    base = ["--tracking-uri", server]
    out = cli("models", "protect", name, "production", "--approvals", "1", "--approver", "alice", *base, "--actor", "admin").stdout
    assert "protected" in out
    out = cli("models", "request", name, "production", "2", "-r", "better accuracy", *base, "--actor", "dave").stdout
    req = re.search(r"(req-[0-9a-f]+)", out).group(1)
    denied = cli("models", "approve", req, "-r", "self", *base, "--actor", "dave", check=False)
    assert denied.returncode != 0 and "Self-approval" in denied.stderr
    out = cli("models", "approve", req, "-r", "reviewed", *base, "--actor", "alice").stdout
    assert "approved" in out and "moved to version 2" in out
    assert MlflowClient(server).get_model_version_by_alias(name, "production").version == "2"
    hist = cli("models", "history", name, *base).stdout
    assert "alias.move" in hist and "alice" in hist and "model_version.create" in hist
    lines = [json.loads(l) for l in cli("models", "history", name, "--json", *base).stdout.splitlines()]
    # JSON Lines: the audit events, then one {"approval_request": …} line per request.
    requests_ = [l["approval_request"] for l in lines if "approval_request" in l]
    assert [r["id"] for r in requests_] == [req] and requests_[0]["votes"][0]["approver"] == "alice"
    moves = [e for e in lines if e.get("action") == "alias.move"]
    assert moves[-1]["actor"] == "alice" and moves[-1]["summary"]["after"] == "2"
    assert moves[-1]["summary"]["approval_request"] == req


def _audited_run(url, experiment_name):
    """Seven audited events on a fresh server: an experiment, a run and five param writes."""
    s = as_actor(url, "auditor-test")
    exp = post(s, "/api/2.0/mlflow/experiments/create", {"name": experiment_name}).json()["experiment_id"]
    run = post(s, "/api/2.0/mlflow/runs/create", {"experiment_id": exp, "start_time": 1}).json()["run"]["info"]["run_id"]
    for i in range(5):
        r = post(s, "/api/2.0/mlflow/runs/log-parameter", {"run_id": run, "key": f"p{i}", "value": str(i)})
        assert r.status_code == 200
    return s, run


@sqlite_file_only
def test_audit_chain_verifies_and_tampering_is_pinpointed(fresh_server, tmp_path):
    url = fresh_server
    s, run = _audited_run(url, "audited")
    ok = cli("audit", "verify", "--tracking-uri", url)
    assert "intact" in ok.stdout and "7 events" in ok.stdout, ok.stdout
    events = s.get(url + f"{G}/audit/events", params={"entity_id": run}, timeout=30).json()["events"]
    assert [e["action"] for e in events] == ["run.create"] + ["run.log"] * 5
    assert all(e["actor"] == "auditor-test" and e["authenticated"] is False for e in events)

    # Export as JSON Lines.
    out = tmp_path / "audit.jsonl"
    cli("audit", "export", "--tracking-uri", url, "-o", str(out))
    lines = [json.loads(l) for l in out.read_text().splitlines()]
    exported, last = lines[:-1], lines[-1]
    assert [e["seq"] for e in exported] == list(range(1, 8))
    # The export ends with a signed checkpoint of the head.
    assert last["checkpoint"]["seq"] == 7 and last["checkpoint"]["hash"] == exported[-1]["hash"]
    assert len(last["checkpoint"]["signature"]) == 64

    db = url.tmp / "reprise.db"
    con = sqlite3.connect(db)
    con.execute("UPDATE audit_events SET actor = 'mallory' WHERE seq = 4")
    con.commit()
    bad = cli("audit", "verify", "--tracking-uri", url, check=False)
    assert bad.returncode == 1 and "event 4" in bad.stdout and "altered" in bad.stdout, bad.stdout
    offline = cli("audit", "verify", "--backend-store-uri", f"sqlite:///{db}", "--json", check=False)
    assert offline.returncode == 1 and json.loads(offline.stdout)["first_bad_seq"] == 4
    con.execute("UPDATE audit_events SET actor = 'auditor-test' WHERE seq = 4")
    con.execute("DELETE FROM audit_events WHERE seq = 6")
    con.commit()
    con.close()
    bad = cli("audit", "verify", "--tracking-uri", url, check=False)
    assert bad.returncode == 1 and "event 6" in bad.stdout and "missing" in bad.stdout, bad.stdout


def _plain_rechain(con):
    """What an attacker without the server key can do: recompute a plain SHA-256 chain."""
    import hashlib

    prev = ""
    rows = con.execute(
        "SELECT seq, time, actor, authenticated, action, entity_type, entity_id, summary, request_id FROM audit_events ORDER BY seq"
    ).fetchall()
    for seq, t, actor, auth, action, et, eid, summary, rid in rows:
        canonical = json.dumps([seq, t, actor, bool(auth), action, et, eid, summary, rid, prev], separators=(",", ":"))
        h = hashlib.sha256(canonical.encode()).hexdigest()
        con.execute("UPDATE audit_events SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, h, seq))
        prev = h
    con.commit()


@sqlite_file_only
def test_audit_truncation_and_recomputed_chains_are_detected(fresh_server, tmp_path):
    url = fresh_server
    _audited_run(url, "audited-2")
    out = tmp_path / "audit.jsonl"
    cli("audit", "export", "--tracking-uri", url, "-o", str(out))  # ends with a signed checkpoint of event 7
    assert "intact" in cli("audit", "verify", "--tracking-uri", url, "--checkpoints", str(out)).stdout

    db = url.tmp / "reprise.db"
    con = sqlite3.connect(db)
    # Cut the 3 newest events: the chain that is left is internally sound...
    con.execute("DELETE FROM audit_events WHERE seq > 4")
    con.commit()
    # ...but the server's checkpoint file and the export's checkpoint both show event 7 existed.
    bad = cli("audit", "verify", "--tracking-uri", url, check=False)
    assert bad.returncode == 1 and "cut from the end" in bad.stdout, bad.stdout
    (url.tmp / "reprise.db.audit-head").unlink()
    bad = cli("audit", "verify", "--tracking-uri", url, "--checkpoints", str(out), check=False)
    assert bad.returncode == 1 and "cut from the end" in bad.stdout, bad.stdout

    # Rewrite an actor and recompute a plain SHA-256 chain: the keyed hash no longer matches.
    con.execute("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2")
    con.commit()
    _plain_rechain(con)
    con.close()
    bad = cli("audit", "verify", "--tracking-uri", url, check=False)
    assert bad.returncode == 1 and "event 1" in bad.stdout and "keyed hash" in bad.stdout, bad.stdout

    # Deleting the "already keyed" marker does not get the recomputed chain re-keyed on restart:
    # the keyed checkpoints outside the database (the export's, written back) say it was keyed.
    (url.tmp / "reprise.db.audit-head").write_text(out.read_text().splitlines()[-1] + "\n")
    con = sqlite3.connect(db)
    con.execute("DELETE FROM reprise_meta WHERE key = 'audit_chain'")
    con.commit()
    con.close()
    stop_server(url)
    url2 = start_server(url.tmp)
    try:
        bad = cli("audit", "verify", "--tracking-uri", url2, check=False)
        assert bad.returncode == 1 and "keyed hash" in bad.stdout, bad.stdout
    finally:
        stop_server(url2)


def test_openapi_document_describes_the_extension_api(server):
    r = requests.get(server + f"{G}/openapi.json", timeout=30)
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.")
    for path in ("/api/reprise/v1/approval-requests", "/api/reprise/v1/audit/verify", "/api/reprise/v1/aliases/rollback"):
        assert path in doc["paths"]


def test_prompt_aliases_are_protected_like_model_aliases(server):
    # A prompt is a registered model to governance: a policy on its alias holds for set_prompt_alias,
    # and load_prompt(...@production) follows only an approved move.
    name = f"support-bot-{uuid.uuid4().hex[:6]}"
    mlflow.genai.register_prompt(name=name, template="Answer: {{q}}")
    mlflow.genai.register_prompt(name=name, template="Answer politely: {{q}}")
    mlflow.genai.set_prompt_alias(name, alias="production", version=1)
    admin = as_actor(server, "admin")
    r = admin.put(admin.base + f"{G}/alias-policies", json={
        "model": name, "alias": "production", "required_approvals": 1, "approvers": ["carol"]}, timeout=30)
    assert r.status_code == 200, r.text
    with pytest.raises(MlflowException) as e:
        mlflow.genai.set_prompt_alias(name, alias="production", version=2)
    assert e.value.error_code == "PERMISSION_DENIED"
    req = re.search(r"Approval request (req-[0-9a-f]+) was opened", str(e.value)).group(1)
    assert mlflow.genai.load_prompt(f"prompts:/{name}@production").version == 1
    r = post(as_actor(server, "carol"), f"{G}/approval-requests/{req}/approve", {"rationale": "eval is better"})
    assert r.json()["approval_request"]["state"] == "approved", r.text
    # (load_prompt caches an alias for a minute, so ask the registry.)
    r = admin.get(admin.base + "/api/2.0/mlflow/registered-models/alias", params={"name": name, "alias": "production"}, timeout=30)
    assert r.json()["model_version"]["version"] == "2", r.text
    assert mlflow.genai.load_prompt(f"prompts:/{name}/2").template == "Answer politely: {{q}}"
    history = admin.get(admin.base + f"{G}/aliases/history", params={"model": name, "alias": "production"}, timeout=30)
    assert history.status_code == 200, history.text
    assert [str(h["version"]) for h in history.json()["history"]][:2] in (["2", "1"], ["1", "2"])


def test_prompt_alias_moves_need_an_evaluation_not_worse(server):
    # `reprise models protect … --evaluation-metric accuracy:0.02`: a move of the alias needs a run that
    # evaluated the new version (the client tags a run with mlflow.linkedPrompts when the prompt is
    # loaded inside it) whose accuracy is not worse than the current version's evaluation by more than 0.02.
    name = f"triage-{uuid.uuid4().hex[:6]}"
    mlflow.genai.register_prompt(name=name, template="Classify: {{ticket}}")
    mlflow.genai.register_prompt(name=name, template="Classify the ticket by urgency: {{ticket}}")
    mlflow.genai.set_prompt_alias(name, alias="production", version=1)

    def evaluate(version, accuracy):
        with mlflow.start_run() as run:
            mlflow.genai.load_prompt(f"prompts:/{name}/{version}")
            mlflow.log_metric("accuracy", accuracy)
        return run.info.run_id

    baseline = evaluate(1, 0.80)
    out = cli("models", "protect", name, "production", "--approver", "carol", "--evaluation-metric", "accuracy:0.02",
              "--tracking-uri", server).stdout
    assert "is protected" in out, out
    with pytest.raises(MlflowException) as e:
        mlflow.genai.set_prompt_alias(name, alias="production", version=2)
    req = re.search(r"Approval request (req-[0-9a-f]+) was opened", str(e.value)).group(1)
    carol = as_actor(server, "carol")

    r = post(carol, f"{G}/approval-requests/{req}/approve", {"rationale": "looks fine"})
    assert r.status_code == 400 and "no run evaluated version 2" in r.json()["message"], r.text
    worse = evaluate(2, 0.70)
    r = post(carol, f"{G}/approval-requests/{req}/approve", {"rationale": "looks fine"})
    assert r.status_code == 400, r.text
    assert f"'accuracy' is 0.7 for version 2 (run {worse}) against 0.8" in r.json()["message"], r.text
    assert baseline in r.json()["message"]
    evaluate(2, 0.79)  # the newest evaluation counts: within the margin
    r = post(carol, f"{G}/approval-requests/{req}/approve", {"rationale": "eval within margin"})
    assert r.json()["approval_request"]["state"] == "approved", r.text
    r = carol.get(carol.base + "/api/2.0/mlflow/registered-models/alias", params={"name": name, "alias": "production"}, timeout=30)
    assert r.json()["model_version"]["version"] == "2", r.text

    # History and the request list show the approval: who asked, who voted, when (issue 14).
    history = cli("models", "history", name, "--tracking-uri", server).stdout
    assert "Approval requests (1):" in history and f"{req}  approved" in history, history
    assert re.search(r"by carol at \d{4}-\d\d-\d\dT", history) and "eval within margin" in history, history
    listed = cli("models", "requests", name, "--tracking-uri", server).stdout
    assert req in listed and "requested by" in listed, listed
    assert cli("models", "requests", name, "--model", "other", "--tracking-uri", server, check=False).returncode != 0

    # The evaluation runs are on the prompt version's lineage, and the version on theirs.
    lineage = carol.get(carol.base + f"{G}/lineage", params={"entity": f"model_version:{name}/2", "depth": 1}, timeout=30)
    assert lineage.status_code == 200, lineage.text
    runs = {n["id"] for n in lineage.json()["lineage"]["nodes"] if n["type"] == "run"}
    assert worse in runs, lineage.json()
    cli_out = cli("lineage", f"run:{baseline}", "--tracking-uri", server).stdout
    assert f"{name} v1" in cli_out, cli_out


def test_metric_points_are_summarized_when_the_run_ends(server):
    # The audit trail is for who changed what. 2,000 log_metric calls while the run goes are its
    # output, recorded once when it ends (points per key and a digest of the final values); a point
    # added to an ended run is a change and gets its own event.
    s = as_actor(server, "trainer")
    client = MlflowClient(server)
    exp = client.create_experiment(f"audit-volume-{uuid.uuid4().hex[:6]}")
    run = client.create_run(exp).info.run_id
    for step in range(1000):
        client.log_metric(run, "loss", 1.0 / (step + 1), step=step)
        client.log_metric(run, "acc", step / 1000, step=step)
    events = s.get(s.base + f"{G}/audit/events", params={"entity_id": run}, timeout=30).json()["events"]
    assert [e["action"] for e in events] == ["run.create"], [e["action"] for e in events][:5]
    client.set_terminated(run)
    events = s.get(s.base + f"{G}/audit/events", params={"entity_id": run}, timeout=30).json()["events"]
    assert [e["action"] for e in events] == ["run.create", "run.metrics", "run.update"], events
    summary = events[1]["summary"]
    assert summary["points"] == 2000 and summary["keys"] == 2 and summary["per_key"] == {"acc": 1000, "loss": 1000}
    assert re.fullmatch(r"[0-9a-f]{64}", summary["digest"])
    client.log_metric(run, "acc", 0.99, step=1000)
    events = s.get(s.base + f"{G}/audit/events", params={"entity_id": run}, timeout=30).json()["events"]
    assert [e["action"] for e in events][-1] == "run.log" and events[-1]["summary"]["metric_keys"] == ["acc"], events[-1]
    ok = cli("audit", "verify", "--tracking-uri", server)
    assert ok.returncode == 0 and "intact" in ok.stdout, ok.stdout
