"""MLflow 3 logged models: sklearn autolog and log_model/load_model (spec §2.2, §4.6, §4.7, §4.9)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import mlflow
import mlflow.pyfunc
import mlflow.sklearn
from mlflow.entities import LoggedModelStatus


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return X, y


TRAINING_METRICS = {
    "training_precision_score", "training_recall_score", "training_f1_score",
    "training_accuracy_score", "training_log_loss", "training_roc_auc", "training_score",
}


def test_sklearn_autolog_end_to_end(experiment, client, iris, tmp_path):
    X, y = iris
    mlflow.sklearn.autolog()
    try:
        model = LogisticRegression(max_iter=300, C=0.5)
        model.fit(X, y)
    finally:
        mlflow.sklearn.autolog(disable=True)
    run = mlflow.last_active_run()
    assert run is not None
    rid = run.info.run_id
    r = client.get_run(rid)
    assert r.info.experiment_id == experiment
    assert r.info.status == "FINISHED"
    # params: all estimator params
    assert r.data.params["C"] == "0.5"
    assert r.data.params["max_iter"] == "300"
    assert "solver" in r.data.params
    # tags
    assert r.data.tags["mlflow.autologging"] == "sklearn"
    assert r.data.tags["estimator_name"] == "LogisticRegression"
    assert r.data.tags["estimator_class"] == "sklearn.linear_model._logistic.LogisticRegression"
    # training metrics
    assert TRAINING_METRICS <= set(r.data.metrics), r.data.metrics
    acc = r.data.metrics["training_accuracy_score"]
    assert acc == pytest.approx(float((model.predict(X) == y).mean()))
    assert r.data.metrics["training_score"] == pytest.approx(model.score(X, y))
    # dataset input
    dsi = r.inputs.dataset_inputs
    assert len(dsi) == 1
    assert {t.key: t.value for t in dsi[0].tags}["mlflow.data.context"] == "train"
    assert dsi[0].dataset.name == "dataset"
    assert dsi[0].dataset.digest
    # logged model, linked as a run output
    outs = r.outputs.model_outputs
    assert len(outs) == 1 and outs[0].step == 0
    model_id = outs[0].model_id
    assert model_id.startswith("m-")
    lm = mlflow.get_logged_model(model_id)
    assert lm.name == "model"
    assert lm.source_run_id == rid
    assert lm.experiment_id == experiment
    assert lm.status == LoggedModelStatus.READY
    assert lm.artifact_location == f"mlflow-artifacts:/{experiment}/models/{model_id}/artifacts"
    assert lm.params["C"] == "0.5"
    # metrics linked to the model carry dataset and model ids
    lm_metrics = {m.key: m for m in lm.metrics}
    assert TRAINING_METRICS <= set(lm_metrics)
    m = lm_metrics["training_score"]
    assert m.model_id == model_id and m.run_id == rid
    assert m.dataset_name == "dataset" and m.dataset_digest == dsi[0].dataset.digest
    # run artifacts written by autolog
    names = {a.path for a in client.list_artifacts(rid)}
    assert {"estimator.html", "training_confusion_matrix.png"} <= names
    # the model loads back and predicts identically
    loaded = mlflow.sklearn.load_model(f"models:/{model_id}")
    assert np.array_equal(loaded.predict(X), model.predict(X))
    loaded2 = mlflow.pyfunc.load_model(f"runs:/{rid}/model")
    assert np.array_equal(loaded2.predict(X), model.predict(X))


def test_log_model_and_load(experiment, client, iris, tmp_path):
    X, y = iris
    model = LogisticRegression(max_iter=300).fit(X, y)
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(model, name="model", input_example=X[:3])
    rid = run.info.run_id
    assert info.model_id.startswith("m-")
    assert info.model_uri == f"models:/{info.model_id}"
    assert info.run_id == rid
    assert "sklearn" in info.flavors and "python_function" in info.flavors

    expected = model.predict(X)
    via_runs = mlflow.pyfunc.load_model(f"runs:/{rid}/model")
    assert np.array_equal(np.asarray(via_runs.predict(X)), expected)
    via_models = mlflow.sklearn.load_model(info.model_uri)
    assert np.array_equal(via_models.predict(X), expected)
    assert np.array_equal(via_models.predict_proba(X), model.predict_proba(X))

    lm = mlflow.get_logged_model(info.model_id)
    assert lm.source_run_id == rid and lm.name == "model"
    assert lm.status == LoggedModelStatus.READY
    r = client.get_run(rid)
    assert [o.model_id for o in r.outputs.model_outputs] == [info.model_id]
    # model files are under the experiment's models/ location
    files = {a.path.split("/")[-1] for a in mlflow.artifacts.list_artifacts(artifact_uri=lm.artifact_location)}
    assert {"MLmodel", "requirements.txt", "python_env.yaml", "conda.yaml", "input_example.json"} <= files
    mlmodel = mlflow.artifacts.load_text(f"{lm.artifact_location}/MLmodel")
    assert f"model_id: {info.model_id}" in mlmodel
    # the logged models are searchable
    found = mlflow.search_logged_models(experiment_ids=[experiment], output_format="list")
    assert [m.model_id for m in found] == [info.model_id]


def test_pyfunc_log_model_without_run(experiment, client, iris):
    class Doubler(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return np.asarray(model_input) * 2

    info = mlflow.pyfunc.log_model(name="pymodel", python_model=Doubler(), input_example=np.array([[1.0, 2.0]]))
    assert mlflow.active_run() is None
    lm = mlflow.get_logged_model(info.model_id)
    assert lm.source_run_id is None or lm.source_run_id == ""
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    out = loaded.predict(np.array([[1.0, 2.0], [3.0, 4.0]]))
    assert np.array_equal(np.asarray(out), np.array([[2.0, 4.0], [6.0, 8.0]]))


def test_two_models_in_one_run_resolve_by_name(experiment, iris):
    X, y = iris
    m1 = LogisticRegression(max_iter=300, C=0.01).fit(X, y)
    m2 = LogisticRegression(max_iter=300, C=10.0).fit(X, y)
    with mlflow.start_run() as run:
        i1 = mlflow.sklearn.log_model(m1, name="small")
        i2 = mlflow.sklearn.log_model(m2, name="large")
    assert i1.model_id != i2.model_id
    l1 = mlflow.sklearn.load_model(f"runs:/{run.info.run_id}/small")
    l2 = mlflow.sklearn.load_model(f"runs:/{run.info.run_id}/large")
    assert l1.C == 0.01 and l2.C == 10.0
    assert np.array_equal(l1.predict_proba(X), m1.predict_proba(X))
    assert np.array_equal(l2.predict_proba(X), m2.predict_proba(X))


def test_search_logged_models_by_dataset(experiment, client):
    a = client.create_logged_model(experiment)
    b = client.create_logged_model(experiment)
    run = client.create_run(experiment).info.run_id
    client.log_metric(run, key="acc", value=0.9, dataset_name="eval", dataset_digest="123", model_id=a.model_id)
    client.log_metric(run, key="acc", value=0.8, dataset_name="train", dataset_digest="456", model_id=b.model_id)

    def names(datasets):
        return [m.model_id for m in client.search_logged_models(experiment_ids=[experiment], datasets=datasets)]

    assert names([{"dataset_name": "eval", "dataset_digest": "123"}]) == [a.model_id]
    assert names([{"dataset_name": "eval", "dataset_digest": "999"}]) == []
    both = [{"dataset_name": "eval", "dataset_digest": "123"}, {"dataset_name": "train", "dataset_digest": "456"}]
    assert sorted(names(both)) == sorted([a.model_id, b.model_id])
    # A dataset is its name and digest: an entry without a digest names none (as 3.17.2).
    assert names([{"dataset_name": "eval"}]) == []
