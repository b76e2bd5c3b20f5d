"""Experiments, runs, params, metrics, tags and datasets through the stock mlflow client (spec §4.1, §4.2, §4.4)."""

from __future__ import annotations

import math
import re
import time
import uuid

import numpy as np
import pandas as pd
import pytest
import requests

import mlflow
from mlflow.entities import Metric, Param, RunStatus, RunTag, ViewType
from mlflow.exceptions import MlflowException

MAXD = 1.7976931348623157e308


def uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def now_ms() -> int:
    return int(time.time() * 1000)


# =========================================================================== experiments


def test_create_and_get_experiment(client):
    name = uniq("create")
    t0 = now_ms()
    eid = client.create_experiment(name, tags={"team": "ml", "env": "test"})
    assert isinstance(eid, str) and eid.isdigit()
    exp = client.get_experiment(eid)
    assert exp.experiment_id == eid
    assert exp.name == name
    assert exp.lifecycle_stage == "active"
    assert exp.artifact_location == f"mlflow-artifacts:/{eid}"
    assert exp.tags == {"team": "ml", "env": "test"}
    assert t0 - 5000 <= exp.creation_time <= now_ms() + 5000
    assert exp.last_update_time >= exp.creation_time


def test_experiment_ids_increase(client):
    a = int(client.create_experiment(uniq("inc")))
    b = int(client.create_experiment(uniq("inc")))
    c = int(client.create_experiment(uniq("inc")))
    assert a < b < c


def test_get_experiment_by_name(client):
    name = uniq("byname")
    eid = client.create_experiment(name)
    exp = client.get_experiment_by_name(name)
    assert exp is not None and exp.experiment_id == eid and exp.name == name
    assert client.get_experiment_by_name(uniq("does-not-exist")) is None
    # names are case-sensitive
    assert client.get_experiment_by_name(name.upper()) is None


def test_default_experiment_exists(client):
    exp = client.get_experiment("0")
    assert exp.name == "Default"
    assert exp.artifact_location == "mlflow-artifacts:/0"
    assert client.get_experiment_by_name("Default").experiment_id == "0"


def test_set_experiment_creates_then_reuses(server):
    name = uniq("setexp")
    e1 = mlflow.set_experiment(name)
    e2 = mlflow.set_experiment(name)
    assert e1.experiment_id == e2.experiment_id
    e3 = mlflow.set_experiment(experiment_id=e1.experiment_id)
    assert e3.name == name


def test_rename_experiment(client):
    old, new = uniq("old"), uniq("new")
    eid = client.create_experiment(old)
    client.rename_experiment(eid, new)
    assert client.get_experiment(eid).name == new
    assert client.get_experiment_by_name(new).experiment_id == eid
    assert client.get_experiment_by_name(old) is None
    # the old name is free again
    other = client.create_experiment(old)
    assert other != eid


def test_rename_to_existing_name_fails(client):
    a, b = uniq("ra"), uniq("rb")
    ea = client.create_experiment(a)
    client.create_experiment(b)
    with pytest.raises(MlflowException) as ei:
        client.rename_experiment(ea, b)
    # The reference answers 400 BAD_REQUEST (a raw sqlite IntegrityError); any 400 code is fine.
    assert ei.value.get_http_status_code() == 400
    assert ei.value.error_code in ("BAD_REQUEST", "RESOURCE_ALREADY_EXISTS", "INVALID_PARAMETER_VALUE")
    assert client.get_experiment(ea).name == a


def test_delete_restore_experiment_cascades_to_runs(client):
    eid = client.create_experiment(uniq("cascade"))
    r1 = client.create_run(eid).info.run_id
    r2 = client.create_run(eid).info.run_id
    client.delete_experiment(eid)
    exp = client.get_experiment(eid)
    assert exp.lifecycle_stage == "deleted"
    assert client.get_experiment_by_name(exp.name).lifecycle_stage == "deleted"
    assert client.get_run(r1).info.lifecycle_stage == "deleted"
    assert client.get_run(r2).info.lifecycle_stage == "deleted"
    assert client.search_runs([eid]) == []
    deleted = client.search_runs([eid], run_view_type=ViewType.DELETED_ONLY)
    assert sorted(r.info.run_id for r in deleted) == sorted([r1, r2])
    names = [e.name for e in client.search_experiments(filter_string=f"name = '{exp.name}'")]
    assert names == []
    names = [e.name for e in client.search_experiments(view_type=ViewType.DELETED_ONLY,
                                                       filter_string=f"name = '{exp.name}'")]
    assert names == [exp.name]
    # no runs can be created in a deleted experiment
    with pytest.raises(MlflowException) as ei:
        client.create_run(eid)
    assert ei.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "must be in the 'active' state" in ei.value.message

    client.restore_experiment(eid)
    assert client.get_experiment(eid).lifecycle_stage == "active"
    assert client.get_run(r1).info.lifecycle_stage == "active"
    assert client.get_run(r2).info.lifecycle_stage == "active"
    assert sorted(r.info.run_id for r in client.search_runs([eid])) == sorted([r1, r2])


def test_delete_experiment_twice_and_restore_active(client):
    eid = client.create_experiment(uniq("twice"))
    client.delete_experiment(eid)
    with pytest.raises(MlflowException) as ei:
        client.delete_experiment(eid)
    assert ei.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    client.restore_experiment(eid)
    with pytest.raises(MlflowException) as ei:
        client.restore_experiment(eid)
    assert ei.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_set_deleted_experiment_is_client_error(client, server):
    name = uniq("setdel")
    eid = client.create_experiment(name)
    client.delete_experiment(eid)
    with pytest.raises(MlflowException, match="Cannot set a deleted experiment"):
        mlflow.set_experiment(name)


def test_experiment_tags(client):
    eid = client.create_experiment(uniq("tags"))
    client.set_experiment_tag(eid, "k1", "v1")
    client.set_experiment_tag(eid, "k2", "v2")
    client.set_experiment_tag(eid, "k1", "v1b")  # upsert
    assert client.get_experiment(eid).tags == {"k1": "v1b", "k2": "v2"}
    client.delete_experiment_tag(eid, "k1")
    assert client.get_experiment(eid).tags == {"k2": "v2"}
    with pytest.raises(MlflowException) as ei:
        client.delete_experiment_tag(eid, "k1")
    assert ei.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert f"No tag with name: k1 in experiment with id {eid}" in ei.value.message


def test_tag_deleted_experiment_fails(client):
    eid = client.create_experiment(uniq("tagdel"))
    client.delete_experiment(eid)
    with pytest.raises(MlflowException) as ei:
        client.set_experiment_tag(eid, "k", "v")
    assert ei.value.error_code == "INVALID_PARAMETER_VALUE"
    assert f"The experiment {eid} must be in the 'active' state. Current state is deleted." in ei.value.message


# =========================================================================== runs


def test_start_end_run_finished(experiment, client):
    t0 = now_ms()
    with mlflow.start_run(run_name="r1") as run:
        run_id = run.info.run_id
        assert run.info.status == "RUNNING"
        assert mlflow.active_run().info.run_id == run_id
    r = client.get_run(run_id)
    assert re.fullmatch(r"[0-9a-f]{32}", run_id)
    assert r.info.experiment_id == experiment
    assert r.info.status == "FINISHED"
    assert r.info.run_name == "r1"
    assert r.info.lifecycle_stage == "active"
    assert r.info.artifact_uri == f"mlflow-artifacts:/{experiment}/{run_id}/artifacts"
    assert t0 - 5000 <= r.info.start_time <= r.info.end_time <= now_ms() + 5000
    tags = r.data.tags
    assert tags["mlflow.runName"] == "r1"
    assert tags["mlflow.source.type"] == "LOCAL"
    assert "mlflow.user" in tags and "mlflow.source.name" in tags
    assert r.info.user_id == tags["mlflow.user"]


def test_run_failed_status(experiment, client):
    with pytest.raises(RuntimeError):
        with mlflow.start_run() as run:
            raise RuntimeError("boom")
    r = client.get_run(run.info.run_id)
    assert r.info.status == "FAILED"
    assert r.info.end_time is not None


def test_run_killed_status(experiment, client):
    run = client.create_run(experiment)
    assert run.info.status == "RUNNING"
    assert run.info.end_time is None
    client.set_terminated(run.info.run_id, "KILLED")
    r = client.get_run(run.info.run_id)
    assert r.info.status == "KILLED"
    assert r.info.end_time >= r.info.start_time
    client.set_terminated(run.info.run_id, "FINISHED", end_time=r.info.end_time + 1)
    r2 = client.get_run(run.info.run_id)
    assert r2.info.status == "FINISHED" and r2.info.end_time == r.info.end_time + 1


def test_end_run_with_status(experiment, client):
    mlflow.start_run()
    rid = mlflow.active_run().info.run_id
    mlflow.end_run(status=RunStatus.to_string(RunStatus.KILLED))
    assert client.get_run(rid).info.status == "KILLED"


def test_random_run_name_when_none_given(experiment, client):
    run = client.create_run(experiment)
    assert re.fullmatch(r"[a-z]+-[a-z]+-\d+", run.info.run_name), run.info.run_name
    assert client.get_run(run.info.run_id).data.tags["mlflow.runName"] == run.info.run_name


def test_params(experiment, client):
    with mlflow.start_run() as run:
        mlflow.log_param("alpha", 0.5)
        mlflow.log_params({"beta": 1, "gamma": "x y", "delta": None, "eps": [1, 2]})
        mlflow.log_param("alpha", 0.5)  # same value again is fine
    r = client.get_run(run.info.run_id)
    assert r.data.params == {"alpha": "0.5", "beta": "1", "gamma": "x y", "delta": "None", "eps": "[1, 2]"}


def test_changed_param_rejected(experiment, client):
    with mlflow.start_run() as run:
        mlflow.log_param("p", 1)
        with pytest.raises(MlflowException) as ei:
            mlflow.log_param("p", 2)
        assert ei.value.error_code == "INVALID_PARAMETER_VALUE"
        assert "Changing param values is not allowed" in ei.value.message
    assert client.get_run(run.info.run_id).data.params == {"p": "1"}


def test_metrics_with_steps_and_timestamps(experiment, client):
    with mlflow.start_run() as run:
        mlflow.log_metric("loss", 0.9, step=0, timestamp=1_700_000_000_000)
        mlflow.log_metric("loss", 0.7, step=1, timestamp=1_700_000_000_100)
        mlflow.log_metric("loss", 0.5, step=2, timestamp=1_700_000_000_200)
        mlflow.log_metrics({"acc": 0.7, "f1": 0.6}, step=3)
        mlflow.log_metric("int_metric", 3)
    rid = run.info.run_id
    r = client.get_run(rid)
    assert r.data.metrics == {"loss": 0.5, "acc": 0.7, "f1": 0.6, "int_metric": 3.0}
    hist = client.get_metric_history(rid, "loss")
    assert [(m.value, m.step, m.timestamp) for m in hist] == [
        (0.9, 0, 1_700_000_000_000), (0.7, 1, 1_700_000_000_100), (0.5, 2, 1_700_000_000_200)]
    assert all(m.key == "loss" for m in hist)
    acc = client.get_metric_history(rid, "acc")
    assert len(acc) == 1 and acc[0].step == 3 and acc[0].value == 0.7
    assert abs(acc[0].timestamp - now_ms()) < 120_000
    assert client.get_metric_history(rid, "missing") == []


def test_latest_metric_is_highest_step(experiment, client):
    with mlflow.start_run() as run:
        mlflow.log_metric("m", 10.0, step=5)
        mlflow.log_metric("m", 20.0, step=2)  # later write with a lower step does not win
    assert client.get_run(run.info.run_id).data.metrics["m"] == 10.0
    assert [m.value for m in client.get_metric_history(run.info.run_id, "m")] == [10.0, 20.0]


def test_metric_history_large(experiment, client):
    run = client.create_run(experiment)
    rid = run.info.run_id
    ts = now_ms()
    metrics = [Metric("big", float(i), ts + i, i) for i in range(3000)]
    for i in range(0, 3000, 1000):
        client.log_batch(rid, metrics=metrics[i:i + 1000])
    hist = client.get_metric_history(rid, "big")
    assert len(hist) == 3000
    assert [m.step for m in hist] == list(range(3000))
    assert client.get_run(rid).data.metrics == {"big": 2999.0}


def test_nan_and_inf_metrics(experiment, client):
    with mlflow.start_run() as run:
        mlflow.log_metric("nan_metric", float("nan"))
        mlflow.log_metric("pinf", float("inf"))
        mlflow.log_metric("ninf", float("-inf"))
    m = client.get_run(run.info.run_id).data.metrics
    assert math.isnan(m["nan_metric"])
    assert m["pinf"] >= MAXD
    assert m["ninf"] <= -MAXD
    h = client.get_metric_history(run.info.run_id, "nan_metric")
    assert len(h) == 1 and math.isnan(h[0].value)


def test_tags(experiment, client):
    with mlflow.start_run() as run:
        mlflow.set_tag("team", "a")
        mlflow.set_tags({"x": "1", "y": 2})
        mlflow.set_tag("team", "b")  # upsert
    rid = run.info.run_id
    tags = client.get_run(rid).data.tags
    assert tags["team"] == "b" and tags["x"] == "1" and tags["y"] == "2"
    client.delete_tag(rid, "x")
    tags = client.get_run(rid).data.tags
    assert "x" not in tags and tags["y"] == "2"
    with pytest.raises(MlflowException) as ei:
        client.delete_tag(rid, "x")
    assert ei.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert f"No tag with name: x in run with id {rid}" in ei.value.message


def test_log_batch(experiment, client):
    run = client.create_run(experiment)
    rid = run.info.run_id
    ts = now_ms()
    client.log_batch(
        rid,
        metrics=[Metric("m1", 1.0, ts, 0), Metric("m1", 2.0, ts + 1, 1), Metric("m2", -3.5, ts, 0)],
        params=[Param("p1", "a"), Param("p2", "b")],
        tags=[RunTag("t1", "x"), RunTag("t2", "y")],
    )
    r = client.get_run(rid)
    assert r.data.metrics == {"m1": 2.0, "m2": -3.5}
    assert r.data.params == {"p1": "a", "p2": "b"}
    assert r.data.tags["t1"] == "x" and r.data.tags["t2"] == "y"
    assert [m.value for m in client.get_metric_history(rid, "m1")] == [1.0, 2.0]
    # client-side chunking of a big log_params (150 > 100 per request)
    mlflow.start_run(run_id=rid)
    mlflow.log_params({f"k{i:03d}": i for i in range(150)})
    mlflow.end_run()
    assert len(client.get_run(rid).data.params) == 152


def test_nested_runs(experiment, client):
    with mlflow.start_run(run_name="parent") as parent:
        with mlflow.start_run(run_name="child1", nested=True) as c1:
            pass
        with mlflow.start_run(run_name="child2", nested=True) as c2:
            pass
    pid = parent.info.run_id
    assert client.get_run(c1.info.run_id).data.tags["mlflow.parentRunId"] == pid
    assert client.get_run(c2.info.run_id).data.tags["mlflow.parentRunId"] == pid
    assert "mlflow.parentRunId" not in client.get_run(pid).data.tags
    children = client.search_runs([experiment], filter_string=f"tags.mlflow.parentRunId = '{pid}'",
                                  order_by=["attributes.run_name ASC"])
    assert [r.info.run_name for r in children] == ["child1", "child2"]
    assert client.get_run(pid).info.status == "FINISHED"


def test_update_run_name_syncs_tag(experiment, client):
    run = client.create_run(experiment, run_name="first")
    rid = run.info.run_id
    client.update_run(rid, name="second")
    r = client.get_run(rid)
    assert r.info.run_name == "second"
    assert r.data.tags["mlflow.runName"] == "second"
    assert r.info.status == "RUNNING"
    # setting the tag renames the run
    client.set_tag(rid, "mlflow.runName", "third")
    r = client.get_run(rid)
    assert r.info.run_name == "third"
    found = client.search_runs([experiment], filter_string="attributes.run_name = 'third'")
    assert [x.info.run_id for x in found] == [rid]
    client.update_run(rid, status="FINISHED")
    r = client.get_run(rid)
    assert r.info.status == "FINISHED" and r.info.run_name == "third"


def test_create_run_with_tags_and_start_time(experiment, client):
    run = client.create_run(experiment, start_time=12345, tags={"a": "b"}, run_name="explicit")
    r = client.get_run(run.info.run_id)
    assert r.info.start_time == 12345
    assert r.info.run_name == "explicit"
    assert r.data.tags["a"] == "b"
    assert r.data.tags["mlflow.runName"] == "explicit"


def test_delete_restore_run(experiment, client):
    keep = client.create_run(experiment).info.run_id
    gone = client.create_run(experiment).info.run_id
    client.delete_run(gone)
    r = client.get_run(gone)
    assert r.info.lifecycle_stage == "deleted"
    assert [x.info.run_id for x in client.search_runs([experiment])] == [keep]
    assert [x.info.run_id for x in client.search_runs([experiment], run_view_type=ViewType.DELETED_ONLY)] == [gone]
    assert sorted(x.info.run_id for x in client.search_runs([experiment], run_view_type=ViewType.ALL)) == sorted([keep, gone])
    with pytest.raises(MlflowException) as ei:
        client.log_metric(gone, "m", 1.0)
    assert ei.value.error_code == "INVALID_PARAMETER_VALUE"
    assert f"The run {gone} must be in the 'active' state. Current state is deleted." in ei.value.message
    client.restore_run(gone)
    assert client.get_run(gone).info.lifecycle_stage == "active"
    client.log_metric(gone, "m", 1.0)
    assert client.get_run(gone).data.metrics == {"m": 1.0}


def test_log_metric_without_active_run_autostarts(experiment, client):
    assert mlflow.active_run() is None
    mlflow.log_metric("b", 2.0)
    run = mlflow.active_run()
    assert run is not None
    mlflow.end_run()
    r = client.get_run(run.info.run_id)
    assert r.info.experiment_id == experiment
    assert r.data.metrics == {"b": 2.0}


def test_log_input_pandas_dataset(experiment, client):
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0, 1, 0]})
    ds = mlflow.data.from_pandas(df, name="mydata", targets="y")
    ds2 = mlflow.data.from_pandas(df.assign(x=df.x * 10), name="mydata-eval", targets="y")
    assert ds.digest != ds2.digest
    with mlflow.start_run() as run:
        mlflow.log_input(ds, context="training", tags={"k": "v"})
        # the same (name, digest) again is deduplicated: the run keeps the first input and its tags
        mlflow.log_input(ds, context="other")
    r = client.get_run(run.info.run_id)
    assert len(r.inputs.dataset_inputs) == 1
    with mlflow.start_run(run_id=run.info.run_id):
        mlflow.log_input(ds2, context="eval")
    r = client.get_run(run.info.run_id)
    inputs = r.inputs.dataset_inputs
    assert len(inputs) == 2
    by_ctx = {}
    for di in inputs:
        tags = {t.key: t.value for t in di.tags}
        by_ctx[tags["mlflow.data.context"]] = (di, tags)
    assert set(by_ctx) == {"training", "eval"}
    di, tags = by_ctx["training"]
    assert tags == {"k": "v", "mlflow.data.context": "training"}
    assert di.dataset.name == "mydata"
    assert di.dataset.digest == ds.digest
    assert di.dataset.source_type == "code"
    assert '"num_rows": 3' in di.dataset.profile
    assert "mlflow_colspec" in di.dataset.schema
    assert by_ctx["eval"][0].dataset.digest == ds2.digest
    assert by_ctx["eval"][0].dataset.name == "mydata-eval"


def test_run_with_no_inputs_has_empty_inputs(experiment, client):
    run = client.create_run(experiment)
    r = client.get_run(run.info.run_id)
    assert r.inputs.dataset_inputs == []


def test_start_run_in_default_experiment(server, client):
    mlflow.set_experiment(experiment_id="0")
    with mlflow.start_run() as run:
        mlflow.log_param("in_default", "yes")
    assert client.get_run(run.info.run_id).info.experiment_id == "0"


def test_many_runs_numpy_values(experiment, client):
    # numpy scalars go through the client's float() conversion
    with mlflow.start_run() as run:
        mlflow.log_metric("np", np.float32(0.25))
        mlflow.log_metric("np64", np.float64(1e-300))
        mlflow.log_metric("big", 1e300)
    m = client.get_run(run.info.run_id).data.metrics
    assert m == {"np": 0.25, "np64": 1e-300, "big": 1e300}


@pytest.mark.reprise_only
def test_server_option_values_may_start_with_dashes(tmp_path):
    # `mlflow server --gunicorn-opts "--log-level debug"` is how MLflow's own docs pass options
    # through; Reprise accepts (and ignores) them the same way rather than failing to start.
    from conftest import start_server, stop_server

    url = start_server(
        tmp_path / "dashes", extra_args=("--gunicorn-opts", "--log-level debug", "--uvicorn-opts", "--timeout-keep-alive 5"))
    try:
        assert requests.get(url + "/health", timeout=10).text == "OK"
    finally:
        stop_server(url)


def test_bulk_interval_sampling_matches_the_reference(client, experiment, api):
    # 3.17.2 splits each run's points (by step, then timestamp) into max_results nearly equal runs,
    # keeps the first point of each, and ends on the run's last point.
    def log(steps, timestamps=(1,)):
        rid = client.create_run(experiment).info.run_id
        for s in steps:
            for t in timestamps:
                client.log_metric(rid, "m", 10.0, timestamp=t, step=s)
        return rid

    def sampled(run_ids, max_results, **kw):
        r = api.get("/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval",
                    params={"run_ids": run_ids, "metric_key": "m", "max_results": max_results, **kw})
        assert r.status_code == 200, r.text
        out = {}
        for m in r.json().get("metrics", []):
            out.setdefault(m["run_id"], []).append((m["step"], m["timestamp"]))
        return out

    r10, r11, r7 = log(range(10)), log(range(11)), log(range(7))
    assert sampled([r10], 5)[r10] == [(s, 1) for s in [0, 2, 4, 6, 9]]
    assert sampled([r11], 5)[r11] == [(s, 1) for s in [0, 3, 5, 7, 10]]
    assert sampled([r7], 5)[r7] == [(s, 1) for s in [0, 2, 4, 5, 6]]
    assert sampled([r10], 1)[r10] == [(9, 1)]
    assert sampled([r10], 3, start_step=2, end_step=8)[r10] == [(2, 1), (5, 1), (8, 1)]
    assert sampled([r10], 5, start_step=0, end_step=4)[r10] == [(s, 1) for s in range(5)]
    r20 = log(range(20))
    both = sampled([r10, r20], 5)
    assert both[r10] == [(s, 1) for s in [0, 2, 4, 6, 9]] and both[r20] == [(s, 1) for s in [0, 4, 8, 12, 19]]
    gappy = log([0, 1, 2, 50, 51, 52, 100])
    assert sampled([gappy], 4)[gappy] == [(0, 1), (2, 1), (51, 1), (100, 1)]
    twice = log(range(10), timestamps=(1, 2))
    assert sampled([twice], 5)[twice] == [(0, 1), (2, 1), (4, 1), (6, 1), (9, 2)]
