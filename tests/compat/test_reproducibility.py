"""Reproducibility end to end (Reprise only): `reprise run` captures the passport of a small
deterministic training script that uses the stock mlflow client, in a temporary git repository;
policies refuse incomplete runs; `reprise reproduce` judges reruns; the run book script reproduces
from a fresh clone; `reprise diff` shows exactly what changed; duplicates are detected; lineage
walks from the alias back to the data."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

import mlflow
from conftest import REPRISE_BIN

pytestmark = pytest.mark.reprise_only

TRAIN = r'''
import os, sys, time
import numpy as np
import mlflow
from sklearn.linear_model import LogisticRegression
sys.path.insert(0, os.environ.get("HELPERS", "."))
import helper  # code outside the repository when HELPERS points elsewhere

seed = int(os.environ["REPRISE_SEED"]) + int(os.environ.get("SEED_OFFSET", "0"))
C = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
parts = [np.loadtxt(os.path.join("data", f), delimiter=",") for f in sorted(os.listdir("data"))]
data = np.vstack(parts)
X, y = data[:, :-1], data[:, -1]
rng = np.random.default_rng(seed)
idx = rng.permutation(len(X))
X, y = X[idx], y[idx]
with mlflow.start_run():
    mlflow.log_param("C", C)
    model = LogisticRegression(C=C * helper.SCALE, max_iter=1000).fit(X[:150], y[:150])
    acc = model.score(X[150:], y[150:])
    mlflow.log_metric("accuracy", acc)
    mlflow.log_metric("score", acc + rng.random() * 0.01)
    print(f"accuracy={acc:.4f}", flush=True)
    time.sleep(float(os.environ.get("TRAIN_SLEEP", "0")))
'''


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    import numpy as np

    root = tmp_path_factory.mktemp("project")
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "ds@example.com")
    git(root, "config", "user.name", "Data Scientist")
    (root / "data").mkdir()
    rng = np.random.default_rng(0)
    for part in range(3):
        X = rng.normal(size=(70, 4))
        y = (X @ [1.0, -2.0, 0.5, 1.0] + rng.normal(scale=0.8, size=70) > 0).astype(int)
        np.savetxt(root / "data" / f"part-{part}.csv", np.c_[X, y], delimiter=",", fmt="%.6f")
    (root / "train.py").write_text(TRAIN)
    (root / "helper.py").write_text("SCALE = 1.0\n")
    (root / ".gitignore").write_text("data/\n")
    (root / "requirements.txt").write_text("scikit-learn\nnumpy\nmlflow\n")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "initial model")
    return root


def reprise(server, cwd, *args, env=None, check=None, timeout=300):
    e = dict(os.environ)
    e["MLFLOW_TRACKING_URI"] = server
    e["REPRISE_ACTOR"] = "alice"
    e.pop("MLFLOW_RUN_ID", None)
    if env:
        e.update(env)
    p = subprocess.run([REPRISE_BIN, *args], cwd=cwd, env=e, capture_output=True, text=True, timeout=timeout)
    if check is not None:
        assert p.returncode == check, f"exit {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    return p


def run_id_of(p) -> str:
    return run_id_in(p.stderr)


def run_id_in(stderr: str) -> str:
    for line in stderr.splitlines():
        if line.startswith("reprise: run ") and " in experiment " in line:
            return line.split()[2]
    raise AssertionError(f"no run id in output:\n{stderr}")


def tags_of(client, run_id) -> dict:
    return client.get_run(run_id).data.tags


def train(server, repo, experiment, *extra, args=("1.0",), env=None, check=0):
    return reprise(
        server, repo, "run", "--experiment", experiment, "--data", "data", "--seed", "11", "--purpose", "weekly retrain",
        "--tolerance", "accuracy=abs:0.001", "--sample-interval", "0.3", *extra, "--", sys.executable, "train.py", *args,
        env={"TRAIN_SLEEP": "1.0", **(env or {})}, check=check,
    )


def test_capture_reproduce_drift_diverge_runbook_diff(server, repo, tmp_path):
    client = MlflowClient(server)
    exp = f"repro-{uuid.uuid4().hex[:8]}"

    # 1. Capture.
    p = train(server, repo, exp)
    assert "accuracy=" in p.stdout, "the command's output is streamed"
    assert "hashed data" in p.stderr
    original = run_id_of(p)
    run = client.get_run(original)
    t = run.data.tags
    assert run.info.status == "FINISHED"
    assert t["reprise.code.commit"] == git(repo, "rev-parse", "HEAD") == t["mlflow.source.git.commit"]
    assert t["reprise.code.branch"] == "main" and t["reprise.code.dirty"] == "false"
    assert t["reprise.seed"] == "11" and t["reprise.purpose"] == "weekly retrain" and t["reprise.owner"] == "alice"
    assert json.loads(t["reprise.command"]) == [sys.executable, "train.py", "1.0"]
    assert t["reprise.exit_status"] == "0" and int(t["reprise.duration_ms"]) >= 1000
    assert "requirements.txt" in t["reprise.env.lock_files"] and "pip-freeze.txt" in t["reprise.env.lock_files"]
    assert t["reprise.env.python"].startswith("CPython 3.") and t["reprise.env.kernel"].startswith("Linux")
    inputs = json.loads(t["reprise.data.inputs"])
    assert [(i["path"], i["files"]) for i in inputs] == [("data", 3)] and len(inputs[0]["digest"]) == 64
    assert run.data.params == {"C": "1.0"} and "accuracy" in run.data.metrics
    assert any(k.startswith("system/cpu_utilization") for k in run.data.metrics), run.data.metrics
    assert run.inputs.dataset_inputs[0].dataset.name == "data"
    artifacts = {f.path for f in client.list_artifacts(original, "reprise")}
    assert {"reprise/passport.json", "reprise/environment.json", "reprise/output.log", "reprise/data", "reprise/env"} <= artifacts
    manifest = Path(client.download_artifacts(original, "reprise/data/data.manifest.txt", str(tmp_path))).read_text()
    assert manifest.splitlines()[0] == "reprise-manifest-v1" and [l.split("  ")[2] for l in manifest.splitlines()[1:]] == [
        "part-0.csv", "part-1.csv", "part-2.csv"]
    assert "accuracy=" in Path(client.download_artifacts(original, "reprise/output.log", str(tmp_path))).read_text()

    # 2. Reproduce: same commit, data, seed -> REPRODUCED, stored on both runs.
    p = reprise(server, repo, "reproduce", original, "--sample-interval", "0", check=0)
    assert "verdict: REPRODUCED" in p.stdout, p.stdout
    assert "data: data matches" in p.stdout
    rerun = p.stdout.split("rerun: ")[1].split()[0]
    assert tags_of(client, original)["reprise.reproduction.verdict"] == "REPRODUCED"
    assert tags_of(client, rerun)["reprise.reproduction.of"] == original
    assert tags_of(client, rerun)["reprise.reproduces"] == original

    # 3. One changed byte in one data file: INCOMPLETE, naming the file; nothing is rerun.
    part1 = repo / "data" / "part-1.csv"
    saved = part1.read_bytes()
    part1.write_bytes(saved.replace(b"1", b"2", 1))
    try:
        runs_before = len(client.search_runs([run.info.experiment_id]))
        p = reprise(server, repo, "reproduce", original, check=2)
        assert "DRIFTED" in p.stdout and "changed: part-1.csv" in p.stdout, p.stdout
        assert "verdict: INCOMPLETE" in p.stdout and "--allow-data-drift" in p.stdout
        assert len(client.search_runs([run.info.experiment_id])) == runs_before
        assert tags_of(client, original)["reprise.reproduction.verdict"] == "INCOMPLETE"
    finally:
        part1.write_bytes(saved)

    # 4a. A seed source outside the passport changed: DIVERGED, with the delta of `score`.
    p = train(server, repo, exp, "--tolerance", "score=abs:0", env={"SEED_OFFSET": "5"}, args=("0.5",))
    shifted = run_id_of(p)
    p = reprise(server, repo, "reproduce", shifted, "--sample-interval", "0", check=1)
    assert "verdict: DIVERGED" in p.stdout and "metric score:" in p.stdout and "OUTSIDE" in p.stdout, p.stdout
    details = client.get_run(shifted).data.tags["reprise.reproduction.summary"]
    assert "score" in details and "delta" in details

    # 4b. Code outside the repository changed between run and rerun: DIVERGED on accuracy.
    helpers = tmp_path / "helpers"
    helpers.mkdir()
    (helpers / "helper.py").write_text("SCALE = 1.0\n")
    p = train(server, repo, exp, args=("1.0",), env={"HELPERS": str(helpers)}, check=0)
    outside = run_id_of(p)
    (helpers / "helper.py").write_text("SCALE = 0.00001\n")
    p = reprise(server, repo, "reproduce", outside, "--sample-interval", "0", env={"HELPERS": str(helpers)}, check=1)
    assert "verdict: DIVERGED" in p.stdout and "accuracy" in p.stdout.split("verdict:")[1], p.stdout

    # 5. The run book's script reproduces from a fresh clone.
    book = tmp_path / "book"
    reprise(server, repo, "runbook", original, "-o", str(book), check=0)
    md = (book / "runbook.md").read_text()
    for expected in ["weekly retrain", t["reprise.code.commit"], inputs[0]["digest"], "accuracy=abs:0.001", "REPRODUCED"]:
        assert expected in md, expected
    reprise(server, repo, "runbook", original, "-o", str(book), "--format", "html", check=0)
    assert "<h2>Seeds</h2>" in (book / "runbook.html").read_text()
    fresh = tmp_path / "fresh-clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(fresh)], check=True)
    e = dict(os.environ, MLFLOW_TRACKING_URI=server, REPRISE=REPRISE_BIN)
    p = subprocess.run([str(book / "reproduce.sh"), "--sample-interval", "0"], cwd=fresh, env=e, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0 and "verdict: REPRODUCED" in p.stdout, p.stdout + p.stderr

    # 6. diff shows exactly what changed: a commit, one data file, a param and the seed.
    (repo / "train.py").write_text(TRAIN.replace("max_iter=1000", "max_iter=2000"))
    git(repo, "commit", "-qam", "more iterations")
    part2 = repo / "data" / "part-2.csv"
    saved2 = part2.read_bytes()
    part2.write_bytes(saved2 + b"0.1,0.2,0.3,0.4,1\n")
    try:
        p = reprise(server, repo, "run", "--experiment", exp, "--data", "data", "--seed", "12", "--sample-interval", "0", "--",
                    sys.executable, "train.py", "2.0", check=0)
        changed = run_id_of(p)
        p = reprise(server, repo, "diff", original, changed, "--format", "json", check=0)
        d = json.loads(p.stdout)
        assert d["code"]["commit"]["same"] is False
        assert [c.split(" ", 1)[1] for c in d["code"]["commits_between"]] == ["more iterations"]
        assert d["data"][0]["changed"] == ["part-2.csv"] and d["data"][0]["added"] == [] and d["data"][0]["removed"] == []
        assert d["params"] == [{"key": "C", "a": "1.0", "b": "2.0"}]
        assert d["seeds"] == [{"key": "root", "a": "11", "b": "12"}]
        assert d["environment"]["fields"] == [] and d["environment"]["packages"] == []
        assert {m["key"] for m in d["metrics"]} >= {"accuracy", "score"} and all("delta" in m for m in d["metrics"])
        text = reprise(server, repo, "diff", original, changed, check=0).stdout
        assert "data data: " in text and "param C: 1.0 -> 2.0" in text and "seed root: 11 -> 12" in text
    finally:
        part2.write_bytes(saved2)
        git(repo, "revert", "--no-edit", "HEAD")


def test_strict_policy_refuses_incomplete_runs(server, repo):
    client = MlflowClient(server)
    exp = f"strict-{uuid.uuid4().hex[:8]}"
    exp_id = client.create_experiment(exp)
    reprise(server, repo, "policy", "set", exp, "--require", "code,data,environment,seed,purpose", "--mode", "strict", check=0)
    shown = json.loads(reprise(server, repo, "policy", "show", exp, check=0).stdout)
    assert shown["mode"] == "strict" and shown["required"] == ["code", "data", "environment", "seed", "purpose"]
    assert json.loads(reprise(server, repo, "policy", "get", exp, check=0).stdout) == shown  # the natural spelling too

    # A plain mlflow script is judged by the same policy.
    with pytest.raises(MlflowException) as e:
        client.create_run(exp_id)
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    for field in ["code", "data", "environment", "seed", "purpose"]:
        assert field in str(e.value.message)
    # reprise run without --purpose is refused too, naming only what is missing.
    p = reprise(server, repo, "run", "--experiment", exp, "--data", "data", "--sample-interval", "0", "--", sys.executable, "train.py",
                check=1)
    assert "purpose" in p.stderr and "environment [" not in p.stderr
    # The complete one is accepted and marked compliant.
    p = reprise(server, repo, "run", "--experiment", exp, "--data", "data", "--purpose", "audit", "--sample-interval", "0", "--",
                sys.executable, "train.py", check=0)
    assert tags_of(client, run_id_of(p))["reprise.compliant"] == "true"

    # Soft mode accepts and flags; the flag is searchable.
    reprise(server, repo, "policy", "set", exp, "--require", "code,baseline", "--mode", "soft", check=0)
    with mlflow.start_run(experiment_id=exp_id) as r:
        mlflow.log_param("x", 1)
    assert tags_of(client, r.info.run_id)["reprise.compliant"] == "false"
    found = client.search_runs([exp_id], "tags.\"reprise.compliant\" = 'false'")
    assert [x.info.run_id for x in found] == [r.info.run_id]
    # Clients cannot forge the server's verdicts.
    with pytest.raises(MlflowException) as e:
        client.set_tag(r.info.run_id, "reprise.compliant", "true")
    assert "reserved" in str(e.value.message)
    reprise(server, repo, "policy", "delete", exp, check=0)


def test_duplicates_failures_interrupts_and_lineage(server, repo, tmp_path):
    client = MlflowClient(server)
    exp = f"dup-{uuid.uuid4().hex[:8]}"
    first = run_id_of(train(server, repo, exp, env={"TRAIN_SLEEP": "0"}))
    p = train(server, repo, exp, env={"TRAIN_SLEEP": "0"})
    assert f"run {first}" in p.stderr and "already ran these exact inputs" in p.stderr
    exp_id = client.get_experiment_by_name(exp).experiment_id
    reprise(server, repo, "policy", "set", exp, "--refuse-duplicates", check=0)
    p = train(server, repo, exp, env={"TRAIN_SLEEP": "0"}, check=1)
    assert "refuses duplicates" in p.stderr and first in p.stderr
    train(server, repo, exp, "--allow-duplicate", env={"TRAIN_SLEEP": "0"}, check=0)
    train(server, repo, exp, env={"TRAIN_SLEEP": "0"}, args=("3.0",), check=0)  # another param is no duplicate
    reprise(server, repo, "policy", "delete", exp, check=0)

    # A failing command ends FAILED with its exit status.
    p = reprise(server, repo, "run", "--experiment", exp, "--sample-interval", "0", "--", sys.executable, "-c", "import sys; sys.exit(3)",
                check=3)
    failed = client.get_run(run_id_of(p))
    assert failed.info.status == "FAILED" and failed.data.tags["reprise.exit_status"] == "3"

    # An interrupt is forwarded to the command and the run ends KILLED.
    e = dict(os.environ, MLFLOW_TRACKING_URI=server)
    marker = tmp_path / "got-signal"
    code = (f"import signal, sys, time\n"
            f"def h(*a):\n  open({str(marker)!r}, 'w').write('yes'); sys.exit(130)\n"
            f"signal.signal(signal.SIGINT, h)\nprint('ready', flush=True)\ntime.sleep(60)\n")
    proc = subprocess.Popen([REPRISE_BIN, "run", "--experiment", exp, "--sample-interval", "0", "--", sys.executable, "-c", code],
                            cwd=repo, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert marker.read_text() == "yes", "the command received the signal"
    killed = client.get_run(run_id_in(err))
    assert killed.info.status == "KILLED"

    # Lineage: from the production alias back to the data, and from the data forward to the alias.
    name = f"lineage-{uuid.uuid4().hex[:6]}"
    client.create_registered_model(name)
    mv = client.create_model_version(name, f"runs:/{first}/model", run_id=first)
    client.set_registered_model_alias(name, "prod", mv.version)
    g = json.loads(reprise(server, repo, "lineage", f"alias:{name}@prod", "--format", "json", check=0).stdout)
    keys = {f"{n['type']}:{n['id']}" for n in g["nodes"]}
    assert f"run:{first}" in keys and f"model_version:{name}/1" in keys and any(k.startswith("dataset:") for k in keys)
    dataset = next(k for k in keys if k.startswith("dataset:"))
    g2 = json.loads(reprise(server, repo, "lineage", dataset, "--format", "json", check=0).stdout)
    assert f"alias:{name}@prod" in {f"{n['type']}:{n['id']}" for n in g2["nodes"]}
    text = reprise(server, repo, "lineage", f"alias:{name}@prod", check=0).stdout
    assert "--input_of-->" in text and "--aliased_as-->" in text


def test_reproduce_exit_codes_checkout_cleanup_and_dirty_refusals(server, repo):
    client = MlflowClient(server)
    exp = f"firsthour-{uuid.uuid4().hex[:8]}"
    # Errors have their own exit status (3), apart from DIVERGED (1) and INCOMPLETE (2).
    p = reprise(server, repo, "reproduce", "f" * 32, check=3)
    assert "error:" in p.stderr and "verdict" not in p.stdout
    # A run not started with `reprise run` cannot be rebuilt: INCOMPLETE, recorded on that one run.
    exp_id = client.create_experiment(exp)
    with mlflow.start_run(experiment_id=exp_id) as plain:
        mlflow.log_metric("accuracy", 0.5)
    p = reprise(server, repo, "reproduce", plain.info.run_id, check=2)
    assert "verdict: INCOMPLETE" in p.stdout and "the command" in p.stdout, p.stdout
    assert f"on run {plain.info.run_id} (no rerun was made)" in p.stdout and "both runs" not in p.stdout, p.stdout
    # Its run book says so, and its script refuses to run rather than reproduce the wrong thing.
    book = Path(tempfile.mkdtemp()) / "book"
    p = reprise(server, repo, "runbook", plain.info.run_id, "-o", str(book), check=0)
    assert "cannot be reproduced as recorded" in p.stderr and "the command" in p.stderr and "the code commit" in p.stderr, p.stderr
    assert "Cannot be reproduced as recorded" in (book / "runbook.md").read_text()
    s = subprocess.run([str(book / "reproduce.sh")], cwd=repo, capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, MLFLOW_TRACKING_URI=server, REPRISE=REPRISE_BIN))
    assert s.returncode == 2 and "cannot be reproduced" in s.stderr and "verdict" not in s.stdout, (s.stdout, s.stderr)

    # The temporary checkout is removed unless asked to keep it.
    p = train(server, repo, exp, "--sample-interval", "0", check=0)
    original = run_id_of(p)

    def checkout(out: str) -> Path:
        line = next(l for l in out.splitlines() if "code: checked out" in l)
        return Path(line.rsplit(" into ", 1)[1])

    p = reprise(server, repo, "reproduce", original, "--sample-interval", "0", check=0)
    assert "verdict: REPRODUCED" in p.stdout and f"on runs {original} and " in p.stdout, p.stdout
    assert not checkout(p.stdout).exists() and "checkout kept" not in p.stdout
    p = reprise(server, repo, "reproduce", original, "--sample-interval", "0", "--keep-workdir", check=0)
    kept = checkout(p.stdout)
    assert kept.is_dir() and f"checkout kept at {kept}" in p.stdout
    shutil.rmtree(kept)

    # A strict policy that refuses dirty trees says to commit or stash, and names the files.
    reprise(server, repo, "policy", "set", exp, "--require", "code", "--mode", "strict", "--refuse-dirty", check=0)
    (repo / "helper.py").write_text("SCALE = 2.0\n")
    (repo / "scratch notes.txt").write_text("todo\n")
    try:
        p = reprise(server, repo, "run", "--experiment", exp, "--sample-interval", "0", "--", sys.executable, "train.py", check=1)
        assert "git stash" in p.stderr and "Commit them" in p.stderr, p.stderr
        assert "helper.py (modified)" in p.stderr and "scratch notes.txt (untracked)" in p.stderr, p.stderr
        assert "Run it with `reprise run`" not in p.stderr, "the run was started with reprise run; the tree is what is wrong"
    finally:
        git(repo, "checkout", "--", "helper.py")
        (repo / "scratch notes.txt").unlink()
        reprise(server, repo, "policy", "delete", exp, check=0)


def test_diff_reports_untracked_files(server, repo):
    exp = f"untracked-{uuid.uuid4().hex[:8]}"
    quick = ("--sample-interval", "0", "--", sys.executable, "-c", "print(1)")
    clean = run_id_of(reprise(server, repo, "run", "--experiment", exp, *quick, check=0))
    (repo / "notes.txt").write_text("first\n")
    try:
        one = run_id_of(reprise(server, repo, "run", "--experiment", exp, *quick, check=0))
        (repo / "notes.txt").write_text("second\n")
        changed = run_id_of(reprise(server, repo, "run", "--experiment", exp, *quick, check=0))
    finally:
        (repo / "notes.txt").unlink()
    d = json.loads(reprise(server, repo, "diff", clean, one, "--format", "json", check=0).stdout)["code"]["untracked"]
    assert (d["a_count"], d["b_count"], d["added"], d["removed"], d["changed"], d["same"]) == (0, 1, ["notes.txt"], [], [], False), d
    text = reprise(server, repo, "diff", clean, one, check=0).stdout
    assert "untracked files differ: 0 -> 1" in text and "  + notes.txt" in text, text
    d = json.loads(reprise(server, repo, "diff", one, changed, "--format", "json", check=0).stdout)["code"]["untracked"]
    assert d["changed"] == ["notes.txt"] and d["added"] == [] and not d["same"], d
    d = json.loads(reprise(server, repo, "diff", one, one, "--format", "json", check=0).stdout)["code"]["untracked"]
    assert d["same"] and d["a_count"] == 1, d
