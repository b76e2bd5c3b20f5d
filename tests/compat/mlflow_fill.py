"""Fills the MLflow server at MLFLOW_TRACKING_URI the way a team's months of work would, with the stock
client only: autologged sklearn runs with models, nested runs, a 100,000-point metric, NaN and ±inf,
datasets, artifacts, a deleted run and experiment, a registry with versions, stages, aliases and tags,
a prompt and a signed webhook. Prints what it made as JSON on its last line (for test_import.py)."""
from __future__ import annotations

import json
import math
import sys

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Metric
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

points = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
client = MlflowClient()
made: dict = {}

exp = mlflow.set_experiment("imported-iris")
client.set_experiment_tag(exp.experiment_id, "team", "vision")
made["experiment_id"] = exp.experiment_id

X, y = load_iris(return_X_y=True, as_frame=True)
mlflow.sklearn.autolog(log_models=False)
for i, c in enumerate((0.1, 1.0)):
    with mlflow.start_run(run_name=f"logreg-{i}") as run:
        model = LogisticRegression(C=c, max_iter=300).fit(X, y)
        mlflow.log_input(mlflow.data.from_pandas(X.assign(target=y), name="iris", targets="target"), context="training")
        mlflow.sklearn.log_model(model, name="model", registered_model_name="iris-classifier", input_example=X.iloc[:2])
        mlflow.log_text(f"notes for run {i}\n", "notes/readme.txt")
        mlflow.log_dict({"c": c}, "config/params.json")
        made.setdefault("model_runs", []).append(run.info.run_id)
mlflow.sklearn.autolog(disable=True)

with mlflow.start_run(run_name="sweep") as parent:
    for k in range(3):
        with mlflow.start_run(run_name=f"trial-{k}", nested=True):
            mlflow.log_param("k", k)
            mlflow.log_metric("loss", 1.0 / (k + 1), step=k)
    made["parent"] = parent.info.run_id

with mlflow.start_run(run_name="long-history") as long_run:
    batch = []
    for step in range(points):
        batch.append(Metric("train_loss", math.exp(-step / 20000.0) + (step % 7) * 1e-4, 1_700_000_000_000 + step, step))
        if len(batch) == 1000:
            client.log_batch(long_run.info.run_id, metrics=batch)
            batch = []
    if batch:
        client.log_batch(long_run.info.run_id, metrics=batch)
    client.log_batch(long_run.info.run_id, metrics=[
        Metric("odd", float("nan"), 1_700_000_000_000, 0), Metric("odd", float("inf"), 1_700_000_000_001, 1),
        Metric("odd", float("-inf"), 1_700_000_000_002, 2), Metric("odd", 0.5, 1_700_000_000_003, 3)])
    made["long_run"] = long_run.info.run_id

with mlflow.start_run(run_name="discarded") as gone:
    mlflow.log_param("p", "x")
client.delete_run(gone.info.run_id)
made["deleted_run"] = gone.info.run_id

old = client.create_experiment("retired")
with mlflow.start_run(experiment_id=old, run_name="old-run"):
    mlflow.log_metric("m", 1.0)
client.delete_experiment(old)

client.set_registered_model_alias("iris-classifier", "champion", "1")
client.transition_model_version_stage("iris-classifier", "2", "Staging")
client.set_model_version_tag("iris-classifier", "1", "validated", "true")
client.set_registered_model_tag("iris-classifier", "owner", "vision-team")
client.update_model_version("iris-classifier", "2", description="candidate with C=1.0")

mlflow.genai.register_prompt(name="summarize", template="Summarize in one line: {{text}}", commit_message="first")
made["prompt"] = "summarize"

hook = client.create_webhook(
    name="deploy-hook", url="https://127.0.0.1:9/mlflow-hook", events=["model_version.created"], secret="s3cret-value")
made["webhook_id"] = hook.webhook_id

print(json.dumps(made))
