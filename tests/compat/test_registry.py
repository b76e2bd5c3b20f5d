"""Model registry through the stock client and raw HTTP (spec §2.6, §4.8, §4.9, §5.4, §5.5, §6).

Notes on where the 3.17.2 reference defines behaviour the spec leaves open are kept next to
the assertions that depend on them.
"""

from __future__ import annotations

import json
import time
import uuid

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import mlflow
import mlflow.pyfunc
import mlflow.sklearn
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from conftest import IS_REFERENCE, assert_error

R = "/api/2.0/mlflow"
PROMPT_TAG = "mlflow.prompt.is_prompt"


def uniq(prefix: str = "rm") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def err_code(excinfo) -> str:
    return excinfo.value.error_code


def tick():
    """Make the next write land on a later millisecond timestamp."""
    time.sleep(0.02)


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


@pytest.fixture(scope="module")
def logged(server, iris):
    """Two sklearn models logged as MLflow 3 logged models in one run of a dedicated experiment.

    Returns a dict with run_id, experiment_id, and per model: model, model_id, artifact_location.
    """
    X, y = iris
    c = MlflowClient(tracking_uri=server)
    exp_id = c.create_experiment(uniq("regexp"))
    m_small = LogisticRegression(max_iter=300, C=0.01).fit(X, y)
    m_large = LogisticRegression(max_iter=300, C=10.0).fit(X, y)
    with mlflow.start_run(experiment_id=exp_id) as run:
        i_small = mlflow.sklearn.log_model(m_small, name="small")
        i_large = mlflow.sklearn.log_model(m_large, name="large")
    assert not np.array_equal(m_small.predict_proba(X), m_large.predict_proba(X))
    out = {"run_id": run.info.run_id, "experiment_id": exp_id}
    for key, m, info in (("small", m_small, i_small), ("large", m_large, i_large)):
        lm = mlflow.get_logged_model(info.model_id)
        out[key] = {"model": m, "model_id": info.model_id, "artifact_location": lm.artifact_location}
    return out


@pytest.fixture()
def run_src(client, experiment):
    """A plain run; returns (run_id, artifact_uri) for mlflow-artifacts model version sources."""
    run = client.create_run(experiment)
    client.set_terminated(run.info.run_id)
    return run.info.run_id, run.info.artifact_uri


def new_version(client: MlflowClient, name: str, run_src, sub: str = "model", **kw):
    run_id, art = run_src
    return client.create_model_version(name, f"{art}/{sub}", run_id=run_id, **kw)


def raw_rm(api, name: str) -> dict:
    r = api.get(f"{R}/registered-models/get", params={"name": name})
    assert r.status_code == 200, r.text
    return r.json()["registered_model"]


def raw_mv(api, name: str, version) -> dict:
    r = api.get(f"{R}/model-versions/get", params={"name": name, "version": str(version)})
    assert r.status_code == 200, r.text
    return r.json()["model_version"]


# ============================================================================ registered models


def test_create_registered_model_with_tags_and_description(client, api):
    name = uniq()
    before = int(time.time() * 1000)
    rm = client.create_registered_model(name, tags={"k1": "v1", "team": "ml"}, description="my model")
    after = int(time.time() * 1000)
    assert rm.name == name
    assert rm.description == "my model"
    assert rm.tags == {"k1": "v1", "team": "ml"}
    assert before - 1000 <= rm.creation_timestamp <= after + 1000
    assert rm.last_updated_timestamp == rm.creation_timestamp
    assert rm.latest_versions == []
    assert rm.aliases == {}

    got = client.get_registered_model(name)
    assert (got.name, got.description, got.tags) == (name, "my model", {"k1": "v1", "team": "ml"})
    assert got.creation_timestamp == rm.creation_timestamp
    assert got.last_updated_timestamp == rm.last_updated_timestamp

    # raw shape: int64 as numbers, tags as a {key,value} list, empty lists omitted
    body = raw_rm(api, name)
    assert body["name"] == name
    assert isinstance(body["creation_timestamp"], int)
    assert isinstance(body["last_updated_timestamp"], int)
    assert body["description"] == "my model"
    assert sorted((t["key"], t["value"]) for t in body["tags"]) == [("k1", "v1"), ("team", "ml")]
    assert "latest_versions" not in body
    assert "aliases" not in body


def test_create_registered_model_raw_minimal(api):
    name = uniq()
    r = api.post(f"{R}/registered-models/create", json={"name": name})
    assert r.status_code == 200, r.text
    rm = r.json()["registered_model"]
    assert rm["name"] == name
    assert rm["creation_timestamp"] == rm["last_updated_timestamp"]
    assert "tags" not in rm
    assert "description" not in rm or rm["description"] == ""


def test_get_missing_registered_model(client, api):
    name = uniq("missing")
    r = api.get(f"{R}/registered-models/get", params={"name": name})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST", f"Registered Model with name={name} not found")
    with pytest.raises(MlflowException) as e:
        client.get_registered_model(name)
    assert err_code(e) == "RESOURCE_DOES_NOT_EXIST"


def test_duplicate_registered_model(client, api):
    name = uniq()
    client.create_registered_model(name)
    r = api.post(f"{R}/registered-models/create", json={"name": name})
    assert_error(r, 400, "RESOURCE_ALREADY_EXISTS", f"Registered Model (name={name}) already exists")
    with pytest.raises(MlflowException) as e:
        client.create_registered_model(name)
    assert err_code(e) == "RESOURCE_ALREADY_EXISTS"


@pytest.mark.parametrize("bad", ["a/b", "a:b", "with/slash/x"])
def test_invalid_registered_model_names(api, client, bad):
    msg = f"Invalid model name '{bad}'. Names cannot contain '/' or ':'."
    r = api.post(f"{R}/registered-models/create", json={"name": bad})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", msg)
    with pytest.raises(MlflowException) as e:
        client.create_registered_model(bad)
    assert err_code(e) == "INVALID_PARAMETER_VALUE"
    r = api.get(f"{R}/registered-models/get", params={"name": bad})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", msg)


def test_empty_registered_model_name(api, client):
    r = api.post(f"{R}/registered-models/create", json={"name": ""})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'name'")
    r = api.post(f"{R}/registered-models/create", json={})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'name'")
    r = api.post(f"{R}/registered-models/create", json={"name": "  "})  # blank
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'name'")
    with pytest.raises(MlflowException) as e:
        client.create_registered_model("")
    assert err_code(e) == "INVALID_PARAMETER_VALUE"


def test_rename_registered_model(client, api, run_src):
    old, new = uniq("old"), uniq("new")
    client.create_registered_model(old, tags={"a": "1"}, description="d")
    new_version(client, old, run_src)
    new_version(client, old, run_src)
    client.set_registered_model_alias(old, "champ", "2")
    tick()
    client.rename_registered_model(old, new)  # the client returns None
    with pytest.raises(MlflowException) as e:
        client.get_registered_model(old)
    assert err_code(e) == "RESOURCE_DOES_NOT_EXIST"
    got = client.get_registered_model(new)
    assert got.tags == {"a": "1"} and got.description == "d"
    assert got.aliases == {"champ": "2"}
    # versions move with the model
    mvs = client.search_model_versions(f"name = '{new}'")
    assert sorted((m.name, m.version) for m in mvs) == [(new, "1"), (new, "2")]
    assert client.search_model_versions(f"name = '{old}'") == []
    assert client.get_model_version(new, "1").name == new
    assert client.get_model_version_by_alias(new, "champ").version == "2"
    r = api.get(f"{R}/model-versions/get", params={"name": old, "version": "1"})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    # next version continues the numbering
    assert new_version(client, new, run_src).version == "3"


def test_rename_to_existing_name_fails(client, api):
    a, b = uniq("a"), uniq("b")
    client.create_registered_model(a)
    client.create_registered_model(b)
    r = api.post(f"{R}/registered-models/rename", json={"name": a, "new_name": b})
    assert_error(r, 400, "RESOURCE_ALREADY_EXISTS")
    with pytest.raises(MlflowException) as e:
        client.rename_registered_model(a, b)
    assert err_code(e) == "RESOURCE_ALREADY_EXISTS"
    assert client.get_registered_model(a).name == a
    assert client.get_registered_model(b).name == b


def test_rename_errors(client, api):
    name = uniq()
    client.create_registered_model(name)
    renamed = uniq("renamed")
    r = api.post(f"{R}/registered-models/rename", json={"name": name, "new_name": renamed})
    assert r.status_code == 200, r.text
    assert r.json()["registered_model"]["name"] == renamed
    name = renamed
    r = api.post(f"{R}/registered-models/rename", json={"name": name, "new_name": "x/y"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    r = api.post(f"{R}/registered-models/rename", json={"name": uniq("nope"), "new_name": uniq()})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")


def test_update_registered_model_description(client, api):
    name = uniq()
    rm = client.create_registered_model(name, description="first")
    tick()
    upd = client.update_registered_model(name, description="second")
    assert upd.name == name and upd.description == "second"
    got = client.get_registered_model(name)
    assert got.description == "second"
    assert got.last_updated_timestamp > rm.last_updated_timestamp
    assert got.creation_timestamp == rm.creation_timestamp
    r = api.patch(f"{R}/registered-models/update", json={"name": name, "description": "third"})
    assert r.status_code == 200, r.text
    assert r.json()["registered_model"]["description"] == "third"
    r = api.patch(f"{R}/registered-models/update", json={"name": uniq("nope"), "description": "x"})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")


def test_delete_registered_model_cascades(client, api, run_src):
    name = uniq()
    client.create_registered_model(name, tags={"t": "1"})
    new_version(client, name, run_src, tags={"vt": "x"})
    new_version(client, name, run_src)
    client.set_registered_model_alias(name, "champ", "1")
    client.delete_registered_model(name)

    r = api.get(f"{R}/registered-models/get", params={"name": name})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    for v in ("1", "2"):
        r = api.get(f"{R}/model-versions/get", params={"name": name, "version": v})
        assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    assert client.search_model_versions(f"name = '{name}'") == []
    assert client.search_registered_models(f"name = '{name}'") == []
    r = api.get(f"{R}/registered-models/alias", params={"name": name, "alias": "champ"})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST", f"Registered Model with name={name} not found")
    # deleting again: not found
    r = api.delete(f"{R}/registered-models/delete", json={"name": name})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")

    # the name can be reused; the hard delete restarts version numbering and drops tags
    rm = client.create_registered_model(name)
    assert rm.tags == {} and rm.aliases == {}
    assert new_version(client, name, run_src).version == "1"
    assert client.get_model_version(name, "1").tags == {}


# -------------------------------------------------------------------- search registered models


@pytest.fixture()
def rm_family(client):
    """Registered models <p>-a, <p>-ab, <p>-Abc (created in that order) with tags."""
    p = uniq("fam")
    names = {}
    for suffix, tags in (("a", {"key": "value"}), ("ab", {"key": "vaLue", "x": "1"}), ("Abc", None)):
        tick()
        names[suffix] = client.create_registered_model(f"{p}-{suffix}", tags=tags).name
    return p, names


def _rm_names(client, **kw):
    return [m.name for m in client.search_registered_models(**kw)]


def test_search_registered_models_filters(client, rm_family):
    p, n = rm_family
    like = f"name LIKE '{p}-%'"
    # default order: name ASC, byte order ("A" < "a")
    assert _rm_names(client, filter_string=like) == [n["Abc"], n["a"], n["ab"]]
    assert _rm_names(client, filter_string=f"name = '{n['a']}'") == [n["a"]]
    assert _rm_names(client, filter_string=f"attribute.name = '{n['ab']}'") == [n["ab"]]
    assert _rm_names(client, filter_string=f"{like} AND name != '{n['a']}'") == [n["Abc"], n["ab"]]
    # LIKE is case-sensitive, ILIKE is not
    assert _rm_names(client, filter_string=f"name LIKE '{p}-a%'") == [n["a"], n["ab"]]
    assert _rm_names(client, filter_string=f"name ILIKE '{p}-a%'") == [n["Abc"], n["a"], n["ab"]]
    assert _rm_names(client, filter_string=f"name LIKE '{p}-a_'") == [n["ab"]]
    assert _rm_names(client, filter_string=f"name IN ('{n['a']}', '{n['Abc']}', 'nonexistent')") == [
        n["Abc"], n["a"],
    ]
    assert _rm_names(client, filter_string=f"{like} AND name NOT IN ('{n['a']}')") == [n["Abc"], n["ab"]]
    # tags
    assert _rm_names(client, filter_string=f"{like} AND tag.key = 'value'") == [n["a"]]
    assert _rm_names(client, filter_string=f"{like} AND tags.key = 'vaLue'") == [n["ab"]]
    assert _rm_names(client, filter_string=f"{like} AND tag.key != 'value'") == [n["ab"]]
    assert _rm_names(client, filter_string=f"{like} AND tag.key LIKE '%alu%'") == [n["a"]]
    assert _rm_names(client, filter_string=f"{like} AND tag.key ILIKE '%alu%'") == [n["a"], n["ab"]]
    assert _rm_names(client, filter_string=f"{like} AND tag.key ILIKE '%alu%' AND tag.x = '1'") == [n["ab"]]
    assert _rm_names(client, filter_string=f"{like} AND tag.`key` = 'value'") == [n["a"]]
    assert _rm_names(client, filter_string=f"{like} AND tag.nokey = 'value'") == []


def test_search_registered_models_invalid_filters(client, api):
    for bad in ("creation_timestamp > 0", "name > 'a'", "name = 'a' OR name = 'b'", "tag.key IN ('a')"):
        with pytest.raises(MlflowException) as e:
            client.search_registered_models(filter_string=bad)
        assert err_code(e) == "INVALID_PARAMETER_VALUE", bad
        r = api.get(f"{R}/registered-models/search", params={"filter": bad})
        assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    r = api.get(f"{R}/registered-models/search", params={"filter": "creation_timestamp > 0"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "Invalid attribute key 'creation_timestamp' specified.")
    r = api.get(f"{R}/registered-models/search", params={"order_by": "bogus ASC"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    # The spec (§5.4) says 400; the 3.17.2 reference raises a plain MlflowException -> 500.
    # Reprise never answers a client mistake with a 5xx (the client would retry it for minutes).
    r = api.get(f"{R}/registered-models/search", params={"order_by": ["name ASC", "name DESC"]})
    if IS_REFERENCE:
        assert_error(r, 500, "INTERNAL_ERROR", "`order_by` contains duplicate fields")
    else:
        assert_error(r, 400, "INVALID_PARAMETER_VALUE", "`order_by` contains duplicate fields")


def test_search_registered_models_order_by(client, rm_family):
    p, n = rm_family
    like = f"name LIKE '{p}-%'"
    assert _rm_names(client, filter_string=like, order_by=["name DESC"]) == [n["ab"], n["a"], n["Abc"]]
    assert _rm_names(client, filter_string=like, order_by=["name ASC"]) == [n["Abc"], n["a"], n["ab"]]
    # created a, ab, Abc in that order
    assert _rm_names(client, filter_string=like, order_by=["last_updated_timestamp ASC"]) == [
        n["a"], n["ab"], n["Abc"],
    ]
    assert _rm_names(client, filter_string=like, order_by=["last_updated_timestamp DESC"]) == [
        n["Abc"], n["ab"], n["a"],
    ]
    # updating bumps last_updated_timestamp
    tick()
    client.update_registered_model(n["a"], description="touched")
    assert _rm_names(client, filter_string=like, order_by=["last_updated_timestamp DESC"]) == [
        n["a"], n["Abc"], n["ab"],
    ]
    assert _rm_names(client, filter_string=like, order_by=["timestamp DESC"]) == [n["a"], n["Abc"], n["ab"]]
    assert _rm_names(client, filter_string=like, order_by=["timestamp ASC"]) == [n["ab"], n["Abc"], n["a"]]


def test_search_registered_models_paging(client, api):
    p = uniq("page")
    names = [client.create_registered_model(f"{p}-{i}").name for i in range(5)]
    f = f"name LIKE '{p}-%'"
    seen, tokens = [], []
    token = None
    while True:
        page = client.search_registered_models(filter_string=f, max_results=2, page_token=token)
        seen.append([m.name for m in page])
        token = page.token
        if not token:
            break
        tokens.append(token)
    assert seen == [names[0:2], names[2:4], names[4:5]]
    assert len(tokens) == 2
    # raw: next_page_token present only when more may follow
    r = api.get(f"{R}/registered-models/search", params={"filter": f, "max_results": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [m["name"] for m in body["registered_models"]] == names
    r = api.get(f"{R}/registered-models/search", params={"filter": f, "max_results": 2})
    body = r.json()
    assert [m["name"] for m in body["registered_models"]] == names[:2]
    assert isinstance(body["next_page_token"], str) and body["next_page_token"]
    # a no-match search is an empty object
    r = api.get(f"{R}/registered-models/search", params={"filter": "name = 'no-such-model-xyz'"})
    assert r.status_code == 200 and r.json() == {}, r.text


def test_search_registered_models_max_results_limit(client, api):
    assert isinstance(client.search_registered_models(max_results=1000), list)
    with pytest.raises(MlflowException) as e:
        client.search_registered_models(max_results=1001)
    assert err_code(e) == "INVALID_PARAMETER_VALUE"
    r = api.get(f"{R}/registered-models/search", params={"max_results": 1001})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "1001")


def test_search_registered_models_latest_versions(client, run_src):
    name = uniq()
    client.create_registered_model(name)
    for _ in range(3):
        new_version(client, name, run_src)
    client.transition_model_version_stage(name, "1", "Production")
    (rm,) = client.search_registered_models(f"name = '{name}'")
    assert sorted((v.version, v.current_stage) for v in rm.latest_versions) == [("1", "Production"), ("3", "None")]


# ----------------------------------------------------------------------------- tags


def test_registered_model_tags(client, api):
    name = uniq()
    client.create_registered_model(name)
    client.set_registered_model_tag(name, "k", "v")
    client.set_registered_model_tag(name, "k2", "v2")
    assert client.get_registered_model(name).tags == {"k": "v", "k2": "v2"}
    client.set_registered_model_tag(name, "k", "v-new")
    assert client.get_registered_model(name).tags == {"k": "v-new", "k2": "v2"}
    client.delete_registered_model_tag(name, "k")
    assert client.get_registered_model(name).tags == {"k2": "v2"}
    # raw set/delete
    r = api.post(f"{R}/registered-models/set-tag", json={"name": name, "key": "raw", "value": "1"})
    assert r.status_code == 200 and r.json() == {}, r.text
    r = api.delete(f"{R}/registered-models/delete-tag", json={"name": name, "key": "raw"})
    assert r.status_code == 200 and r.json() == {}, r.text
    assert client.get_registered_model(name).tags == {"k2": "v2"}
    # invalid key
    r = api.post(f"{R}/registered-models/set-tag", json={"name": name, "key": "../x", "value": "1"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    # missing model
    r = api.post(f"{R}/registered-models/set-tag", json={"name": uniq("nope"), "key": "k", "value": "1"})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")


def test_delete_missing_registered_model_tag(client, api):
    name = uniq()
    client.create_registered_model(name)
    r = api.delete(f"{R}/registered-models/delete-tag", json={"name": name, "key": "never-set"})
    assert r.status_code == 200 and r.json() == {}, r.text
    r = api.delete(f"{R}/registered-models/delete-tag", json={"name": uniq("nope"), "key": "k"})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")


# ------------------------------------------------------------------------- latest versions


def test_get_latest_versions(client, api, run_src):
    name = uniq()
    client.create_registered_model(name)
    for _ in range(4):
        new_version(client, name, run_src)
    client.transition_model_version_stage(name, "1", "Production")
    client.transition_model_version_stage(name, "2", "Staging")
    client.transition_model_version_stage(name, "3", "Staging")

    def latest(stages):
        return sorted((v.version, v.current_stage) for v in client.get_latest_versions(name, stages=stages))

    # no stages: one (the highest) version per stage that has versions
    assert latest(None) == [("1", "Production"), ("3", "Staging"), ("4", "None")]
    assert latest([]) == [("1", "Production"), ("3", "Staging"), ("4", "None")]
    assert latest(["Staging"]) == [("3", "Staging")]
    assert latest(["production"]) == [("1", "Production")]
    assert latest(["Staging", "Production"]) == [("1", "Production"), ("3", "Staging")]
    assert latest(["None"]) == [("4", "None")]
    assert latest(["Archived"]) == []

    r = api.post(f"{R}/registered-models/get-latest-versions", json={"name": name, "stages": ["Staging"]})
    assert r.status_code == 200, r.text
    assert [(v["version"], v["current_stage"]) for v in r.json()["model_versions"]] == [("3", "Staging")]
    r = api.get(f"{R}/registered-models/get-latest-versions", params={"name": name, "stages": "Production"})
    assert r.status_code == 200, r.text
    assert [(v["version"], v["current_stage"]) for v in r.json()["model_versions"]] == [("1", "Production")]
    r = api.post(f"{R}/registered-models/get-latest-versions", json={"name": name, "stages": ["Bogus"]})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    r = api.post(f"{R}/registered-models/get-latest-versions", json={"name": uniq("nope")})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")

    rm = client.get_registered_model(name)
    assert sorted((v.version, v.current_stage) for v in rm.latest_versions) == [
        ("1", "Production"), ("3", "Staging"), ("4", "None"),
    ]


# ============================================================================ model versions


def test_log_model_with_registered_model_name(experiment, client, api, iris):
    X, y = iris
    name = uniq("skl")
    model = LogisticRegression(max_iter=300).fit(X, y)
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name=name)
    rid = run.info.run_id
    assert info.registered_model_version == "1"
    mv = client.get_model_version(name, "1")
    assert mv.name == name and mv.version == "1"
    assert mv.source == f"models:/{info.model_id}"
    # The 3.17.2 reference does not put model_id on served model versions (the spec's §2.6
    # example shows it); the client never relies on it, so either is accepted.
    assert mv.model_id in (None, info.model_id)
    assert mv.run_id == rid
    assert mv.status == "READY"
    assert mv.current_stage == "None"
    lm = mlflow.get_logged_model(info.model_id)
    assert lm.artifact_location == f"mlflow-artifacts:/{experiment}/models/{info.model_id}/artifacts"
    assert client.get_model_version_download_uri(name, "1") == lm.artifact_location
    # The server writes {"version": <int>} when it creates the version; the client then appends
    # its own entry with the version as a string, without de-duplicating.
    assert json.loads(lm.tags["mlflow.modelVersions"]) == [
        {"name": name, "version": 1}, {"name": name, "version": "1"},
    ]
    # raw shape
    body = raw_mv(api, name, 1)
    assert body["version"] == "1"
    assert body["status"] == "READY"
    assert body["current_stage"] == "None"
    assert body["source"] == f"models:/{info.model_id}"
    assert body.get("model_id", info.model_id) == info.model_id
    assert body["run_id"] == rid
    assert isinstance(body["creation_timestamp"], int)
    assert isinstance(body["last_updated_timestamp"], int)
    r = api.get(f"{R}/model-versions/get-download-uri", params={"name": name, "version": "1"})
    assert r.status_code == 200 and r.json() == {"artifact_uri": lm.artifact_location}, r.text


def test_register_model_runs_and_models_uris(client, logged):
    name = uniq("reg")
    rid = logged["run_id"]
    small = logged["small"]
    mv1 = mlflow.register_model(f"runs:/{rid}/small", name)
    assert (mv1.name, mv1.version) == (name, "1")
    assert mv1.source == f"models:/{small['model_id']}"
    assert mv1.model_id in (None, small["model_id"])
    assert mv1.run_id == rid
    assert mv1.status == "READY"
    # the registered model already exists now: register_model tolerates RESOURCE_ALREADY_EXISTS
    mv2 = mlflow.register_model(f"models:/{small['model_id']}", name)
    assert mv2.version == "2"
    assert mv2.source == f"models:/{small['model_id']}"
    assert mv2.model_id in (None, small["model_id"])
    # run_id defaults to the logged model's source run
    assert mv2.run_id == rid
    assert client.get_model_version_download_uri(name, "2") == small["artifact_location"]
    lm = mlflow.get_logged_model(small["model_id"])
    tag = [e for e in json.loads(lm.tags["mlflow.modelVersions"]) if e["name"] == name]
    assert tag == [
        {"name": name, "version": 1}, {"name": name, "version": "1"},
        {"name": name, "version": 2}, {"name": name, "version": "2"},
    ]


def test_raw_create_model_version_with_model_id_tags_logged_model(api, client, logged):
    """The server itself links the version on the logged model (tag mlflow.modelVersions)."""
    large = logged["large"]
    name = uniq("rawmid")
    client.create_registered_model(name)
    r = api.post(f"{R}/model-versions/create",
                 json={"name": name, "source": f"models:/{large['model_id']}", "model_id": large["model_id"]})
    assert r.status_code == 200, r.text
    body = r.json()["model_version"]
    assert body["version"] == "1"
    assert body["source"] == f"models:/{large['model_id']}"
    assert body["run_id"] == logged["run_id"]  # defaults to the logged model's source run
    assert body["status"] == "READY"
    r = api.get(f"{R}/logged-models/{large['model_id']}")
    assert r.status_code == 200, r.text
    tags = {t["key"]: t["value"] for t in r.json()["model"]["info"].get("tags", [])}
    entries = [e for e in json.loads(tags["mlflow.modelVersions"]) if e["name"] == name]
    assert entries == [{"name": name, "version": 1}]
    r = api.get(f"{R}/model-versions/get-download-uri", params={"name": name, "version": "1"})
    assert r.json() == {"artifact_uri": large["artifact_location"]}
    # a models:/ source whose model_id differs from the model_id field is rejected
    r = api.post(f"{R}/model-versions/create",
                 json={"name": name, "source": f"models:/{large['model_id']}",
                       "model_id": logged["small"]["model_id"]})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "Invalid model version source")
    # an unknown logged model: the 3.17.2 reference fails in the store with 500 INTERNAL_ERROR;
    # Reprise answers 404 RESOURCE_DOES_NOT_EXIST (a client mistake, not a server fault)
    r = api.post(f"{R}/model-versions/create",
                 json={"name": name, "source": "models:/m-00000000000000000000000000000000",
                       "model_id": "m-00000000000000000000000000000000"})
    if IS_REFERENCE:
        assert_error(r, 500, "INTERNAL_ERROR", "Unable to fetch model from model URI source")
    else:
        assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST", "Logged model with ID 'm-00000000000000000000000000000000' not found")


def test_register_model_into_precreated_model(client, logged):
    name = uniq("pre")
    client.create_registered_model(name, description="pre-made")
    mv = mlflow.register_model(f"models:/{logged['large']['model_id']}", name)
    assert mv.version == "1"
    assert client.get_registered_model(name).description == "pre-made"


def test_create_model_version_mlflow_artifacts_source(client, api, run_src):
    run_id, art = run_src
    assert art.startswith("mlflow-artifacts:/")
    name = uniq()
    rm = client.create_registered_model(name)
    tick()
    mv = client.create_model_version(
        name, f"{art}/model", run_id=run_id, tags={"t": "1"}, description="first version",
        run_link="http://example/run",
    )
    assert mv.name == name and mv.version == "1"
    assert mv.source == f"{art}/model"
    assert mv.run_id == run_id
    assert mv.tags == {"t": "1"}
    assert mv.description == "first version"
    assert mv.run_link == "http://example/run"
    assert mv.status == "READY"
    assert mv.current_stage == "None"
    assert not mv.model_id
    assert client.get_model_version_download_uri(name, "1") == f"{art}/model"
    # creating a version bumps the registered model's last_updated_timestamp
    assert client.get_registered_model(name).last_updated_timestamp > rm.last_updated_timestamp
    # raw create returns the version immediately READY
    r = api.post(f"{R}/model-versions/create", json={"name": name, "source": f"{art}/m2", "run_id": run_id})
    assert r.status_code == 200, r.text
    body = r.json()["model_version"]
    assert body["version"] == "2" and body["status"] == "READY" and body["current_stage"] == "None"
    assert body["source"] == f"{art}/m2"


def test_create_model_version_source_validation(client, api, run_src, tmp_path):
    run_id, art = run_src
    name = uniq()
    client.create_registered_model(name)
    # a local path without run_id
    r = api.post(f"{R}/model-versions/create", json={"name": name, "source": str(tmp_path)})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "To use a local path as a model version source")
    with pytest.raises(MlflowException) as e:
        client.create_model_version(name, str(tmp_path))
    assert err_code(e) == "INVALID_PARAMETER_VALUE"
    r = api.post(f"{R}/model-versions/create", json={"name": name, "source": f"file://{tmp_path}"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "To use a local path as a model version source")
    # '..' segments, plain and percent-encoded
    for src in (f"{art}/../../other", f"{art}/model/..%2f..%2fx", "mlflow-artifacts:/0/../etc"):
        r = api.post(f"{R}/model-versions/create", json={"name": name, "source": src, "run_id": run_id})
        assert_error(r, 400, "INVALID_PARAMETER_VALUE", "Invalid model version source")
    with pytest.raises(MlflowException) as e:
        client.create_model_version(name, f"{art}/../x", run_id=run_id)
    assert err_code(e) == "INVALID_PARAMETER_VALUE"
    # 3.17.2: an mlflow-artifacts source needs a run_id whose artifact root contains it
    r = api.post(f"{R}/model-versions/create", json={"name": name, "source": f"{art}/model"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "Invalid model version source")
    r = api.post(f"{R}/model-versions/create",
                 json={"name": name, "source": "mlflow-artifacts:/0/elsewhere/model", "run_id": run_id})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "Invalid model version source")
    # runs:/ source must match run_id
    r = api.post(f"{R}/model-versions/create", json={"name": name, "source": f"runs:/{run_id}/model"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "Invalid model version source")
    # missing required fields
    r = api.post(f"{R}/model-versions/create", json={"name": name})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'source'")
    # unknown registered model
    r = api.post(f"{R}/model-versions/create",
                 json={"name": uniq("nope"), "source": f"{art}/model", "run_id": run_id})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    # nothing was created by the failures
    assert client.search_model_versions(f"name = '{name}'") == []


def test_version_numbers_never_reused(client, api, run_src):
    name = uniq()
    client.create_registered_model(name)
    assert [new_version(client, name, run_src).version for _ in range(3)] == ["1", "2", "3"]
    client.delete_model_version(name, "3")
    assert new_version(client, name, run_src).version == "4"
    client.delete_model_version(name, "2")
    client.delete_model_version(name, "4")
    assert new_version(client, name, run_src).version == "5"
    assert sorted(int(m.version) for m in client.search_model_versions(f"name = '{name}'")) == [1, 5]
    for v in ("2", "3", "4"):
        r = api.get(f"{R}/model-versions/get", params={"name": name, "version": v})
        assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST", f"Model Version (name={name}, version={v}) not found")


def test_get_update_delete_model_version(client, api, run_src):
    name = uniq()
    client.create_registered_model(name)
    mv = new_version(client, name, run_src, description="orig")
    got = client.get_model_version(name, "1")
    assert (got.name, got.version, got.description, got.source) == (name, "1", "orig", mv.source)
    assert got.creation_timestamp == mv.creation_timestamp
    tick()
    upd = client.update_model_version(name, "1", description="updated")
    assert upd.description == "updated" and upd.version == "1"
    got = client.get_model_version(name, "1")
    assert got.description == "updated"
    assert got.last_updated_timestamp > mv.last_updated_timestamp
    assert got.creation_timestamp == mv.creation_timestamp
    r = api.patch(f"{R}/model-versions/update", json={"name": name, "version": "1", "description": "raw"})
    assert r.status_code == 200, r.text
    assert r.json()["model_version"]["description"] == "raw"
    r = api.patch(f"{R}/model-versions/update", json={"name": name, "version": "9", "description": "x"})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")

    r = api.delete(f"{R}/model-versions/delete", json={"name": name, "version": "1"})
    assert r.status_code == 200 and r.json() == {}, r.text
    r = api.get(f"{R}/model-versions/get", params={"name": name, "version": "1"})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST", f"Model Version (name={name}, version=1) not found")
    with pytest.raises(MlflowException) as e:
        client.get_model_version(name, "1")
    assert err_code(e) == "RESOURCE_DOES_NOT_EXIST"
    r = api.delete(f"{R}/model-versions/delete", json={"name": name, "version": "1"})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    # the registered model survives with no versions
    rm = client.get_registered_model(name)
    assert rm.latest_versions == []
    r = api.get(f"{R}/model-versions/get-download-uri", params={"name": name, "version": "1"})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")


def test_get_model_version_errors(client, api, run_src):
    name = uniq()
    client.create_registered_model(name)
    new_version(client, name, run_src)
    r = api.get(f"{R}/model-versions/get", params={"name": name, "version": "2"})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST", f"Model Version (name={name}, version=2) not found")
    missing = uniq("nope")
    r = api.get(f"{R}/model-versions/get", params={"name": missing, "version": "1"})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    with pytest.raises(MlflowException) as e:
        client.get_model_version(name, "7")
    assert err_code(e) == "RESOURCE_DOES_NOT_EXIST"
    r = api.get(f"{R}/model-versions/get", params={"name": name, "version": "x"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "Parameter 'version' must be an integer, got 'x'.")
    r = api.get(f"{R}/model-versions/get", params={"name": name, "version": "1.5"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "Parameter 'version' must be an integer, got '1.5'.")
    r = api.get(f"{R}/model-versions/get-download-uri", params={"name": name, "version": "x"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    r = api.get(f"{R}/model-versions/get", params={"name": name})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'version'")


# ------------------------------------------------------------------ search model versions


@pytest.fixture()
def mv_family(client, experiment):
    """Two registered models <p>-x (versions 1..3) and <p>-y (versions 1..2) over two runs."""
    p = uniq("mvs")
    runs = []
    for _ in range(2):
        run = client.create_run(experiment)
        client.set_terminated(run.info.run_id)
        runs.append((run.info.run_id, run.info.artifact_uri))
    x, y = f"{p}-x", f"{p}-y"
    client.create_registered_model(x)
    client.create_registered_model(y)
    order = []  # creation order of (name, version)
    plan = [(x, 0, {"stage": "dev"}), (y, 1, {"stage": "prod"}), (x, 0, {"stage": "prod"}),
            (x, 1, {"stage": "dev", "extra": "1"}), (y, 1, None)]
    for n, ri, tags in plan:
        tick()
        mv = new_version(client, n, runs[ri], sub=f"model-{len(order)}", tags=tags)
        order.append((n, mv.version))
    assert order == [(x, "1"), (y, "1"), (x, "2"), (x, "3"), (y, "2")]
    return p, x, y, runs, order


def _mv_keys(client, **kw):
    return [(m.name, m.version) for m in client.search_model_versions(**kw)]


def test_search_model_versions_filters(client, mv_family):
    p, x, y, runs, order = mv_family
    run_a, run_b = runs[0][0], runs[1][0]
    like = f"name LIKE '{p}-%'"

    def s(f, **kw):
        return sorted(_mv_keys(client, filter_string=f, **kw))

    assert s(f"name = '{x}'") == [(x, "1"), (x, "2"), (x, "3")]
    assert s(f"name = '{y}'") == [(y, "1"), (y, "2")]
    assert s(like) == sorted(order)
    assert s(f"name IN ('{y}', 'nonexistent')") == [(y, "1"), (y, "2")]
    assert s(f"{like} AND name != '{x}'") == [(y, "1"), (y, "2")]
    assert s(f"run_id = '{run_a}'") == [(x, "1"), (x, "2")]
    assert s(f"run_id = '{run_b}'") == [(x, "3"), (y, "1"), (y, "2")]
    assert s(f"run_id IN ('{run_a}') AND name = '{x}'") == [(x, "1"), (x, "2")]
    assert s(f"name = '{x}' AND version_number > 1") == [(x, "2"), (x, "3")]
    assert s(f"name = '{x}' AND version_number >= 2") == [(x, "2"), (x, "3")]
    assert s(f"name = '{x}' AND version_number < 2") == [(x, "1")]
    assert s(f"name = '{x}' AND version_number <= 2") == [(x, "1"), (x, "2")]
    assert s(f"name = '{x}' AND version_number = 3") == [(x, "3")]
    assert s(f"name = '{x}' AND version_number != 3") == [(x, "1"), (x, "2")]
    assert s(f"{like} AND tag.stage = 'dev'") == [(x, "1"), (x, "3")]
    assert s(f"{like} AND tags.stage = 'prod'") == [(x, "2"), (y, "1")]
    assert s(f"{like} AND tag.stage != 'dev'") == [(x, "2"), (y, "1")]
    assert s(f"{like} AND tag.stage LIKE 'p%'") == [(x, "2"), (y, "1")]
    assert s(f"{like} AND tag.stage ILIKE 'DE%'") == [(x, "1"), (x, "3")]
    assert s(f"{like} AND tag.stage = 'dev' AND tag.extra = '1'") == [(x, "3")]
    assert s(f"{like} AND source_path LIKE '%/model-3'") == [(x, "3")]
    assert s(f"name = 'no-such-model-{p}'") == []


def test_search_model_versions_invalid(client, api, mv_family):
    p, x, *_ = mv_family
    for bad in (
        f"name = '{x}' AND version_number = 'abc'",
        f"name = '{x}' AND version_number LIKE '1'",
        "bogus_attr = 'a'",
        f"name = '{x}' OR name = 'b'",
        "source_path IN ('a')",
    ):
        with pytest.raises(MlflowException) as e:
            client.search_model_versions(filter_string=bad)
        assert err_code(e) == "INVALID_PARAMETER_VALUE", bad
    r = api.get(f"{R}/model-versions/search", params={"filter": f"name = '{x}'", "max_results": 0})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    r = api.get(f"{R}/model-versions/search", params={"filter": f"name = '{x}'", "max_results": 200001})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    r = api.get(f"{R}/model-versions/search", params={"filter": f"name = '{x}'", "order_by": "bogus"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")


def test_search_model_versions_order_by(client, mv_family):
    p, x, y, runs, order = mv_family
    like = f"name LIKE '{p}-%'"
    # default: last_updated_timestamp DESC (then name ASC, version_number DESC)
    assert _mv_keys(client, filter_string=like) == list(reversed(order))
    assert _mv_keys(client, filter_string=like, order_by=["creation_timestamp ASC"]) == order
    assert _mv_keys(client, filter_string=like, order_by=["last_updated_timestamp ASC"]) == order
    # name ASC then the version_number DESC tie-breaker
    assert _mv_keys(client, filter_string=like, order_by=["name ASC"]) == [
        (x, "3"), (x, "2"), (x, "1"), (y, "2"), (y, "1"),
    ]
    assert _mv_keys(client, filter_string=like, order_by=["name DESC", "version_number ASC"]) == [
        (y, "1"), (y, "2"), (x, "1"), (x, "2"), (x, "3"),
    ]
    assert _mv_keys(client, filter_string=like, order_by=["version_number ASC"]) == [
        (x, "1"), (y, "1"), (x, "2"), (y, "2"), (x, "3"),
    ]
    # an update bumps last_updated_timestamp
    tick()
    client.update_model_version(x, "1", description="bump")
    assert _mv_keys(client, filter_string=like)[0] == (x, "1")


def test_search_model_versions_paging(client, api, mv_family):
    p, x, y, runs, order = mv_family
    like = f"name LIKE '{p}-%'"
    pages, token = [], None
    while True:
        page = client.search_model_versions(filter_string=like, max_results=2, page_token=token,
                                            order_by=["creation_timestamp ASC"])
        pages.append([(m.name, m.version) for m in page])
        token = page.token
        if not token:
            break
    assert pages == [order[0:2], order[2:4], order[4:5]]
    r = api.get(f"{R}/model-versions/search",
                params={"filter": like, "max_results": 5, "order_by": "creation_timestamp ASC"})
    assert r.status_code == 200, r.text
    assert [(m["name"], m["version"]) for m in r.json()["model_versions"]] == order
    r = api.get(f"{R}/model-versions/search", params={"filter": "name = 'no-such-model-zz'"})
    assert r.status_code == 200 and r.json() == {}, r.text


def test_model_version_tags(client, api, run_src):
    name = uniq()
    client.create_registered_model(name)
    new_version(client, name, run_src, tags={"init": "0"})
    client.set_model_version_tag(name, "1", "k", "v")
    assert client.get_model_version(name, "1").tags == {"init": "0", "k": "v"}
    client.set_model_version_tag(name, "1", "k", "v2")
    assert client.get_model_version(name, "1").tags == {"init": "0", "k": "v2"}
    client.delete_model_version_tag(name, "1", "init")
    assert client.get_model_version(name, "1").tags == {"k": "v2"}
    r = api.post(f"{R}/model-versions/set-tag", json={"name": name, "version": "1", "key": "raw", "value": "x"})
    assert r.status_code == 200 and r.json() == {}, r.text
    r = api.delete(f"{R}/model-versions/delete-tag", json={"name": name, "version": "1", "key": "raw"})
    assert r.status_code == 200 and r.json() == {}, r.text
    assert client.get_model_version(name, "1").tags == {"k": "v2"}
    # errors
    r = api.post(f"{R}/model-versions/set-tag", json={"name": name, "version": "2", "key": "k", "value": "x"})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    r = api.post(f"{R}/model-versions/set-tag", json={"name": name, "version": "1", "key": "a//b", "value": "x"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    # deleting a tag that was never set is a no-op; on a missing version it is 404
    r = api.delete(f"{R}/model-versions/delete-tag", json={"name": name, "version": "1", "key": "never"})
    assert r.status_code == 200 and r.json() == {}, r.text
    r = api.delete(f"{R}/model-versions/delete-tag", json={"name": name, "version": "2", "key": "k"})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")


# ============================================================================ stages


def test_transition_stages(client, api, run_src):
    name = uniq()
    client.create_registered_model(name)
    for _ in range(4):
        new_version(client, name, run_src)

    def stages():
        return {m.version: m.current_stage for m in client.search_model_versions(f"name = '{name}'")}

    assert stages() == {"1": "None", "2": "None", "3": "None", "4": "None"}
    mv = client.transition_model_version_stage(name, "1", "Staging")
    assert (mv.version, mv.current_stage) == ("1", "Staging")
    client.transition_model_version_stage(name, "2", "staging", archive_existing_versions=False)
    assert stages() == {"1": "Staging", "2": "Staging", "3": "None", "4": "None"}
    mv = client.transition_model_version_stage(name, "3", "STAGING", archive_existing_versions=True)
    assert mv.current_stage == "Staging"
    assert stages() == {"1": "Archived", "2": "Archived", "3": "Staging", "4": "None"}

    client.transition_model_version_stage(name, "4", "Production")
    client.transition_model_version_stage(name, "3", "Production", archive_existing_versions=True)
    assert stages() == {"1": "Archived", "2": "Archived", "3": "Production", "4": "Archived"}
    client.transition_model_version_stage(name, "1", "None")
    assert stages()["1"] == "None"

    # raw: the response carries the new stage
    r = api.post(f"{R}/model-versions/transition-stage",
                 json={"name": name, "version": "2", "stage": "Staging", "archive_existing_versions": False})
    assert r.status_code == 200, r.text
    assert r.json()["model_version"]["current_stage"] == "Staging"

    # invalid stage
    r = api.post(f"{R}/model-versions/transition-stage",
                 json={"name": name, "version": "1", "stage": "Bogus", "archive_existing_versions": False})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "Invalid Model Version stage: Bogus")
    with pytest.raises(MlflowException) as e:
        client.transition_model_version_stage(name, "1", "Bogus")
    assert err_code(e) == "INVALID_PARAMETER_VALUE"
    # archive_existing_versions only for Staging / Production. The 3.17.2 reference raises a
    # plain MlflowException here, so it answers 500 INTERNAL_ERROR (not a 400).
    # Reprise answers the same mistake with 400 INVALID_PARAMETER_VALUE.
    r = api.post(f"{R}/model-versions/transition-stage",
                 json={"name": name, "version": "1", "stage": "Archived", "archive_existing_versions": True})
    if IS_REFERENCE:
        assert_error(r, 500, "INTERNAL_ERROR", "cannot archive existing model versions")
    else:
        assert_error(r, 400, "INVALID_PARAMETER_VALUE", "cannot archive existing model versions")
    # missing version
    r = api.post(f"{R}/model-versions/transition-stage",
                 json={"name": name, "version": "99", "stage": "Staging", "archive_existing_versions": False})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    assert stages() == {"1": "None", "2": "Staging", "3": "Production", "4": "Archived"}


def test_load_by_stage_and_latest(client, logged, iris):
    X, _ = iris
    name = uniq("stg")
    mlflow.register_model(f"models:/{logged['small']['model_id']}", name)
    mlflow.register_model(f"models:/{logged['large']['model_id']}", name)
    client.transition_model_version_stage(name, "1", "Staging")
    small, large = logged["small"]["model"], logged["large"]["model"]
    staged = mlflow.pyfunc.load_model(f"models:/{name}/Staging")
    assert np.array_equal(np.asarray(staged.predict(X)), small.predict(X))
    latest = mlflow.sklearn.load_model(f"models:/{name}/latest")
    assert np.array_equal(latest.predict_proba(X), large.predict_proba(X))
    with pytest.raises(MlflowException):
        mlflow.pyfunc.load_model(f"models:/{name}/Production")


# ============================================================================ aliases


def test_aliases(client, api, run_src):
    name = uniq()
    client.create_registered_model(name)
    for _ in range(3):
        new_version(client, name, run_src)
    client.set_registered_model_alias(name, "champion", "1")
    mv = client.get_model_version_by_alias(name, "champion")
    assert (mv.name, mv.version, mv.aliases) == (name, "1", ["champion"])
    assert client.get_model_version(name, "1").aliases == ["champion"]
    assert client.get_registered_model(name).aliases == {"champion": "1"}

    # move it
    client.set_registered_model_alias(name, "champion", "2")
    assert client.get_model_version_by_alias(name, "champion").version == "2"
    assert client.get_model_version(name, "1").aliases == []
    assert client.get_model_version(name, "2").aliases == ["champion"]
    client.set_registered_model_alias(name, "challenger", "2")
    client.set_registered_model_alias(name, "old", "1")
    assert sorted(client.get_model_version(name, "2").aliases) == ["challenger", "champion"]
    assert client.get_registered_model(name).aliases == {"champion": "2", "challenger": "2", "old": "1"}

    # raw shapes
    r = api.get(f"{R}/registered-models/alias", params={"name": name, "alias": "old"})
    assert r.status_code == 200, r.text
    body = r.json()["model_version"]
    assert body["version"] == "1" and body["aliases"] == ["old"]
    rm = raw_rm(api, name)
    assert sorted((a["alias"], a["version"]) for a in rm["aliases"]) == [
        ("challenger", "2"), ("champion", "2"), ("old", "1"),
    ]
    assert all("aliases" not in v for v in rm.get("latest_versions", []))

    # 'latest' in get resolves to the highest version
    r = api.get(f"{R}/registered-models/alias", params={"name": name, "alias": "latest"})
    assert r.status_code == 200, r.text
    assert r.json()["model_version"]["version"] == "3"

    # delete
    client.delete_registered_model_alias(name, "challenger")
    assert client.get_model_version(name, "2").aliases == ["champion"]
    with pytest.raises(MlflowException) as e:
        client.get_model_version_by_alias(name, "challenger")
    assert err_code(e) == "INVALID_PARAMETER_VALUE"
    r = api.get(f"{R}/registered-models/alias", params={"name": name, "alias": "challenger"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "Registered model alias challenger not found.")
    # deleting a missing alias is a no-op
    r = api.delete(f"{R}/registered-models/alias", json={"name": name, "alias": "challenger"})
    assert r.status_code == 200 and r.json() == {}, r.text

    # deleting a version removes its aliases
    client.delete_model_version(name, "2")
    assert client.get_registered_model(name).aliases == {"old": "1"}
    r = api.get(f"{R}/registered-models/alias", params={"name": name, "alias": "champion"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    # a re-created alias name works again
    client.set_registered_model_alias(name, "champion", "3")
    assert client.get_model_version_by_alias(name, "champion").version == "3"


@pytest.mark.parametrize("alias", ["latest", "LATEST", "Latest", "v1", "V12", "v0"])
def test_reserved_alias_names(client, api, run_src, alias):
    name = uniq()
    client.create_registered_model(name)
    new_version(client, name, run_src)
    r = api.post(f"{R}/registered-models/alias", json={"name": name, "alias": alias, "version": "1"})
    if alias.lower() == "latest":
        msg = "'latest' alias name (case insensitive) is reserved."
    else:
        msg = f"Version alias name '{alias}' is reserved."
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", msg)
    with pytest.raises(MlflowException) as e:
        client.set_registered_model_alias(name, alias, "1")
    assert err_code(e) == "INVALID_PARAMETER_VALUE"
    assert client.get_registered_model(name).aliases == {}


def test_alias_errors(client, api, run_src):
    name = uniq()
    client.create_registered_model(name)
    new_version(client, name, run_src)
    # invalid characters
    for bad in ("a b", "a/b", "a.b"):
        r = api.post(f"{R}/registered-models/alias", json={"name": name, "alias": bad, "version": "1"})
        assert_error(r, 400, "INVALID_PARAMETER_VALUE", f"Invalid alias name: '{bad}'.")
    # allowed: word characters and dashes, and names like 'v1a'
    for ok in ("prod-1", "v1a", "version2"):
        r = api.post(f"{R}/registered-models/alias", json={"name": name, "alias": ok, "version": "1"})
        assert r.status_code == 200 and r.json() == {}, (ok, r.text)
    # missing version
    r = api.post(f"{R}/registered-models/alias", json={"name": name, "alias": "x", "version": "5"})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    # missing model
    r = api.post(f"{R}/registered-models/alias", json={"name": uniq("nope"), "alias": "x", "version": "1"})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    r = api.get(f"{R}/registered-models/alias", params={"name": name, "alias": "unknown"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "Registered model alias unknown not found.")


def test_load_by_alias_and_version(client, logged, iris):
    X, _ = iris
    name = uniq("ali")
    mlflow.register_model(f"models:/{logged['small']['model_id']}", name)
    mlflow.register_model(f"models:/{logged['large']['model_id']}", name)
    client.set_registered_model_alias(name, "champion", "1")
    small, large = logged["small"]["model"], logged["large"]["model"]

    by_alias = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    assert np.array_equal(np.asarray(by_alias.predict(X)), small.predict(X))
    by_v1 = mlflow.pyfunc.load_model(f"models:/{name}/1")
    assert np.array_equal(np.asarray(by_v1.predict(X)), small.predict(X))
    by_v2 = mlflow.sklearn.load_model(f"models:/{name}/2")
    assert np.array_equal(by_v2.predict_proba(X), large.predict_proba(X))
    # moving the alias changes what loads
    client.set_registered_model_alias(name, "champion", "2")
    moved = mlflow.sklearn.load_model(f"models:/{name}@champion")
    assert np.array_equal(moved.predict_proba(X), large.predict_proba(X))
    with pytest.raises(MlflowException):
        mlflow.pyfunc.load_model(f"models:/{name}@nosuchalias")


# ============================================================================ prompts


def test_prompts_excluded_from_search(client, api):
    p = uniq("pr")
    prompt_name, model_name = f"{p}-prompt", f"{p}-model"
    r = api.post(f"{R}/registered-models/create",
                 json={"name": prompt_name, "tags": [{"key": PROMPT_TAG, "value": "true"}]})
    assert r.status_code == 200, r.text
    client.create_registered_model(model_name)
    like = f"name LIKE '{p}-%'"
    assert _rm_names(client, filter_string=like) == [model_name]
    assert prompt_name not in [m.name for m in client.search_registered_models(filter_string=like)]
    # the server itself hides prompts on a raw search, unless the filter asks for them
    r = api.get(f"{R}/registered-models/search", params={"filter": like})
    assert r.status_code == 200, r.text
    assert [m["name"] for m in r.json()["registered_models"]] == [model_name]
    r = api.get(f"{R}/registered-models/search", params={"filter": f"{like} AND tag.`{PROMPT_TAG}` = 'true'"})
    assert [m["name"] for m in r.json()["registered_models"]] == [prompt_name]
    # a model explicitly tagged is_prompt=false is a normal model
    # (the client refuses any is_prompt tag on create_registered_model, so raw HTTP)
    r = api.post(f"{R}/registered-models/create",
                 json={"name": f"{p}-notprompt", "tags": [{"key": PROMPT_TAG, "value": "false"}]})
    assert r.status_code == 200, r.text
    assert _rm_names(client, filter_string=like) == [model_name, f"{p}-notprompt"]
    # the prompt is still reachable directly
    assert raw_rm(api, prompt_name)["name"] == prompt_name


def test_prompts_excluded_on_fresh_server(fresh_server):
    import requests

    base = fresh_server.rstrip("/")
    r = requests.post(f"{base}{R}/registered-models/create",
                      json={"name": "my-prompt", "tags": [{"key": PROMPT_TAG, "value": "true"}]}, timeout=30)
    assert r.status_code == 200, r.text
    c = MlflowClient(tracking_uri=fresh_server)
    c.create_registered_model("zmodel")
    c.create_registered_model("amodel")
    assert [m.name for m in c.search_registered_models()] == ["amodel", "zmodel"]
    r = requests.get(f"{base}{R}/registered-models/search", timeout=30)
    assert [m["name"] for m in r.json()["registered_models"]] == ["amodel", "zmodel"]


def test_versions_and_logged_models_may_name_a_run_this_server_lacks(api, experiment):
    # MLflow 3.17 records the run as named (a model trained elsewhere, a run not imported); only a
    # proxied or local source must lie inside the run's artifacts.
    name = f"elsewhere-{uuid.uuid4().hex[:8]}"
    missing = uuid.uuid4().hex
    assert api.post("/api/2.0/mlflow/registered-models/create", json={"name": name}).status_code == 200
    for source in ["s3://bucket/models/m", f"runs:/{missing}/model"]:
        r = api.post("/api/2.0/mlflow/model-versions/create", json={"name": name, "source": source, "run_id": missing})
        assert r.status_code == 200, r.text
        assert r.json()["model_version"]["run_id"] == missing and r.json()["model_version"]["source"] == source
    r = api.post("/api/2.0/mlflow/model-versions/create", json={"name": name, "source": f"mlflow-artifacts:/{experiment}/x", "run_id": missing})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "Invalid model version source")
    r = api.post("/api/2.0/mlflow/logged-models", json={"experiment_id": experiment, "source_run_id": missing})
    assert r.status_code == 200, r.text
    assert r.json()["model"]["info"]["source_run_id"] == missing


def test_prompt_versions_skip_the_model_source_check(api):
    # register_prompt sends a placeholder source; it is not a location.
    name = f"prompt-{uuid.uuid4().hex[:8]}"
    r = api.post("/api/2.0/mlflow/registered-models/create", json={"name": name, "tags": [{"key": "mlflow.prompt.is_prompt", "value": "true"}]})
    assert r.status_code == 200, r.text
    r = api.post("/api/2.0/mlflow/model-versions/create", json={
        "name": name, "source": "dummy-source", "tags": [{"key": "mlflow.prompt.is_prompt", "value": "true"}, {"key": "mlflow.prompt.text", "value": "Hi {{x}}"}]})
    assert r.status_code == 200, r.text
    assert r.json()["model_version"]["source"] == "dummy-source"
