"""Search through the stock client: filter grammar, order_by, paging (spec §4.5, §5)."""

from __future__ import annotations

import time
import uuid

import pandas as pd
import pytest

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag, ViewType
from mlflow.exceptions import MlflowException


# =========================================================================== experiments


def test_fresh_server_has_only_default_experiment(fresh_server):
    c = MlflowClient(tracking_uri=fresh_server)
    exps = c.search_experiments(view_type=ViewType.ALL)
    assert [(e.experiment_id, e.name, e.lifecycle_stage) for e in exps] == [("0", "Default", "active")]
    assert exps[0].artifact_location == "mlflow-artifacts:/0"
    assert c.search_runs(["0"]) == []


def test_search_experiments_expected_table(fresh_server):
    """The §5.3 table (upstream test_search_experiments) on an empty store."""
    c = MlflowClient(tracking_uri=fresh_server)
    assert c.search_experiments()[0].name == "Default"
    ids = {}
    for name, tags, stage in [
        ("a", {"key": "value"}, "active"),
        ("ab", {"key": "vaLue"}, "active"),
        ("Abc", None, "active"),
        ("abcd", None, "deleted"),
    ]:
        time.sleep(0.02)  # distinct creation_time
        ids[name] = c.create_experiment(name, tags=tags)
        if stage == "deleted":
            c.delete_experiment(ids[name])

    def names(**kw):
        return [e.name for e in c.search_experiments(**kw)]

    assert names(filter_string="attribute.name = 'a'") == ["a"]
    assert names(filter_string="attribute.name != 'a'") == ["Abc", "ab", "Default"]
    assert names(filter_string="name LIKE 'a%'") == ["ab", "a"]
    assert names(filter_string="name ILIKE 'a%'") == ["Abc", "ab", "a"]
    assert names(filter_string="tag.key = 'value'") == ["a"]
    assert names(filter_string="tag.key != 'value'") == ["ab"]
    assert names(filter_string="tag.key ILIKE '%alu%'") == ["ab", "a"]
    assert names(filter_string="tags.key LIKE '%alu%'") == ["a"]
    assert names(filter_string=f"experiment_id IN ('{ids['a']}', '{ids['Abc']}')") == ["Abc", "a"]
    assert names(filter_string="name LIKE 'a%' AND tag.key = 'vaLue'") == ["ab"]

    assert names() == ["Abc", "ab", "a", "Default"]
    assert names(order_by=["name DESC"]) == ["ab", "a", "Default", "Abc"]
    assert names(order_by=["name ASC"]) == ["Abc", "Default", "a", "ab"]
    assert names(order_by=["experiment_id DESC"]) == ["Abc", "ab", "a", "Default"]
    assert names(order_by=["creation_time ASC"]) == ["Default", "a", "ab", "Abc"]

    page1 = c.search_experiments(max_results=2)
    assert [e.name for e in page1] == ["Abc", "ab"]
    assert page1.token
    page2 = c.search_experiments(max_results=2, page_token=page1.token)
    assert [e.name for e in page2] == ["a", "Default"]
    assert not page2.token

    assert names(view_type=ViewType.DELETED_ONLY) == ["abcd"]
    assert names(view_type=ViewType.ALL) == ["abcd", "Abc", "ab", "a", "Default"]
    assert names(view_type=ViewType.ALL, filter_string="name LIKE 'abc%'") == ["abcd"]

    a = c.get_experiment(ids["a"])
    assert names(filter_string=f"creation_time > {a.creation_time}") == ["Abc", "ab"]
    assert names(filter_string=f"creation_time <= {a.creation_time}") == ["a", "Default"]


def test_search_experiments_invalid(client):
    with pytest.raises(MlflowException) as ei:
        client.search_experiments(filter_string="name = 'a' OR name = 'b'")
    assert ei.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as ei:
        client.search_experiments(filter_string="attributes.name = 'a'")
    assert ei.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "Invalid entity type 'attributes'" in ei.value.message
    with pytest.raises(MlflowException) as ei:
        client.search_experiments(order_by=["nope DESC"])
    assert ei.value.error_code == "INVALID_PARAMETER_VALUE"


def test_mlflow_search_experiments_filter(client):
    prefix = f"mse-{uuid.uuid4().hex[:8]}"
    e1 = client.create_experiment(f"{prefix}-1", tags={"grp": "x"})
    time.sleep(0.01)
    e2 = client.create_experiment(f"{prefix}-2", tags={"grp": "y"})
    got = mlflow.search_experiments(filter_string=f"name LIKE '{prefix}%'")
    assert [e.experiment_id for e in got] == [e2, e1]
    got = mlflow.search_experiments(filter_string=f"name LIKE '{prefix}%' AND tags.grp = 'x'")
    assert [e.experiment_id for e in got] == [e1]


# =========================================================================== runs


@pytest.fixture()
def run_set(experiment, client):
    """Four runs with distinct attributes; start_time 1000..4000 ms."""
    eid = experiment
    spec = {
        "a": dict(start=1000, name="alpha-run", status="FINISHED",
                  metrics={"loss": 0.5, "acc": 0.9}, params={"model": "lr", "alpha": "0.1"}, tags={"team": "red"}),
        "b": dict(start=2000, name="beta-run", status="RUNNING",
                  metrics={"loss": 0.2}, params={"model": "rf", "alpha": "0.2"}, tags={"team": "blue"}),
        "c": dict(start=3000, name="gamma", status="FAILED",
                  metrics={"loss": float("nan")}, params={"model": "LR"}, tags={"team": "Red"}),
        "d": dict(start=4000, name="delta", status="KILLED",
                  metrics={}, params={"model": "svm"}, tags={}),
    }
    ids = {}
    ts = int(time.time() * 1000)
    for k, s in spec.items():
        run = client.create_run(eid, start_time=s["start"], run_name=s["name"])
        rid = run.info.run_id
        ids[k] = rid
        client.log_batch(
            rid,
            metrics=[Metric(mk, mv, ts, 0) for mk, mv in s["metrics"].items()],
            params=[Param(pk, pv) for pk, pv in s["params"].items()],
            tags=[RunTag(tk, tv) for tk, tv in s["tags"].items()],
        )
    train = mlflow.data.from_pandas(pd.DataFrame({"x": [1, 2], "y": [0, 1]}), name="train_ds")
    evald = mlflow.data.from_pandas(pd.DataFrame({"x": [3, 4, 5], "y": [1, 0, 1]}), name="eval_ds")
    from mlflow.entities import DatasetInput, InputTag

    client.log_inputs(ids["a"], datasets=[DatasetInput(train._to_mlflow_entity(),
                                                      [InputTag("mlflow.data.context", "training")])])
    client.log_inputs(ids["d"], datasets=[DatasetInput(evald._to_mlflow_entity(),
                                                      [InputTag("mlflow.data.context", "evaluation")])])
    for k, s in spec.items():
        if s["status"] != "RUNNING":
            client.set_terminated(ids[k], s["status"], end_time=s["start"] + 500)
    return eid, ids, {"train": train, "eval": evald}


def _ids(client, eid, **kw):
    return [r.info.run_id for r in client.search_runs([eid], **kw)]


def test_search_runs_default_order(run_set, client):
    eid, ids, _ = run_set
    assert _ids(client, eid) == [ids["d"], ids["c"], ids["b"], ids["a"]]


@pytest.mark.parametrize("flt, expected", [
    ("metrics.loss < 0.4", "b"),
    ("metrics.loss > 0.1", "ba"),
    ("metrics.loss = 0.5", "a"),
    ("metrics.loss >= 0.2 and metrics.loss <= 0.2", "b"),
    ("metrics.loss != 0.5", "cb"),
    ("metrics.acc > 0", "a"),
    ("metric.loss < 100", "ba"),
    ("params.model = 'lr'", "a"),
    ("params.model != 'lr'", "dcb"),
    ("params.model LIKE 'l%'", "a"),
    ("params.model ILIKE 'l%'", "ca"),
    ("params.model LIKE '_r'", "a"),
    ("param.alpha = '0.2'", "b"),
    ("params.alpha IS NULL", "dc"),
    ("params.alpha IS NOT NULL", "ba"),
    ("tags.team = 'red'", "a"),
    ("tags.team != 'red'", "cb"),
    ("tags.team ILIKE 'RED'", "ca"),
    ("tags.team LIKE '%e%'", "cba"),
    ("tags.team IS NULL", "d"),
    ("tag.team IS NOT NULL", "cba"),
    ("tags.`team` = 'blue'", "b"),
    ("attributes.status = 'FINISHED'", "a"),
    ("status != 'RUNNING'", "dca"),
    ("attributes.run_name = 'gamma'", "c"),
    ("run_name LIKE '%-run'", "ba"),
    ("attributes.run_name ILIKE 'ALPHA%'", "a"),
    ("tags.mlflow.runName = 'delta'", "d"),
    ("attributes.start_time >= 2000 and attributes.start_time < 4000", "cb"),
    ("attributes.start_time > 4000", ""),
    ("attributes.end_time = 1500", "a"),
    ("created > 3500", "d"),
    ("metrics.loss < 1 and params.model = 'lr' and tags.team = 'red'", "a"),
    ("metrics.loss < 1 AND params.model = 'rf'", "b"),
    ("datasets.name = 'train_ds'", "a"),
    ("datasets.name IN ('train_ds', 'eval_ds')", "da"),
    ("datasets.context = 'evaluation'", "d"),
    ("dataset.name LIKE '%_ds'", "da"),
])
def test_search_runs_filters(run_set, client, flt, expected):
    eid, ids, _ = run_set
    assert _ids(client, eid, filter_string=flt) == [ids[k] for k in expected]


def test_search_runs_run_id_in(run_set, client):
    eid, ids, _ = run_set
    flt = f"attributes.run_id IN ('{ids['a']}', '{ids['c']}')"
    assert _ids(client, eid, filter_string=flt) == [ids["c"], ids["a"]]
    flt = f"run_id NOT IN ('{ids['a']}', '{ids['c']}')"
    assert _ids(client, eid, filter_string=flt) == [ids["d"], ids["b"]]
    flt = f"attributes.run_id = '{ids['b']}'"
    assert _ids(client, eid, filter_string=flt) == [ids["b"]]


def test_search_runs_dataset_digest(run_set, client):
    eid, ids, ds = run_set
    assert _ids(client, eid, filter_string=f"datasets.digest = '{ds['train'].digest}'") == [ids["a"]]
    runs = client.search_runs([eid], filter_string="datasets.name = 'train_ds'")
    di = runs[0].inputs.dataset_inputs
    assert [d.dataset.name for d in di] == ["train_ds"]
    assert {t.key: t.value for t in di[0].tags} == {"mlflow.data.context": "training"}


@pytest.mark.parametrize("order_by, expected", [
    (["metrics.loss DESC"], "abcd"),
    (["metrics.loss ASC"], "bacd"),
    (["metrics.loss"], "bacd"),
    (["params.model ASC"], "cabd"),
    (["params.model DESC"], "dbac"),
    (["params.alpha DESC"], "badc"),
    (["tags.team DESC"], "abcd"),
    (["tags.team ASC"], "cbad"),
    (["attributes.start_time ASC"], "abcd"),
    (["attributes.start_time DESC"], "dcba"),
    (["start_time"], "abcd"),
    (["run_name"], "abdc"),
    (["attributes.run_name DESC"], "cdba"),
    (["attributes.status ASC"], "cadb"),
    (["attributes.end_time DESC"], "dcab"),
    (["metrics.acc DESC", "params.model ASC"], "acbd"),
])
def test_search_runs_order_by(run_set, client, order_by, expected):
    eid, ids, _ = run_set
    assert _ids(client, eid, order_by=order_by) == [ids[k] for k in expected]


def test_search_runs_order_tie_breakers(experiment, client):
    ids = []
    for _ in range(4):
        run = client.create_run(experiment, start_time=7777)
        client.log_metric(run.info.run_id, "tie", 1.0, timestamp=1, step=0)
        ids.append(run.info.run_id)
    late = client.create_run(experiment, start_time=8888)
    client.log_metric(late.info.run_id, "tie", 1.0, timestamp=1, step=0)
    got = _ids(client, experiment, order_by=["metrics.tie DESC"])
    # ties: start_time DESC, then run_id ASC
    assert got == [late.info.run_id] + sorted(ids)


def test_search_runs_across_experiments(client):
    e1 = client.create_experiment(f"multi-{uuid.uuid4().hex[:8]}")
    e2 = client.create_experiment(f"multi-{uuid.uuid4().hex[:8]}")
    r1 = client.create_run(e1, start_time=1).info.run_id
    r2 = client.create_run(e2, start_time=2).info.run_id
    assert [r.info.run_id for r in client.search_runs([e1, e2])] == [r2, r1]
    assert [r.info.run_id for r in client.search_runs([e1, "987654321"])] == [r1]


def test_search_runs_invalid_filters(experiment, client):
    for flt, code_part in [
        ("metrics.loss > 1 OR metrics.loss < 0", "Invalid clause(s) in filter string"),
        ("metrics.loss > 'abc'", "Expected numeric value type for metric"),
        ("params.model > 'a'", "Invalid comparator '>'"),
        ("foo.bar = 'x'", "Invalid entity type 'foo'"),
        ("attributes.unknown = 'x'", "Invalid attribute key 'unknown'"),
        ("params.model = lr", "not quoted"),
    ]:
        with pytest.raises(MlflowException) as ei:
            client.search_runs([experiment], filter_string=flt)
        assert ei.value.error_code == "INVALID_PARAMETER_VALUE", flt
        assert code_part in ei.value.message, (flt, ei.value.message)


def test_search_runs_like_case_sensitivity(experiment, client):
    r = client.create_run(experiment, run_name="MixedCase")
    client.log_param(r.info.run_id, "p", "ValUe")
    assert _ids(client, experiment, filter_string="params.p LIKE 'val%'") == []
    assert _ids(client, experiment, filter_string="params.p ILIKE 'val%'") == [r.info.run_id]
    assert _ids(client, experiment, filter_string="params.p = 'value'") == []
    assert _ids(client, experiment, filter_string="run_name LIKE 'mixed%'") == []
    assert _ids(client, experiment, filter_string="run_name ILIKE 'mixed%'") == [r.info.run_id]


def test_search_runs_pagination_300(experiment, client):
    n = 300
    base = 1_600_000_000_000
    ids = []
    for i in range(n):
        rid = client.create_run(experiment, start_time=base + i).info.run_id
        client.log_batch(rid, metrics=[Metric("i", float(i), base, 0)],
                         params=[Param("parity", "even" if i % 2 == 0 else "odd")])
        ids.append(rid)
    expected = list(reversed(ids))

    got, token, pages = [], None, 0
    while True:
        page = client.search_runs([experiment], max_results=100, page_token=token)
        pages += 1
        got += [r.info.run_id for r in page]
        token = page.token
        if not token:
            break
        assert pages < 10
    assert pages == 3
    assert got == expected

    # uneven page size
    got, token = [], None
    for _ in range(20):
        page = client.search_runs([experiment], max_results=7, order_by=["metrics.i ASC"],
                                  filter_string="metrics.i >= 250", page_token=token)
        got += [r.info.run_id for r in page]
        token = page.token
        if not token:
            break
    assert got == ids[250:]

    assert len(client.search_runs([experiment], max_results=50000)) == n
    evens = client.search_runs([experiment], filter_string="params.parity = 'even'", max_results=1000)
    assert len(evens) == 150
    assert [r.info.run_id for r in evens] == expected[1::2]

    df = mlflow.search_runs(experiment_ids=[experiment], order_by=["metrics.i DESC"])
    assert isinstance(df, pd.DataFrame)
    assert len(df) == n
    assert list(df["run_id"]) == expected
    assert list(df["metrics.i"]) == [float(i) for i in reversed(range(n))]
    assert set(df["params.parity"]) == {"even", "odd"}

    df = mlflow.search_runs(experiment_ids=[experiment], filter_string="metrics.i < 3",
                            order_by=["metrics.i ASC"])
    assert list(df["run_id"]) == ids[:3]


def test_mlflow_search_runs_by_experiment_name(client):
    name = f"byname-{uuid.uuid4().hex[:8]}"
    eid = client.create_experiment(name)
    rid = client.create_run(eid).info.run_id
    client.log_metric(rid, "m", 1.5)
    runs = mlflow.search_runs(experiment_names=[name], output_format="list")
    assert [r.info.run_id for r in runs] == [rid]
    assert runs[0].data.metrics == {"m": 1.5}


def test_search_runs_results_carry_data(run_set, client):
    eid, ids, _ = run_set
    runs = client.search_runs([eid], filter_string="attributes.run_name = 'alpha-run'")
    assert len(runs) == 1
    r = runs[0]
    assert r.data.metrics == {"loss": 0.5, "acc": 0.9}
    assert r.data.params == {"model": "lr", "alpha": "0.1"}
    assert r.data.tags["team"] == "red"
    assert r.info.status == "FINISHED"
    assert r.info.end_time == 1500
