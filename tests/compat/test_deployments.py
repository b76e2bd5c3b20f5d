"""Reprise's deployment records (issue 13): `reprise deploy` resolves a model and its prompts to exact
versions at record time, keeps the environment's history and what a rollback returns to, takes
production measurements, and incidents lead back through lineage to the run that made the model."""

from __future__ import annotations

import hashlib
import json
import subprocess
import uuid

import pytest

import mlflow
from mlflow import MlflowClient

from conftest import REPRISE_BIN, assert_error

pytestmark = pytest.mark.reprise_only


def cli(server, *args, check=True):
    r = subprocess.run([REPRISE_BIN, *args, "--tracking-uri", server], capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        raise AssertionError(f"reprise {' '.join(args)} failed ({r.returncode}): {r.stdout}\n{r.stderr}")
    return r


@pytest.fixture()
def setup(server, experiment, api):
    """A model with two versions (from two runs), alias production on v1, and a prompt."""
    client = MlflowClient()
    model = f"churn-{uuid.uuid4().hex[:6]}"
    client.create_registered_model(model)
    runs = []
    for i in range(2):
        run = client.create_run(experiment).info.run_id
        runs.append(run)
        r = api.post("/api/2.0/mlflow/model-versions/create", json={"name": model, "source": f"s3://models/{model}/{i}", "run_id": run})
        assert r.status_code == 200, r.text
    client.set_registered_model_alias(model, "production", "1")
    prompt = f"bot-{uuid.uuid4().hex[:6]}"
    mlflow.genai.register_prompt(name=prompt, template="Answer {{q}}")
    mlflow.genai.register_prompt(name=prompt, template="Answer briefly: {{q}}")
    mlflow.genai.set_prompt_alias(prompt, alias="production", version=2)
    return {"model": model, "prompt": prompt, "runs": runs, "client": client}


def test_record_history_rollback_measure_incident(server, setup, tmp_path, api):
    model, prompt, runs, client = setup["model"], setup["prompt"], setup["runs"], setup["client"]
    env = f"prod-{uuid.uuid4().hex[:6]}"
    config = tmp_path / "serving.yaml"
    config.write_text("replicas: 3\n")
    first = json.loads(cli(server, "deploy", "record", "--environment", env, "--model", f"{model}@production",
                           "--prompt", f"{prompt}@production", "--endpoint", "https://api.example/churn",
                           "--config", str(config), "--note", "first release", "--json").stdout)
    assert first["model"] == {"name": model, "version": "1", "alias": "production"}
    assert first["prompts"] == [{"name": prompt, "version": "2", "alias": "production"}]
    assert first["config_sha256"] == hashlib.sha256(b"replicas: 3\n").hexdigest() and first["config"] == "replicas: 3\n"
    assert first["endpoint"] == "https://api.example/churn" and "previous_id" not in first

    # The alias moves on; a deployment recorded before keeps the version it resolved to.
    client.set_registered_model_alias(model, "production", "2")
    second = json.loads(cli(server, "deploy", "record", "--environment", env, "--model", f"{model}@production",
                            "--prompt", f"{prompt}/1", "--json").stdout)
    assert second["model"]["version"] == "2" and second["previous_id"] == first["id"]
    assert api.get(f"/api/reprise/v1/deployments/{first['id']}").json()["deployment"]["model"]["version"] == "1"

    history = cli(server, "deploy", "history", "--environment", env).stdout.splitlines()
    assert [line.split()[0] for line in history] == [second["id"], first["id"]]
    current = cli(server, "deploy", "current", "--environment", env).stdout
    assert second["id"] in current and f"--model {model}/1 --prompt {prompt}/2" in current

    cli(server, "deploy", "measure", second["id"], "latency_ms=120", "refusal_rate=0.02")
    got = api.get(f"/api/reprise/v1/deployments/{second['id']}/measurements").json()["measurements"]
    assert sorted((m["key"], m["value"]) for m in got) == [("latency_ms", 120.0), ("refusal_rate", 0.02)]

    opened = cli(server, "incident", "open", "--deployment", second["id"], "--note", "refusal spike after release").stdout
    incident = opened.split()[1]
    assert incident.startswith("inc-") and f"reprise lineage incident:{incident}" in opened
    graph = json.loads(cli(server, "lineage", f"incident:{incident}", "--format", "json").stdout)
    keys = {f"{n['type']}:{n['id']}" for n in graph["nodes"]}
    assert {f"deployment:{second['id']}", f"model_version:{model}/2", f"run:{runs[1]}", f"model_version:{prompt}/1"} <= keys
    assert f"run:{runs[0]}" not in keys  # the version that was not deployed is not on this incident's path
    # And from the run forward: the run's version was deployed, and the incident is there.
    forward = json.loads(cli(server, "lineage", f"run:{runs[1]}", "--format", "json").stdout)
    assert f"incident:{incident}" in {f"{n['type']}:{n['id']}" for n in forward["nodes"]}

    listed = cli(server, "incident", "list", "--environment", env, "--status", "open").stdout
    assert incident in listed
    cli(server, "incident", "close", incident, "--resolution", "rolled back to v1")
    assert api.get(f"/api/reprise/v1/incidents/{incident}").json()["incident"]["status"] == "closed"
    r = api.post(f"/api/reprise/v1/incidents/{incident}/close", json={"resolution": "again"})
    assert_error(r, 400, "INVALID_STATE")


def test_refusals(server, setup, api):
    model, prompt = setup["model"], setup["prompt"]
    url = "/api/reprise/v1/deployments"
    assert_error(api.post(url, json={"environment": "prod", "model": f"{prompt}@production"}), 400, "INVALID_PARAMETER_VALUE", "is a prompt")
    assert_error(api.post(url, json={"environment": "prod", "model": model, "prompts": []}), 400, "INVALID_PARAMETER_VALUE")
    assert_error(api.post(url, json={"environment": "prod", "model": f"{model}@nope"}), 404, "RESOURCE_DOES_NOT_EXIST", "no alias")
    assert_error(api.post(url, json={"environment": "prod", "model": f"{model}/9"}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(api.post(url, json={"environment": "prod env/../x", "model": f"{model}/1"}), 400, "INVALID_PARAMETER_VALUE")
    assert_error(api.post(url, json={"environment": "prod", "model": f"{model}/1", "prompts": [f"{model}/1"]}), 400,
                 "INVALID_PARAMETER_VALUE", "not a prompt")
    assert_error(api.get(f"{url}/current", params={"environment": f"never-{uuid.uuid4().hex[:6]}"}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(api.post("/api/reprise/v1/incidents", json={"deployment_id": "dep-none", "note": "x"}), 404, "RESOURCE_DOES_NOT_EXIST")
    r = cli(server, "deploy", "record", "--environment", "prod", "--model", "no-such-model@production", check=False)
    assert r.returncode != 0 and "not found" in r.stderr


def test_hostile_inputs(server, setup, api):
    model = setup["model"]
    url = "/api/reprise/v1/deployments"
    assert_error(api.post(url, json={"environment": "../etc", "model": f"{model}/1"}), 400, "INVALID_PARAMETER_VALUE")
    assert_error(api.post(url, json={"environment": "prod\u0000", "model": f"{model}/1"}), 400, "INVALID_PARAMETER_VALUE")
    assert_error(api.post(url, json={"environment": "prod", "model": f"{model}/9223372036854775807"}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(api.post(url, json={"environment": "prod", "model": f"{model}/99999999999999999999"}), 400, "INVALID_PARAMETER_VALUE")
    assert_error(api.post(url, json={"environment": "prod", "model": f"{model}/1", "config": "x" * 1_000_001}), 400,
                 "INVALID_PARAMETER_VALUE", "configuration")
    d = api.post(url, json={"environment": "hostile", "model": f"{model}/1"}).json()["deployment"]
    r = api.post(f"{url}/{d['id']}/measurements", json={"measurements": [{"key": "k", "value": 1, "timestamp": 9223372036854775807}]})
    assert r.status_code == 200, r.text
    assert_error(api.post(f"{url}/{d['id']}/measurements", json={"measurements": [{"key": "../k\u0000", "value": 1}]}), 400, "INVALID_PARAMETER_VALUE")
    assert_error(api.get(url, params={"max_results": 9223372036854775807}), 400, "INVALID_PARAMETER_VALUE")
    assert_error(api.get(f"{url}/..%2F..%2Fetc"), 404, "RESOURCE_DOES_NOT_EXIST")
