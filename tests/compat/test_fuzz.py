"""Schemathesis against the real binary (Reprise only): every operation of the OpenAPI document.

A fresh server is fuzzed for a bounded time from its own document
(/api/reprise/v1/openapi.json), on loopback only. It must give no 5xx (beyond the few the
document states on purpose, listed in CONFIG), answer with documented status codes and content
types, and still be alive and healthy afterwards.

Webhooks are made unusable for the run (an allowed-schemes list no URL can match), so no request
the fuzzer makes can lead the server to send anything anywhere.

Knobs: REPRISE_FUZZ_EXAMPLES (examples per operation, default 25), REPRISE_FUZZ_SEED.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import requests

import conftest
from conftest import start_server, stop_server

pytestmark = pytest.mark.reprise_only

HERE = Path(__file__).resolve().parent
# 255 operations at 25 examples take about 190 s on CI's 2 cores (the PostgreSQL pass, 2026-12-02);
# the bound leaves room for a loaded machine, and a hang still fails.
HARD_TIMEOUT_S = 420
EXAMPLES = int(os.environ.get("REPRISE_FUZZ_EXAMPLES", "25"))

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "unsupported_method",
    ]
)

# 5xx the document states on purpose: multipart uploads and presigned URLs are not supported
# (501, whose message the mlflow client recognizes and falls back from, as with MLflow's local
# stores); a run's or model's artifacts kept where this server does not serve them (s3://...)
# are 501 on the routes that would read or write them. Nothing else may answer 5xx.
CONFIG = """
[[operations]]
include-path-regex = "^/api/2\\\\.0/mlflow-artifacts/(mpu/|presigned/)|^/api/2\\\\.0/mlflow/artifacts/(presigned-|list$)|^/get-artifact$|^/model-versions/get-artifact$|^/api/2\\\\.0/mlflow/upload-artifact$|^/api/2\\\\.0/mlflow/logged-models/\\\\{model_id\\\\}/artifacts/"
checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "501"]
"""


def _crash_report(output: str, server_log: str) -> str:
    """What matters when the server died: its fatal error, and the requests just before."""
    fatal = [line for line in server_log.splitlines() if "Fatal error" in line or "Program crashed" in line]
    parts = ["--- server ---", *(fatal or [server_log[-3000:]])]
    i = output.find("stopped responding. Last requests")
    if i >= 0:
        parts += ["--- schemathesis: the last requests before the server went away ---", output[i : i + 4000]]
    j = output.find("SUMMARY")
    parts += ["--- schemathesis ---", output[j - 100 :] if j >= 0 else output[-6000:]]
    return "\n".join(parts)


def _schemathesis() -> str:
    exe = Path(sys.executable).parent / "st"
    if exe.exists():
        return str(exe)
    found = shutil.which("st")
    if not found:
        pytest.fail("schemathesis is not installed: pip install -r tests/compat/requirements.txt")
    return found


def test_schemathesis_finds_no_server_errors(monkeypatch):
    st = _schemathesis()
    # No webhook URL is acceptable: the fuzzer cannot make the server deliver anywhere.
    monkeypatch.setitem(conftest.WEBHOOK_TEST_ENV, "MLFLOW_WEBHOOK_ALLOWED_SCHEMES", "reprise-fuzz-no-delivery")
    monkeypatch.setitem(conftest.WEBHOOK_TEST_ENV, "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS", "false")
    with tempfile.TemporaryDirectory(prefix="reprise-fuzz-") as d:
        tmp = Path(d)
        url = start_server(tmp / "server")
        try:
            config = tmp / "schemathesis.toml"
            config.write_text(CONFIG)
            env = dict(os.environ)
            env["SCHEMATHESIS_HOOKS"] = "fuzz_hooks"
            env["PYTHONPATH"] = str(HERE) + os.pathsep + env.get("PYTHONPATH", "")
            env["NO_COLOR"] = "1"
            cmd = [
                st, "--config-file", str(config), "run", f"{url}/api/reprise/v1/openapi.json",
                "--checks", CHECKS,
                "--max-examples", str(EXAMPLES),
                "--workers", "1",  # several workers trip a CPython 3.11 ast bug inside hypothesis
                "--max-redirects", "0",
                "--request-timeout", "20",
                "--generation-database", "none",
                "--output-sanitize", "false",
                "--no-color",
            ]
            if os.environ.get("REPRISE_FUZZ_SEED"):
                cmd += ["--seed", os.environ["REPRISE_FUZZ_SEED"]]
            try:
                run = subprocess.run(
                    cmd, cwd=str(tmp), env=env, capture_output=True, text=True, timeout=HARD_TIMEOUT_S, stdin=subprocess.DEVNULL
                )
                output = run.stdout + run.stderr
                rc = run.returncode
            except subprocess.TimeoutExpired as e:
                output = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
                pytest.fail(f"schemathesis ran past {HARD_TIMEOUT_S}s\n{output[-8000:]}")

            alive = url.proc.poll() is None
            healthy = False
            if alive:
                try:
                    healthy = requests.get(f"{url}/health", timeout=5).status_code == 200
                except requests.RequestException:
                    healthy = False
            assert alive and healthy, (
                f"the server did not survive the fuzzing (exit code {url.proc.poll()})\n" + _crash_report(output, url.stderr_text())
            )
            assert rc == 0, f"schemathesis found failures (exit code {rc}):\n{output[-12000:]}"
        finally:
            stop_server(url)
