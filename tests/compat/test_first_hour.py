"""What a new user meets in the first hour (issue 14): the server's start and stop messages, and
`reprise run` with a mistyped command or without $USER. Reprise's own CLI; nothing here runs on the
reference."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
from mlflow import MlflowClient

from conftest import REPRISE_BIN, start_server, stop_server

pytestmark = pytest.mark.reprise_only


def reprise(server, cwd, *args, env=None, drop=(), timeout=120):
    e = {k: v for k, v in os.environ.items() if k not in drop}
    e["MLFLOW_TRACKING_URI"] = server
    e.pop("MLFLOW_RUN_ID", None)
    e.update(env or {})
    return subprocess.run([REPRISE_BIN, *args], cwd=cwd, env=e, capture_output=True, text=True, timeout=timeout)


def test_port_in_use_and_a_quiet_shutdown(tmp_path):
    url = start_server(tmp_path / "first")
    try:
        # A second server on the same port: what to do, and no usage block (it was not a usage mistake).
        p = subprocess.run([REPRISE_BIN, "server", "--port", str(url.port), "--backend-store-uri", f"sqlite:///{tmp_path}/second.db"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert p.returncode == 1, (p.returncode, p.stderr)
        assert f"127.0.0.1:{url.port} is already in use" in p.stderr and "--port PORT" in p.stderr, p.stderr
        assert "Usage:" not in p.stderr and "USAGE" not in p.stderr.upper(), p.stderr
    finally:
        stop_server(url)
    log = url.stderr_text()
    assert "Reprise stopped" in log, log[-2000:]
    # A graceful stop is not a failure: no warning about the webhook outbox being cancelled.
    assert "outbox read failed" not in log and "CancellationError" not in log, log[-2000:]


def test_mistyped_command_and_no_user(server, tmp_path):
    client = MlflowClient(server)
    exp = f"firsthour-{uuid.uuid4().hex[:8]}"
    p = reprise(server, tmp_path, "run", "--experiment", exp, "--sample-interval", "0", "--", "pythn", "train.py")
    assert p.returncode == 127, (p.returncode, p.stderr)
    assert "command not found: pythn" in p.stderr and "exec:" not in p.stderr, p.stderr
    run = client.search_runs([client.get_experiment_by_name(exp).experiment_id])[0]
    assert run.info.status == "FAILED"
    assert run.data.tags["reprise.failure_reason"].startswith("command not found: pythn")
    p = reprise(server, tmp_path, "run", "--experiment", exp, "--sample-interval", "0", "--", "./missing.sh")
    assert p.returncode == 127 and "command not found: ./missing.sh (no such file)" in p.stderr, p.stderr

    # With $USER (and the other variables getpass reads) unset, the owner is the OS user, as mlflow records it.
    drop = ("USER", "LOGNAME", "LNAME", "USERNAME", "REPRISE_ACTOR")
    p = reprise(server, tmp_path, "run", "--experiment", exp, "--sample-interval", "0", "--", sys.executable, "-c", "print(1)", drop=drop)
    assert p.returncode == 0, p.stderr
    import pwd

    me = pwd.getpwuid(os.getuid()).pw_name
    newest = client.search_runs([client.get_experiment_by_name(exp).experiment_id], order_by=["attributes.start_time DESC"])[0]
    assert newest.info.user_id == me and newest.data.tags["mlflow.user"] == me and newest.data.tags["reprise.owner"] == me, newest


def test_passport_card_follows_the_policy_rule(server):
    # One answer to "is the code recorded": the card uses the policy's rule, which accepts the commit
    # the mlflow client records (mlflow.source.git.commit) and treats an empty value as missing.
    import requests

    client = MlflowClient(server)
    exp = client.create_experiment(f"card-{uuid.uuid4().hex[:8]}")
    run = client.create_run(exp, tags={"reprise.passport.version": "1", "mlflow.source.git.commit": "ab12cd34ef56" * 3,
                                       "reprise.seed": ""}).info.run_id
    html = requests.get(f"{server}/ui/runs/{run}", timeout=30).text
    assert '<strong>Code</strong> <span class="badge ok">recorded</span>' in html and "ab12cd34ef56" in html
    assert '<strong>Seeds</strong> <span class="badge bad">missing</span>' in html
