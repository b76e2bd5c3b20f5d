"""Wire-level details checked with raw `requests` against the REST API (spec §1, §2, §5, §6)."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid

import pytest

from conftest import IS_REFERENCE, assert_error, local_artifacts_only

MAXD = 1.7976931348623157e308
API = "/api/2.0/mlflow"
ART = "/api/2.0/mlflow-artifacts/artifacts"


def now_ms() -> int:
    return int(time.time() * 1000)


# --------------------------------------------------------------------------- metadata routes


def test_health_body_ok(api):
    r = api.get("/health")
    assert r.status_code == 200
    assert r.text == "OK"


def test_version_is_plain_version_string(api):
    r = api.get("/version")
    assert r.status_code == 200
    assert re.fullmatch(r"\d+\.\d+(\.\d+)?([a-z0-9.+-]*)", r.text.strip()), r.text


@local_artifacts_only  # the session server's destination is S3 on that pass; test_s3.py covers multipart there
def test_server_info_reports_no_multipart(api):
    for prefix in ("/api/3.0", "/ajax-api/3.0"):
        r = api.get(f"{prefix}/mlflow/server-info")
        assert r.status_code == 200, (prefix, r.text)
        body = r.json()
        assert body["multipart_uploads_enabled"] is False
        assert body["multipart_downloads_enabled"] is False
        assert body["workspaces_enabled"] is False


def test_unknown_route_is_404(api):
    for method, path in [
        ("GET", "/api/2.0/mlflow/no-such-endpoint"),
        ("POST", "/api/2.0/mlflow/runs/no-such-rpc"),
        ("GET", "/totally/unknown"),
    ]:
        r = api.s.request(method, api.url(path), json={} if method == "POST" else None, timeout=30)
        assert r.status_code == 404, (path, r.status_code, r.text[:200])
        # A JSON body, if any, must say ENDPOINT_NOT_FOUND (the client relies on it for fallbacks).
        try:
            body = r.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            assert body.get("error_code") == "ENDPOINT_NOT_FOUND", body


def test_wrong_method_is_405(api):
    r = api.put(f"{API}/runs/search", json={})
    assert r.status_code == 405
    r = api.delete(f"{API}/experiments/create", json={})
    assert r.status_code == 405


def test_ajax_api_twins(api):
    a = api.get(f"{API}/experiments/get", params={"experiment_id": "0"})
    b = api.get("/ajax-api/2.0/mlflow/experiments/get", params={"experiment_id": "0"})
    assert a.status_code == b.status_code == 200
    assert a.json() == b.json()
    assert a.json()["experiment"]["name"] == "Default"
    # Writes work through the twin too.
    name = f"ajax-{uuid.uuid4().hex[:10]}"
    r = api.post("/ajax-api/2.0/mlflow/experiments/create", json={"name": name})
    assert r.status_code == 200, r.text
    eid = r.json()["experiment_id"]
    r = api.get(f"{API}/experiments/get-by-name", params={"experiment_name": name})
    assert r.json()["experiment"]["experiment_id"] == eid
    r = api.post("/ajax-api/2.0/mlflow/experiments/search", json={"max_results": 5, "filter": f"name = '{name}'"})
    assert [e["name"] for e in r.json()["experiments"]] == [name]
    # Errors through the twin carry the same envelope.
    r = api.get("/ajax-api/2.0/mlflow/runs/get", params={"run_id": "0" * 32})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")


# --------------------------------------------------------------------------- error envelope


def test_error_envelope_not_found(api):
    rid = "deadbeef" * 4
    r = api.get(f"{API}/runs/get", params={"run_id": rid})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST", f"Run with id={rid} not found")
    r = api.get(f"{API}/experiments/get", params={"experiment_id": "987654"})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST", "No Experiment with id=987654 exists")
    name = f"missing-{uuid.uuid4().hex}"
    r = api.get(f"{API}/experiments/get-by-name", params={"experiment_name": name})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST", f"Could not find experiment with name '{name}'")


def test_error_envelope_bad_experiment_id(api):
    r = api.get(f"{API}/experiments/get", params={"experiment_id": "abc"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE",
                 "Invalid experiment ID 'abc'. Experiment ID must be a valid integer.")
    r = api.post(f"{API}/runs/search", json={"experiment_ids": ["abc"]})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE",
                 "Invalid experiment ID 'abc'. Experiment ID must be a valid integer.")


def test_duplicate_experiment_is_400_resource_already_exists(api):
    name = f"dup-{uuid.uuid4().hex[:10]}"
    api.create_experiment(name)
    r = api.post(f"{API}/experiments/create", json={"name": name})
    assert_error(r, 400, "RESOURCE_ALREADY_EXISTS", f"Experiment(name={name}) already exists")


def test_missing_required_parameter(api):
    r = api.post(f"{API}/experiments/create", json={})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE",
                 "Missing value for required parameter 'name'. See the API docs for more information about request parameters.")
    r = api.post(f"{API}/experiments/create", json={"name": ""})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'name'")
    r = api.post(f"{API}/experiments/create", json={"name": "x" * 501})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "'name' exceeds the maximum length of 500 characters")


def test_malformed_json_is_400(api):
    for body in [b"{bad json", b'{"name": ', b"\x00\xff garbage"]:
        r = api.post(f"{API}/experiments/create", data=body, headers={"Content-Type": "application/json"})
        assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    r = api.post(f"{API}/runs/log-metric", data=b'{"run_id": ', headers={"Content-Type": "application/json"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")


def test_wrong_content_type_is_400(api):
    name = f"ct-{uuid.uuid4().hex[:10]}"
    r = api.post(f"{API}/experiments/create", data=json.dumps({"name": name}),
                 headers={"Content-Type": "text/plain"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE",
                 "Bad Request. Content-Type must be one of ['application/json'].")
    r = api.post(f"{API}/experiments/create", data=json.dumps({"name": name}),
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "Content-Type must be one of ['application/json']")
    # Nothing was created by the rejected requests.
    r = api.get(f"{API}/experiments/get-by-name", params={"experiment_name": name})
    assert r.status_code == 404


def test_empty_body_is_empty_object(api):
    r = api.post(f"{API}/experiments/create", data=b"", headers={"Content-Type": "application/json"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'name'")


def test_camel_case_fields_and_double_encoded_body(api):
    eid = api.create_experiment()
    r = api.post(f"{API}/runs/create", json={"experimentId": eid, "runName": "camel", "startTime": 5})
    assert r.status_code == 200, r.text
    info = r.json()["run"]["info"]
    assert info["run_name"] == "camel" and info["start_time"] == 5 and info["experiment_id"] == eid
    name = f"dbl-{uuid.uuid4().hex[:10]}"
    r = api.post(f"{API}/experiments/create", data=json.dumps(json.dumps({"name": name})),
                 headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.json()["experiment_id"].isdigit()


def test_wrong_value_type_message(api):
    eid = api.create_experiment()
    rid = api.create_run(eid)
    r = api.post(f"{API}/runs/log-metric", json={"run_id": rid, "key": "k", "value": 1, "timestamp": 1, "step": "foo"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "Invalid value \"foo\" for parameter 'step' supplied")
    r = api.post(f"{API}/runs/log-metric", json={"run_id": rid, "key": "k", "value": "abc", "timestamp": 1})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "Invalid value \"abc\" for parameter 'value' supplied")
    r = api.post(f"{API}/runs/log-metric", json={"run_id": rid, "key": "k", "value": 1, "timestamp": -5})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "Invalid value -5 for parameter 'timestamp' supplied")
    assert "metrics" not in api.get_run(rid)["data"]


# --------------------------------------------------------------------------- entity shapes


def test_run_json_shape(api):
    eid = api.create_experiment()
    t0 = now_ms()
    r = api.post(f"{API}/runs/create", json={
        "experiment_id": eid, "user_id": "alice", "run_name": "shape", "start_time": t0,
        "tags": [{"key": "t", "value": "v"}],
    })
    assert r.status_code == 200, r.text
    run = r.json()["run"]
    info = run["info"]
    assert re.fullmatch(r"[0-9a-f]{32}", info["run_id"])
    assert info["run_uuid"] == info["run_id"]
    assert info["experiment_id"] == eid
    assert info["status"] == "RUNNING"
    assert info["lifecycle_stage"] == "active"
    assert info["user_id"] == "alice"
    assert info["start_time"] == t0 and isinstance(info["start_time"], int)
    assert "end_time" not in info
    assert info["artifact_uri"] == f"mlflow-artifacts:/{eid}/{info['run_id']}/artifacts"
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags == {"t": "v", "mlflow.runName": "shape"}
    got = api.get_run(info["run_id"])
    assert got["inputs"] == {}
    assert got["info"] == info


def test_experiment_json_shape(api):
    name = f"shape-{uuid.uuid4().hex[:10]}"
    eid = api.create_experiment(name)
    exp = api.get(f"{API}/experiments/get", params={"experiment_id": eid}).json()["experiment"]
    assert exp["experiment_id"] == eid and isinstance(eid, str)
    assert exp["name"] == name
    assert exp["artifact_location"] == f"mlflow-artifacts:/{eid}"
    assert exp["lifecycle_stage"] == "active"
    assert isinstance(exp["creation_time"], int) and isinstance(exp["last_update_time"], int)
    assert abs(exp["creation_time"] - now_ms()) < 60_000
    assert "tags" not in exp


def test_update_run_and_end_time(api):
    eid = api.create_experiment()
    rid = api.create_run(eid, run_name="before")
    r = api.post(f"{API}/runs/update", json={"run_id": rid, "status": "KILLED", "end_time": 123456, "run_name": "after"})
    assert r.status_code == 200, r.text
    ri = r.json()["run_info"]
    assert ri["status"] == "KILLED" and ri["end_time"] == 123456 and ri["run_name"] == "after"
    run = api.get_run(rid)
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags["mlflow.runName"] == "after"
    # run_uuid alias alone works for update and log-metric.
    r = api.post(f"{API}/runs/update", json={"run_uuid": rid, "status": "FINISHED"})
    assert r.status_code == 200 and r.json()["run_info"]["status"] == "FINISHED"
    assert r.json()["run_info"]["end_time"] == 123456
    r = api.post(f"{API}/runs/log-metric", json={"run_uuid": rid, "key": "alias", "value": 2.5, "timestamp": 7})
    assert r.status_code == 200 and r.json() == {}
    assert api.get_run(rid)["data"]["metrics"] == [{"key": "alias", "value": 2.5, "timestamp": 7, "step": 0}]


def test_run_name_conflict_with_tag(api):
    eid = api.create_experiment()
    r = api.post(f"{API}/runs/create", json={"experiment_id": eid, "run_name": "a",
                                             "tags": [{"key": "mlflow.runName", "value": "b"}]})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE",
                 "Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different values")


# --------------------------------------------------------------------------- NaN / Infinity (§6.4)


def test_nan_and_infinity_round_trip(api):
    eid = api.create_experiment()
    rid = api.create_run(eid)
    ts = now_ms()
    for key, value in [("nan", "NaN"), ("pinf", "Infinity"), ("ninf", "-Infinity"), ("plain", 1.5)]:
        r = api.post(f"{API}/runs/log-metric", json={"run_id": rid, "key": key, "value": value, "timestamp": ts})
        assert r.status_code == 200, r.text
    r = api.post(f"{API}/runs/log-batch", json={"run_id": rid, "metrics": [
        {"key": "bnan", "value": "NaN", "timestamp": ts, "step": 1},
        {"key": "binf", "value": "Infinity", "timestamp": ts, "step": 1},
    ]})
    assert r.status_code == 200, r.text
    raw = api.get(f"{API}/runs/get", params={"run_id": rid}).text
    metrics = {m["key"]: m for m in json.loads(raw)["run"]["data"]["metrics"]}
    assert metrics["nan"]["value"] == "NaN"
    assert metrics["bnan"]["value"] == "NaN"
    assert metrics["pinf"]["value"] == MAXD
    assert metrics["binf"]["value"] == MAXD
    assert metrics["ninf"]["value"] == -MAXD
    assert metrics["plain"]["value"] == 1.5
    # Strict JSON: no bare NaN / Infinity tokens.
    json.loads(raw, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    h = api.get(f"{API}/metrics/get-history", params={"run_id": rid, "metric_key": "nan"}).json()
    assert h == {"metrics": [{"key": "nan", "value": "NaN", "timestamp": ts, "step": 0}]}
    h = api.get(f"{API}/metrics/get-history", params={"run_id": rid, "metric_key": "ninf"}).json()
    assert h["metrics"][0]["value"] == -MAXD


def test_latest_metric_is_max_step_timestamp_value(api):
    eid = api.create_experiment()
    rid = api.create_run(eid)
    points = [(1.0, 100, 5), (2.0, 200, 2), (3.0, 50, 5), (0.5, 100, 5)]  # (value, ts, step)
    for v, ts, step in points:
        r = api.post(f"{API}/runs/log-metric", json={"run_id": rid, "key": "m", "value": v, "timestamp": ts, "step": step})
        assert r.status_code == 200
    # max by (step, timestamp, value) -> (5, 100, 1.0)
    assert api.get_run(rid)["data"]["metrics"] == [{"key": "m", "value": 1.0, "timestamp": 100, "step": 5}]
    # exact duplicate is a silent no-op
    r = api.post(f"{API}/runs/log-metric", json={"run_id": rid, "key": "m", "value": 1.0, "timestamp": 100, "step": 5})
    assert r.status_code == 200
    h = api.get(f"{API}/metrics/get-history", params={"run_id": rid, "metric_key": "m"}).json()["metrics"]
    # ordered by (timestamp, step, value)
    assert [(p["timestamp"], p["step"], p["value"]) for p in h] == [
        (50, 5, 3.0), (100, 5, 0.5), (100, 5, 1.0), (200, 2, 2.0)]


# --------------------------------------------------------------------------- log-batch limits


def _run_has_nothing(api, rid):
    data = api.get_run(rid)["data"]
    assert "metrics" not in data, data
    assert "params" not in data, data
    user_tags = [t for t in data.get("tags", []) if not t["key"].startswith("mlflow.")]
    assert user_tags == [], data


@pytest.mark.parametrize("case", ["metrics", "params", "tags", "total"])
def test_log_batch_limits_are_atomic(api, case):
    eid = api.create_experiment()
    rid = api.create_run(eid)
    ts = now_ms()
    if case == "metrics":
        body = {"metrics": [{"key": "m", "value": 1.0, "timestamp": ts, "step": i} for i in range(1001)]}
        msg = ("A batch logging request can contain at most 1000 metrics. Got 1001 metrics. "
               "Please split up metrics across multiple requests and try again.")
    elif case == "params":
        body = {"params": [{"key": f"p{i}", "value": "v"} for i in range(101)]}
        msg = ("A batch logging request can contain at most 100 params. Got 101 params. "
               "Please split up params across multiple requests and try again.")
    elif case == "tags":
        body = {"tags": [{"key": f"t{i}", "value": "v"} for i in range(101)]}
        msg = ("A batch logging request can contain at most 100 tags. Got 101 tags. "
               "Please split up tags across multiple requests and try again.")
    else:
        body = {"metrics": [{"key": "m", "value": 1.0, "timestamp": ts, "step": i} for i in range(950)],
                "params": [{"key": f"p{i}", "value": "v"} for i in range(51)]}
        msg = ("A batch logging request can contain at most 1000 metrics, params, and tags. "
               "Got 1001 metrics, params, and tags.")
    r = api.post(f"{API}/runs/log-batch", json={"run_id": rid, **body})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", msg)
    _run_has_nothing(api, rid)


def test_log_batch_at_limits_is_accepted(api):
    eid = api.create_experiment()
    rid = api.create_run(eid)
    ts = now_ms()
    r = api.post(f"{API}/runs/log-batch", json={"run_id": rid,
                 "metrics": [{"key": "m", "value": float(i), "timestamp": ts, "step": i} for i in range(1000)]})
    assert r.status_code == 200, r.text
    r = api.post(f"{API}/runs/log-batch", json={"run_id": rid,
                 "params": [{"key": f"p{i}", "value": str(i)} for i in range(100)],
                 "tags": [{"key": f"t{i}", "value": str(i)} for i in range(100)]})
    assert r.status_code == 200, r.text
    data = api.get_run(rid)["data"]
    assert len(data["params"]) == 100
    assert len([t for t in data["tags"] if t["key"].startswith("t")]) == 100
    assert data["metrics"] == [{"key": "m", "value": 999.0, "timestamp": ts, "step": 999}]
    h = api.get(f"{API}/metrics/get-history", params={"run_id": rid, "metric_key": "m"}).json()["metrics"]
    assert [p["step"] for p in h] == list(range(1000))


def test_log_batch_validation_failures_leave_nothing(api):
    eid = api.create_experiment()
    rid = api.create_run(eid)
    ts = now_ms()
    r = api.post(f"{API}/runs/log-batch", json={"run_id": rid,
                 "params": [{"key": "q", "value": "x"}, {"key": "q", "value": "y"}]})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE",
                 "Duplicate parameter keys have been submitted: ['q']. Please ensure the request contains "
                 "only one param value per param key.")
    r = api.post(f"{API}/runs/log-batch", json={"run_id": rid, "params": [{"key": "ok", "value": "1"}],
                 "metrics": [{"key": "mm", "value": 1}]})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE",
                 "Missing value for required parameter 'metrics[0].timestamp'")
    r = api.post(f"{API}/runs/log-batch", json={"run_id": rid, "params": [{"key": "ok", "value": "1"}],
                 "metrics": [{"key": "bad*key", "value": 1, "timestamp": ts}]})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "Names may only contain alphanumerics")
    _run_has_nothing(api, rid)


# --------------------------------------------------------------------------- params immutable (§6.3)


def test_immutable_param_messages(api):
    eid = api.create_experiment()
    rid = api.create_run(eid)
    r = api.post(f"{API}/runs/log-parameter", json={"run_id": rid, "key": "p", "value": "1"})
    assert r.status_code == 200 and r.json() == {}
    r = api.post(f"{API}/runs/log-parameter", json={"run_id": rid, "key": "p", "value": "1"})
    assert r.status_code == 200
    r = api.post(f"{API}/runs/log-parameter", json={"run_id": rid, "key": "p", "value": "2"})
    body = assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    assert body["message"] == (
        f"Changing param values is not allowed. Param with key='p' was already logged with value='1' "
        f"for run ID='{rid}'. Attempted logging new value '2'.")
    ts = now_ms()
    r = api.post(f"{API}/runs/log-batch", json={"run_id": rid,
                 "params": [{"key": "q", "value": "x"}, {"key": "p", "value": "3"}],
                 "metrics": [{"key": "mm", "value": 1, "timestamp": ts}],
                 "tags": [{"key": "tt", "value": "v"}]})
    body = assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    assert body["message"] == (
        "Changing param values is not allowed. Params were already logged="
        "'[{'key': 'p', 'old_value': '1', 'new_value': '3'}]' "
        f"for run ID='{rid}'.")
    data = api.get_run(rid)["data"]
    assert data["params"] == [{"key": "p", "value": "1"}]
    assert "metrics" not in data
    assert "tt" not in {t["key"] for t in data["tags"]}
    # the same value again inside a batch is fine
    r = api.post(f"{API}/runs/log-batch", json={"run_id": rid, "params": [{"key": "p", "value": "1"}]})
    assert r.status_code == 200


# --------------------------------------------------------------------------- artifact proxy


TRAVERSALS = [
    "../evil.txt",
    "a/../../evil.txt",
    "%2e%2e/evil.txt",
    "a/%2e%2e/%2e%2e/evil.txt",
    "%2E%2E/evil.txt",
    "..%2Fevil.txt",
    "a%2F..%2F..%2Fevil.txt",
    "%2Fetc%2Fevil.txt",
    "/tmp/evil.txt",
    "a%23b.txt",
    "sub/x%23y/evil.txt",
]


def _raw_request(base: str, method: str, path: str, body: bytes | None = None):
    """Send a request with the path exactly as given (no client-side normalization)."""
    import http.client
    from urllib.parse import urlsplit

    u = urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        headers = {"Content-Type": "application/octet-stream"}
        if body is not None:
            headers["Content-Length"] = str(len(body))
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read(), dict(resp.getheaders())
    finally:
        conn.close()


def _files_under(root):
    import os
    out = set()
    for dp, dn, fn in os.walk(root):
        for f in fn:
            out.add(os.path.join(dp, f))
    return out


def _all_evil(server):
    # Anything named *evil* anywhere in the server's temp dir or its parent is a breach.
    import os
    hits = []
    for base in {str(server.tmp), str(server.tmp.parent)}:
        for dp, dn, fn in os.walk(base):
            hits += [os.path.join(dp, f) for f in fn if "evil" in f]
    return hits


@pytest.mark.parametrize("path", TRAVERSALS)
def test_artifact_path_traversal_rejected(server, path):
    before = _files_under(server.tmp)
    for method in ("PUT", "GET", "DELETE"):
        status, body, headers = _raw_request(server, method, f"{ART}/{path}",
                                             b"pwned" if method == "PUT" else None)
        if IS_REFERENCE and method == "DELETE" and status == 308:
            # Reference quirk: Flask merges the '//' of an absolute path with a 308 redirect
            # for DELETE (nothing is deleted). Reprise must answer 400.
            continue
        assert status == 400, (method, path, status, body[:200])
        env = json.loads(body)
        assert env["error_code"] == "INVALID_PARAMETER_VALUE", env
        assert env["message"] == "Invalid path", env
    after = _files_under(server.tmp)
    new = {f for f in after - before if not f.endswith(".stderr")}
    assert new == set(), new
    assert _all_evil(server) == []


@local_artifacts_only
def test_artifact_delete_traversal_deletes_nothing(server):
    sentinel = server.tmp / "sentinel-keep.txt"
    sentinel.write_text("keep")
    inside = server.artifacts / "sentinel-dir"
    inside.mkdir(parents=True, exist_ok=True)
    (inside / "keep.txt").write_text("keep")
    for path in ["../sentinel-keep.txt", "%2e%2e/sentinel-keep.txt", "..%2Fsentinel-keep.txt",
                 "sentinel-dir/../../sentinel-keep.txt", "sentinel-dir/%2e%2e/%2e%2e/sentinel-keep.txt",
                 "..", "%2e%2e", "sentinel-dir/%2e%2e"]:
        status, body, _ = _raw_request(server, "DELETE", f"{ART}/{path}")
        assert status == 400, (path, status, body[:200])
    assert sentinel.read_text() == "keep"
    assert (inside / "keep.txt").read_text() == "keep"
    assert server.artifacts.is_dir()


def test_rename_deleted_experiment_invalid_state(api):
    eid = api.create_experiment()
    assert api.post(f"{API}/experiments/delete", json={"experiment_id": eid}).status_code == 200
    r = api.post(f"{API}/experiments/update", json={"experiment_id": eid, "new_name": f"n-{uuid.uuid4().hex}"})
    # The reference answers 500; Reprise answers 400 (a client's mistake is never a 5xx).
    assert_error(r, 500 if IS_REFERENCE else 400, "INVALID_STATE", "Cannot rename a non-active experiment.")
    r = api.post(f"{API}/experiments/delete", json={"experiment_id": eid})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    r = api.post(f"{API}/runs/create", json={"experiment_id": eid})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", f"The experiment {eid} must be in the 'active' state")


def test_artifact_list_traversal_rejected(api):
    for p in ["..", "../x", "/tmp", "a/../../x"]:
        r = api.get(ART, params={"path": p})
        assert_error(r, 400, "INVALID_PARAMETER_VALUE", "Invalid path")


def test_artifact_backslash_writes_nothing_outside_root(server):
    for path in ["a%5C..%5C..%5Cevil.txt", "..%5Cevil.txt"]:
        _raw_request(server, "PUT", f"{ART}/{path}", b"pwned")
    assert not (server.tmp / "evil.txt").exists()
    assert not (server.tmp.parent / "evil.txt").exists()
    # anything written must be inside the artifacts root
    import os
    for dp, dn, fn in os.walk(server.tmp.parent):
        for f in fn:
            if "evil" in f:
                assert os.path.realpath(os.path.join(dp, f)).startswith(os.path.realpath(server.artifacts) + os.sep)


@pytest.mark.reprise_only
def test_artifact_backslash_rejected(server):
    # Spec §2.8: backslashes are invalid. (The 3.17.2 reference accepts them on POSIX and
    # writes a file whose name contains a backslash; Reprise follows the spec.)
    for path in ["a%5C..%5C..%5Cevil.txt", "..%5Cevil.txt", "a%5Cb.txt"]:
        status, body, _ = _raw_request(server, "PUT", f"{ART}/{path}", b"pwned")
        assert status == 400, (path, status, body)
        assert json.loads(body) == {**json.loads(body), "error_code": "INVALID_PARAMETER_VALUE",
                                    "message": "Invalid path"}


def test_artifact_proxy_round_trip_and_headers(api, server):
    key = f"rawart/{uuid.uuid4().hex}"
    r = api.put(f"{ART}/{key}/hello.txt", data=b"hello world")
    assert r.status_code == 200
    assert (server.artifacts / key / "hello.txt").read_bytes() == b"hello world"
    r = api.get(f"{ART}/{key}/hello.txt")
    assert r.status_code == 200 and r.content == b"hello world"
    assert r.headers["Content-Type"].startswith("text/plain")
    assert r.headers["Content-Disposition"] == "attachment; filename=hello.txt"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    r = api.put(f"{ART}/{key}/sub/data.bin", data=bytes(range(256)))
    assert r.status_code == 200
    r = api.get(f"{ART}/{key}/sub/data.bin")
    assert r.content == bytes(range(256))
    assert r.headers["Content-Type"].startswith("application/octet-stream")
    # listing: immediate children by basename
    r = api.get(ART, params={"path": key})
    files = sorted(r.json()["files"], key=lambda f: f["path"])
    assert files == [{"path": "hello.txt", "is_dir": False, "file_size": 11}, {"path": "sub", "is_dir": True}]
    # listing a file or a missing path gives {}
    assert api.get(ART, params={"path": f"{key}/hello.txt"}).json() == {}
    assert api.get(ART, params={"path": f"{key}/nope"}).json() == {}
    # missing file -> 404
    r = api.get(f"{ART}/{key}/missing.txt")
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST", f"No such artifact: '{key}/missing.txt'")
    # directory download -> 400
    assert api.get(f"{ART}/{key}/sub").status_code == 400
    # overwrite
    assert api.put(f"{ART}/{key}/hello.txt", data=b"v2").status_code == 200
    assert api.get(f"{ART}/{key}/hello.txt").content == b"v2"
    # delete a directory recursively
    r = api.delete(f"{ART}/{key}/sub")
    assert r.status_code == 200
    assert not (server.artifacts / key / "sub").exists()
    r = api.get(ART, params={"path": key})
    assert r.json()["files"] == [{"path": "hello.txt", "is_dir": False, "file_size": 2}]


@local_artifacts_only  # the session server's destination is S3 on that pass; test_s3.py covers multipart there
def test_mpu_create_not_implemented(api):
    r = api.post("/api/2.0/mlflow-artifacts/mpu/create/some/big.bin", json={"path": "some/big.bin", "num_parts": 2})
    assert r.status_code == 501
    assert r.json()["error_code"] == "NOT_IMPLEMENTED"
    assert r.json()["message"] == "Multipart upload is not supported for the current artifact repository"


# --------------------------------------------------------------------------- get-history paging


def test_get_history_paging(api):
    eid = api.create_experiment()
    rid = api.create_run(eid)
    metrics = [{"key": "loss", "value": float(i) / 2, "timestamp": 1000 + i, "step": i} for i in range(25)]
    assert api.post(f"{API}/runs/log-batch", json={"run_id": rid, "metrics": metrics}).status_code == 200
    full = api.get(f"{API}/metrics/get-history", params={"run_id": rid, "metric_key": "loss"}).json()
    assert "next_page_token" not in full
    assert full["metrics"] == metrics
    pages, token = [], None
    for _ in range(10):
        params = {"run_id": rid, "metric_key": "loss", "max_results": 10}
        if token:
            params["page_token"] = token
        body = api.get(f"{API}/metrics/get-history", params=params).json()
        pages.append(body["metrics"])
        token = body.get("next_page_token")
        if not token:
            break
    assert [len(p) for p in pages] == [10, 10, 5]
    assert [m for p in pages for m in p] == metrics
    # run_uuid alias
    body = api.get(f"{API}/metrics/get-history", params={"run_uuid": rid, "metric_key": "loss", "max_results": 25000}).json()
    assert body["metrics"] == metrics and "next_page_token" not in body


def test_get_history_errors_and_empty(api):
    eid = api.create_experiment()
    rid = api.create_run(eid)
    r = api.get(f"{API}/metrics/get-history", params={"run_id": rid, "metric_key": "m", "max_results": 0})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "Invalid value 0 for parameter 'max_results' supplied")
    r = api.get(f"{API}/metrics/get-history", params={"run_id": rid, "metric_key": "nokey"})
    assert r.status_code == 200 and r.json() == {}
    r = api.get(f"{API}/metrics/get-history", params={"run_id": "f" * 32, "metric_key": "nokey"})
    assert r.status_code == 200 and r.json() == {}


# --------------------------------------------------------------------------- search paging & limits


def test_runs_search_page_tokens_chain(api):
    eid = api.create_experiment()
    ids = [api.create_run(eid, start_time=1000 + i) for i in range(10)]
    expected = list(reversed(ids))  # start_time DESC
    got, tokens, token = [], [], None
    for _ in range(10):
        body = {"experiment_ids": [eid], "max_results": 4}
        if token:
            body["page_token"] = token
        r = api.post(f"{API}/runs/search", json=body)
        assert r.status_code == 200, r.text
        page = r.json()
        got.append([x["info"]["run_id"] for x in page["runs"]])
        token = page.get("next_page_token")
        tokens.append(token)
        if not token:
            break
    assert [len(p) for p in got] == [4, 4, 2]
    assert [i for p in got for i in p] == expected
    assert tokens[0] and tokens[1] and tokens[2] is None
    # exactly max_results remaining -> no dangling token
    r = api.post(f"{API}/runs/search", json={"experiment_ids": [eid], "max_results": 10}).json()
    assert len(r["runs"]) == 10 and "next_page_token" not in r


def test_experiments_search_page_tokens_chain(api):
    prefix = f"pg-{uuid.uuid4().hex[:8]}-"
    ids = []
    for i in range(5):
        ids.append(api.create_experiment(f"{prefix}{i}"))
        time.sleep(0.01)  # distinct creation_time (default order is creation_time DESC)
    flt = f"name LIKE '{prefix}%'"
    got, token = [], None
    for _ in range(10):
        body = {"max_results": 2, "filter": flt}
        if token:
            body["page_token"] = token
        page = api.post(f"{API}/experiments/search", json=body).json()
        got.append([e["experiment_id"] for e in page["experiments"]])
        token = page.get("next_page_token")
        if not token:
            break
    assert [len(p) for p in got] == [2, 2, 1]
    assert [i for p in got for i in p] == list(reversed(ids))


def test_search_max_results_limits(api):
    r = api.post(f"{API}/runs/search", json={"experiment_ids": ["0"], "max_results": 50001})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "Invalid value 50001 for parameter 'max_results' supplied")
    r = api.post(f"{API}/runs/search", json={"experiment_ids": ["0"], "max_results": 0})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "Invalid value 0 for parameter 'max_results' supplied")
    r = api.post(f"{API}/runs/search", json={"experiment_ids": ["0"], "max_results": 50000})
    assert r.status_code == 200
    r = api.post(f"{API}/experiments/search", json={"max_results": 50001})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "Invalid value 50001 for parameter 'max_results' supplied")
    r = api.post(f"{API}/experiments/search", json={})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE",
                 "Invalid value 0 for parameter 'max_results' supplied. It must be a positive integer")
    r = api.post(f"{API}/experiments/search", json={"max_results": 50000})
    assert r.status_code == 200


def test_search_or_rejected(api):
    r = api.post(f"{API}/runs/search", json={"experiment_ids": ["0"], "filter": "metrics.a > 1 OR metrics.b < 2"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "Invalid clause(s) in filter string: 'OR'")
    r = api.post(f"{API}/experiments/search", json={"max_results": 10, "filter": "name = 'a' OR name = 'b'"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "Invalid clause(s) in filter string")


def test_search_bad_filters_and_tokens(api):
    r = api.post(f"{API}/runs/search", json={"experiment_ids": ["0"], "page_token": "!!!notbase64"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "Invalid page token")
    r = api.post(f"{API}/runs/search", json={"experiment_ids": ["0"], "filter": "foo.bar = 'x'"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "Invalid entity type 'foo'")
    r = api.post(f"{API}/runs/search", json={"experiment_ids": ["0"], "filter": "attributes.nope = 'x'"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "Invalid attribute key 'nope' specified")
    r = api.post(f"{API}/runs/search", json={"experiment_ids": ["0"], "filter": "metrics.a = 'x'"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "Expected numeric value type for metric")
    r = api.post(f"{API}/runs/search", json={"experiment_ids": ["0"], "filter": "params.a > 'x'"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "Invalid comparator '>'")


def test_search_empty_results_are_empty_object(api):
    r = api.post(f"{API}/runs/search", json={"experiment_ids": ["987654321"]})
    assert r.status_code == 200 and r.json() == {}
    r = api.post(f"{API}/runs/search", json={})
    assert r.status_code == 200 and r.json() == {}
    r = api.post(f"{API}/experiments/search", json={"max_results": 10, "filter": f"name = 'none-{uuid.uuid4().hex}'"})
    assert r.status_code == 200 and r.json() == {}


def test_experiments_search_via_get(api):
    r = api.get(f"{API}/experiments/search", params={"max_results": 5, "filter": "name = 'Default'"})
    assert r.status_code == 200
    assert [e["experiment_id"] for e in r.json()["experiments"]] == ["0"]


def test_page_token_is_opaque_base64_offset(api):
    # The reference token decodes to {"offset": N}; clients treat it as opaque, so only check
    # that it is a non-empty string and that it resumes at the right place.
    eid = api.create_experiment()
    ids = [api.create_run(eid, start_time=5000 + i) for i in range(3)]
    page = api.post(f"{API}/runs/search", json={"experiment_ids": [eid], "max_results": 1}).json()
    tok = page["next_page_token"]
    assert isinstance(tok, str) and tok
    page2 = api.post(f"{API}/runs/search", json={"experiment_ids": [eid], "max_results": 2, "page_token": tok}).json()
    assert [r["info"]["run_id"] for r in page2["runs"]] == [ids[1], ids[0]]
    assert "next_page_token" not in page2
    if IS_REFERENCE:
        assert json.loads(base64.b64decode(tok)) == {"offset": 1}


def test_deleted_run_mutations_rejected(api):
    eid = api.create_experiment()
    rid = api.create_run(eid)
    assert api.post(f"{API}/runs/delete", json={"run_id": rid}).status_code == 200
    msg = f"The run {rid} must be in the 'active' state. Current state is deleted."
    ts = now_ms()
    for path, body in [
        ("runs/log-metric", {"run_id": rid, "key": "m", "value": 1, "timestamp": ts}),
        ("runs/log-parameter", {"run_id": rid, "key": "p", "value": "1"}),
        ("runs/set-tag", {"run_id": rid, "key": "t", "value": "1"}),
        ("runs/log-batch", {"run_id": rid, "params": [{"key": "p", "value": "1"}]}),
        ("runs/update", {"run_id": rid, "status": "FINISHED"}),
    ]:
        r = api.post(f"{API}/{path}", json=body)
        assert_error(r, 400, "INVALID_PARAMETER_VALUE", msg)
    run = api.get_run(rid)
    assert run["info"]["lifecycle_stage"] == "deleted"
    assert run["info"]["status"] == "RUNNING"
    assert api.post(f"{API}/runs/restore", json={"run_id": rid}).status_code == 200
    assert api.get_run(rid)["info"]["lifecycle_stage"] == "active"
    r = api.post(f"{API}/runs/log-metric", json={"run_id": rid, "key": "m", "value": 1, "timestamp": ts})
    assert r.status_code == 200


def test_unknown_run_mutation_is_404(api):
    r = api.post(f"{API}/runs/log-metric", json={"run_id": "deadbeef", "key": "k", "value": 1, "timestamp": 1})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST", "Run with id=deadbeef not found")
    r = api.post(f"{API}/runs/delete", json={"run_id": "deadbeef"})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")


def test_metric_key_validation_messages(api):
    eid = api.create_experiment()
    rid = api.create_run(eid)
    r = api.post(f"{API}/runs/log-metric", json={"run_id": rid, "key": "bad*key", "value": 1, "timestamp": 5})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE",
                 "Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), "
                 "colon(:) and slashes (/).")
    r = api.post(f"{API}/runs/log-metric", json={"run_id": rid, "key": "../x", "value": 1, "timestamp": 5})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE",
                 "Names may be treated as files in certain cases, and must not resolve to other names when "
                 "treated as such. This name would resolve to '../x'")
    r = api.post(f"{API}/runs/log-parameter", json={"run_id": rid, "key": "k" * 251, "value": "v"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "exceeds the maximum length of 250 characters")
    ok = api.post(f"{API}/runs/log-metric", json={"run_id": rid, "key": "a/b c:d-e.f_g", "value": 1, "timestamp": 5})
    assert ok.status_code == 200
    assert [m["key"] for m in api.get_run(rid)["data"]["metrics"]] == ["a/b c:d-e.f_g"]


def test_long_param_value_truncated(api):
    eid = api.create_experiment()
    rid = api.create_run(eid)
    r = api.post(f"{API}/runs/log-parameter", json={"run_id": rid, "key": "long", "value": "x" * 7000})
    assert r.status_code == 200, r.text
    assert api.get_run(rid)["data"]["params"] == [{"key": "long", "value": "x" * 6000}]


def test_experiment_tag_value_limit(api):
    eid = api.create_experiment()
    r = api.post(f"{API}/experiments/set-experiment-tag", json={"experiment_id": eid, "key": "k", "value": "v" * 20001})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "exceeds the maximum length of 20000 characters")
    r = api.post(f"{API}/experiments/set-experiment-tag", json={"experiment_id": eid, "key": "k", "value": "v" * 20000})
    assert r.status_code == 200


def test_nan_value_float_not_json_number(api):
    # Sanity: every double in a response is either a JSON number or one of the three strings.
    eid = api.create_experiment()
    rid = api.create_run(eid)
    api.post(f"{API}/runs/log-metric", json={"run_id": rid, "key": "n", "value": "NaN", "timestamp": 1})
    api.post(f"{API}/runs/log-metric", json={"run_id": rid, "key": "z", "value": -0.0, "timestamp": 1})
    r = api.post(f"{API}/runs/search", json={"experiment_ids": [eid]})
    body = r.json()
    ms = {m["key"]: m["value"] for m in body["runs"][0]["data"]["metrics"]}
    assert ms["n"] == "NaN"
    assert ms["z"] == 0.0 and isinstance(ms["z"], (int, float))
