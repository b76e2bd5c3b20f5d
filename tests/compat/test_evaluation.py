"""MLflow 3 GenAI evaluation with the stock client (spec §2.5): evaluation datasets (records merged by
their inputs, tags, experiments) and the scorer registry."""

from __future__ import annotations

import uuid

import pytest

import mlflow
from mlflow.genai import datasets as gd
from mlflow.genai.scorers import Guidelines, delete_scorer, get_scorer, list_scorers

from conftest import IS_REFERENCE, assert_error


def test_dataset_lifecycle(experiment):
    ds = gd.create_dataset(name=f"qa-{uuid.uuid4().hex[:6]}", experiment_id=[experiment], tags={"owner": "ana"})
    assert ds.dataset_id.startswith("d-")
    ds.merge_records([
        {"inputs": {"q": "2+2"}, "expectations": {"answer": "4"}, "tags": {"k": "v"}},
        {"inputs": {"q": "3+3"}, "expectations": {"answer": "6", "note": "easy"}},
    ])
    # The same inputs update the stored record: expectations and tags merge key by key.
    ds.merge_records([{"inputs": {"q": "3+3"}, "expectations": {"answer": "six"}}])
    df = ds.to_df()
    assert len(df) == 2
    by_q = {row["inputs"]["q"]: row for _, row in df.iterrows()}
    assert by_q["3+3"]["expectations"] == {"answer": "six", "note": "easy"}
    assert by_q["2+2"]["expectations"] == {"answer": "4"} and by_q["2+2"]["tags"]["k"] == "v"
    assert all(rid.startswith("dr-") for rid in df["dataset_record_id"])

    got = gd.get_dataset(dataset_id=ds.dataset_id)
    assert got.name == ds.name and got.tags["owner"] == "ana"
    assert '"q": "string"' in got.schema and '"num_records": 2' in got.profile
    assert [d.dataset_id for d in gd.search_datasets(experiment_ids=[experiment])] == [ds.dataset_id]

    gd.set_dataset_tags(dataset_id=ds.dataset_id, tags={"stage": "dev"})
    gd.delete_dataset_tag(dataset_id=ds.dataset_id, key="owner")
    tags = gd.get_dataset(dataset_id=ds.dataset_id).tags
    assert tags.get("stage") == "dev" and "owner" not in tags

    other = mlflow.create_experiment(f"evals-{uuid.uuid4().hex[:6]}")
    gd.add_dataset_to_experiments(dataset_id=ds.dataset_id, experiment_ids=[other])
    assert [d.dataset_id for d in gd.search_datasets(experiment_ids=[other])] == [ds.dataset_id]
    gd.remove_dataset_from_experiments(dataset_id=ds.dataset_id, experiment_ids=[other])
    assert gd.search_datasets(experiment_ids=[other]) == []

    gd.delete_dataset(dataset_id=ds.dataset_id)
    with pytest.raises(mlflow.exceptions.MlflowException):
        gd.get_dataset(dataset_id=ds.dataset_id)


def test_dataset_refusals(api, experiment):
    r = api.post("/api/3.0/mlflow/datasets/create", json={"experiment_ids": [experiment]})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    r = api.get(f"/api/3.0/mlflow/datasets/d-{uuid.uuid4().hex}")
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    if IS_REFERENCE:
        return
    d = api.post("/api/3.0/mlflow/datasets/create", json={"name": "x", "experiment_ids": [experiment]}).json()["dataset"]["dataset_id"]
    for bad in ["not json", '{"a": 1}', '[{"expectations": {}}]', '[{"inputs": {}}]', '[{"inputs": {"q": 1}, "tags": [1]}]']:
        r = api.post(f"/api/3.0/mlflow/datasets/{d}/records", json={"records": bad})
        assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    r = api.post("/api/3.0/mlflow/datasets/search", json={"filter_string": "bogus = 'x'"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")


def test_scorer_registry(experiment):
    Guidelines(name="polite", guidelines="Be polite").register(name="polite")
    Guidelines(name="polite", guidelines="Be very polite").register(name="polite")
    Guidelines(name="brief", guidelines="Be brief").register(name="brief")
    assert sorted(s.name for s in list_scorers()) == ["brief", "polite"]
    assert get_scorer(name="polite").guidelines == "Be very polite"
    assert get_scorer(name="polite", version=1).guidelines == "Be polite"
    delete_scorer(name="polite", version=2)
    assert get_scorer(name="polite").guidelines == "Be polite"
    delete_scorer(name="polite", version="all")
    assert [s.name for s in list_scorers()] == ["brief"]
    with pytest.raises(mlflow.exceptions.MlflowException):
        get_scorer(name="polite")
