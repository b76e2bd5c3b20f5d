"""Error cases as the stock client surfaces them (spec §1.4, §6)."""

from __future__ import annotations

import uuid

import pytest

import mlflow
from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException, RestException
from mlflow.protos.databricks_pb2 import ErrorCode


def uniq(p):
    return f"{p}-{uuid.uuid4().hex[:12]}"


def test_missing_run(client):
    rid = uuid.uuid4().hex
    with pytest.raises(MlflowException) as ei:
        client.get_run(rid)
    assert ei.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert ei.value.get_http_status_code() == 404
    assert f"Run with id={rid} not found" in ei.value.message


def test_missing_experiment(client):
    with pytest.raises(MlflowException) as ei:
        client.get_experiment("987654321")
    assert ei.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert "No Experiment with id=987654321 exists" in ei.value.message


def test_invalid_experiment_id(client):
    with pytest.raises(MlflowException) as ei:
        client.get_experiment("abc")
    assert ei.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "Invalid experiment ID 'abc'" in ei.value.message


def test_duplicate_experiment(client):
    name = uniq("dup")
    client.create_experiment(name)
    with pytest.raises(MlflowException) as ei:
        client.create_experiment(name)
    assert ei.value.error_code == "RESOURCE_ALREADY_EXISTS"
    assert ei.value.get_http_status_code() == 400
    assert f"Experiment(name={name}) already exists" in ei.value.message


def test_duplicate_experiment_name_includes_deleted(client):
    name = uniq("dupdel")
    eid = client.create_experiment(name)
    client.delete_experiment(eid)
    with pytest.raises(MlflowException) as ei:
        client.create_experiment(name)
    assert ei.value.error_code == "RESOURCE_ALREADY_EXISTS"
    # and renaming onto a deleted experiment's name is refused too
    other = client.create_experiment(uniq("other"))
    with pytest.raises(MlflowException) as ei:
        client.rename_experiment(other, name)
    # The reference answers 400 BAD_REQUEST (a raw sqlite IntegrityError); any 400 code is fine.
    assert ei.value.get_http_status_code() == 400
    assert ei.value.error_code in ("BAD_REQUEST", "RESOURCE_ALREADY_EXISTS", "INVALID_PARAMETER_VALUE")


def test_duplicate_default_experiment(client):
    with pytest.raises(MlflowException) as ei:
        client.create_experiment("Default")
    assert ei.value.error_code == "RESOURCE_ALREADY_EXISTS"


def test_changed_param(experiment, client):
    run = client.create_run(experiment)
    rid = run.info.run_id
    client.log_param(rid, "p", "1")
    with pytest.raises(MlflowException) as ei:
        client.log_param(rid, "p", "2")
    assert ei.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "Changing param values is not allowed" in ei.value.message
    assert f"Param with key='p' was already logged with value='1' for run ID='{rid}'" in ei.value.message
    with pytest.raises(MlflowException) as ei:
        client.log_batch(rid, params=[Param("p", "3")])
    assert ei.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "Changing param values is not allowed" in ei.value.message
    assert client.get_run(rid).data.params == {"p": "1"}


def test_invalid_metric_name(experiment, client):
    rid = client.create_run(experiment).info.run_id
    for bad in ["a*b", "../x", "a//b", "/abs"]:
        with pytest.raises(MlflowException) as ei:
            client.log_metric(rid, bad, 1.0)
        assert ei.value.error_code == "INVALID_PARAMETER_VALUE", bad
    assert client.get_run(rid).data.metrics == {}


def test_log_batch_missing_run(client):
    with pytest.raises(MlflowException) as ei:
        client.log_batch(uuid.uuid4().hex, metrics=[Metric("m", 1.0, 1, 0)])
    assert ei.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_create_run_in_missing_experiment(client):
    with pytest.raises(MlflowException) as ei:
        client.create_run("987654321")
    assert ei.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_rename_deleted_experiment_is_invalid_state(client):
    eid = client.create_experiment(uniq("rendel"))
    client.delete_experiment(eid)
    new = uniq("newname")
    with pytest.raises(MlflowException):
        client.rename_experiment(eid, new)
    # The server answers INVALID_STATE (400 here, 500 from the reference; checked in test_raw_http).
    # The rename must not have happened.
    assert client.get_experiment(eid).name != new
    assert client.get_experiment_by_name(new) is None


def test_missing_metric_history_is_empty_not_error(experiment, client):
    rid = client.create_run(experiment).info.run_id
    assert client.get_metric_history(rid, "nothing") == []


def test_search_or_filter_rejected(experiment, client):
    with pytest.raises(MlflowException) as ei:
        client.search_runs([experiment], filter_string="params.a = '1' OR params.b = '2'")
    assert ei.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "Invalid clause(s) in filter string: 'OR'" in ei.value.message


def test_search_runs_bad_max_results(experiment, client):
    with pytest.raises(MlflowException) as ei:
        client.search_runs([experiment], max_results=50001)
    assert ei.value.error_code == "INVALID_PARAMETER_VALUE"


def test_delete_missing_tag(experiment, client):
    rid = client.create_run(experiment).info.run_id
    with pytest.raises(MlflowException) as ei:
        client.delete_tag(rid, "nope")
    assert ei.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_error_code_mapping_round_trip(client):
    """The client reconstructs error codes from the JSON envelope, not from the status alone."""
    with pytest.raises(RestException) as ei:
        client.get_run("0" * 32)
    assert ei.value.error_code == ErrorCode.Name(ErrorCode.RESOURCE_DOES_NOT_EXIST)
    with pytest.raises(RestException) as ei:
        client.create_experiment("")
    assert ei.value.error_code == "INVALID_PARAMETER_VALUE"


def test_start_run_with_unknown_run_id(experiment):
    with pytest.raises(MlflowException) as ei:
        mlflow.start_run(run_id=uuid.uuid4().hex)
    assert ei.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert mlflow.active_run() is None
