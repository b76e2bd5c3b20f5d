"""MLflow 3 tracing with the stock client (spec §2.3, §4.10, §5.7): `@mlflow.trace` over OTLP,
reading traces back, searching them, tags, assessments, run links and deletion."""

from __future__ import annotations

import gzip
import json
import os
import time
import uuid
import zlib

import pytest
import requests

import mlflow
from mlflow import MlflowClient
from mlflow.entities import AssessmentSource, Feedback

from conftest import IS_REFERENCE, assert_error


@pytest.fixture(autouse=True)
def sync_trace_export(monkeypatch):
    # Export each trace when it ends, so a test reads what it just logged.
    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")


@mlflow.trace(span_type="CHAIN")
def pipeline(x):
    return step(x) * 2


@mlflow.trace
def step(x):
    with mlflow.start_span(name="llm-call", span_type="LLM") as span:
        span.set_inputs({"question": f"what is {x}?"})
        span.set_outputs({"answer": x + 1})
        span.set_attribute("tokens", 17)
    return x + 1


def run_pipeline(x):
    pipeline(x)
    mlflow.flush_trace_async_logging()
    return mlflow.get_last_active_trace_id()


def test_version_lets_the_client_send_otlp(api):
    r = api.get("/version")
    assert r.status_code == 200
    major, minor = (int(p) for p in r.text.strip().split(".")[:2])
    assert (major, minor) >= (3, 4), r.text


def test_trace_round_trip(experiment, client):
    tid = run_pipeline(3)
    assert tid and tid.startswith("tr-")
    trace = mlflow.get_trace(tid)
    assert trace is not None
    assert trace.info.experiment_id == experiment
    assert trace.info.state.value == "OK"
    assert trace.info.request_preview == '{"x": 3}'
    assert trace.info.response_preview == "8"
    assert trace.info.tags["mlflow.traceName"] == "pipeline"
    assert trace.info.tags["mlflow.trace.spansLocation"] == "TRACKING_STORE"
    assert trace.info.tags["mlflow.artifactLocation"].endswith(f"/traces/{tid}/artifacts")
    assert trace.info.trace_metadata["mlflow.trace.infoFinalized"] == "true"
    assert trace.info.execution_time_ms is not None and trace.info.execution_time_ms >= 0

    spans = {s.name: s for s in trace.data.spans}
    assert set(spans) == {"pipeline", "step", "llm-call"}
    root, mid, leaf = spans["pipeline"], spans["step"], spans["llm-call"]
    assert root.parent_id is None
    assert mid.parent_id == root.span_id and leaf.parent_id == mid.span_id
    assert root.span_type == "CHAIN" and leaf.span_type == "LLM"
    assert root.inputs == {"x": 3} and root.outputs == 8
    assert leaf.inputs == {"question": "what is 3?"} and leaf.outputs == {"answer": 4}
    assert leaf.get_attribute("tokens") == 17
    assert all(s.status.status_code.value == "OK" for s in trace.data.spans)
    assert all(s.trace_id == tid for s in trace.data.spans)
    assert root.start_time_ns <= mid.start_time_ns <= leaf.start_time_ns <= leaf.end_time_ns <= root.end_time_ns


def test_failed_trace_is_error(experiment):
    @mlflow.trace
    def broken():
        raise ValueError("boom")

    with pytest.raises(ValueError):
        broken()
    mlflow.flush_trace_async_logging()
    tid = mlflow.get_last_active_trace_id()
    trace = mlflow.get_trace(tid)
    assert trace.info.state.value == "ERROR"
    (span,) = trace.data.spans
    assert span.status.status_code.value == "ERROR"
    assert any(e.name == "exception" for e in span.events)

    found = mlflow.search_traces(filter_string="trace.status = 'ERROR'", return_type="list")
    assert [t.info.trace_id for t in found] == [tid]


def test_search_filters_order_and_paging(experiment, client):
    ids = []
    for i in range(5):
        ids.append(run_pipeline(i))
        time.sleep(0.01)
    client.set_trace_tag(ids[1], "team", "search")
    client.set_trace_tag(ids[3], "team", "search")
    client.set_trace_tag(ids[0], "team", "other")

    def search(**kw):
        return [t.info.trace_id for t in mlflow.search_traces(return_type="list", **kw)]

    assert search() == list(reversed(ids))
    assert search(order_by=["timestamp_ms ASC"]) == ids
    assert sorted(search(filter_string="tag.team = 'search'")) == sorted([ids[1], ids[3]])
    # Traces without the tag match neither = nor != (as runs).
    assert search(filter_string="tag.team != 'search'") == [ids[0]]
    assert search(filter_string="tag.team IS NULL") == [ids[4], ids[2]]
    assert search(filter_string="span.name = 'llm-call'") == list(reversed(ids))
    assert search(filter_string="span.type = 'LLM' AND tag.team = 'search'") == [ids[3], ids[1]]
    assert search(filter_string="span.name = 'nope'") == []
    assert search(filter_string="trace.name = 'pipeline'") == list(reversed(ids))
    assert search(filter_string="trace.text ILIKE '%WHAT IS 2?%'") == [ids[2]]
    assert search(filter_string="metadata.`mlflow.trace_schema.version` = '3'") == list(reversed(ids))
    first = MlflowClient().get_trace(ids[0]).info.request_time
    assert search(filter_string=f"trace.timestamp_ms > {first}") == list(reversed(ids[1:]))

    page1 = client.search_traces(locations=[experiment], max_results=2)
    assert [t.info.trace_id for t in page1] == [ids[4], ids[3]] and page1.token
    page2 = client.search_traces(locations=[experiment], max_results=2, page_token=page1.token)
    assert [t.info.trace_id for t in page2] == [ids[2], ids[1]]


def test_search_rejects_bad_filters(api, experiment):
    body = {"locations": [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": experiment}}]}
    bad_filters = ["trace.color = 'red'", "span.nope = 'x'", "tag.x > 'y'", "tag.x = "]
    if not IS_REFERENCE:
        bad_filters.append("trace.timestamp_ms > 'abc'")  # the reference answers 200 and matches nothing
    for bad in bad_filters:
        r = api.post("/api/3.0/mlflow/traces/search", json={**body, "filter": bad})
        assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    r = api.post("/api/3.0/mlflow/traces/search", json={**body, "max_results": 50001})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")


def test_tags_set_delete_and_errors(experiment, client, api):
    tid = run_pipeline(1)
    client.set_trace_tag(tid, "color", "red")
    assert client.get_trace(tid).info.tags["color"] == "red"
    client.delete_trace_tag(tid, "color")
    assert "color" not in client.get_trace(tid).info.tags
    if not IS_REFERENCE:  # the reference answers 400 with its database's foreign-key error
        r = api.patch(f"/api/2.0/mlflow/traces/tr-{uuid.uuid4().hex}/tags", json={"key": "a", "value": "b"})
        assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    r = api.get(f"/api/3.0/mlflow/traces/tr-{uuid.uuid4().hex}")
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")


def test_assessments(experiment, client):
    tid = run_pipeline(2)
    fb = mlflow.log_feedback(
        trace_id=tid, name="correct", value=True, rationale="matches",
        source=AssessmentSource(source_type="HUMAN", source_id="ana"))
    ex = mlflow.log_expectation(trace_id=tid, name="expected_answer", value="6")
    got = {a.name: a for a in client.get_trace(tid).info.assessments}
    assert got["correct"].value is True and got["correct"].rationale == "matches"
    assert got["correct"].source.source_id == "ana"
    assert got["expected_answer"].value == "6"
    assert mlflow.get_assessment(tid, fb.assessment_id).name == "correct"

    mlflow.update_assessment(trace_id=tid, assessment_id=fb.assessment_id, assessment=Feedback(name="correct", value=False))
    assert mlflow.get_assessment(tid, fb.assessment_id).value is False
    found = mlflow.search_traces(filter_string="feedback.correct = 'false'", return_type="list")
    assert [t.info.trace_id for t in found] == [tid]

    # Overriding keeps the old one, no longer valid.
    new = mlflow.override_feedback(trace_id=tid, assessment_id=fb.assessment_id, value=True, rationale="re-checked")
    old = mlflow.get_assessment(tid, fb.assessment_id)
    assert old.valid is False and mlflow.get_assessment(tid, new.assessment_id).valid is True

    mlflow.delete_assessment(trace_id=tid, assessment_id=ex.assessment_id)
    names = sorted(a.name for a in client.get_trace(tid).info.assessments)
    assert names == ["correct", "correct"]


def test_traces_of_a_run_and_links(experiment, client):
    with mlflow.start_run() as run:
        inside = run_pipeline(5)
    outside = run_pipeline(6)
    assert [t.info.trace_id for t in mlflow.search_traces(run_id=run.info.run_id, return_type="list")] == [inside]
    client.link_traces_to_run([outside], run_id=run.info.run_id)
    linked = [t.info.trace_id for t in mlflow.search_traces(run_id=run.info.run_id, return_type="list")]
    assert sorted(linked) == sorted([inside, outside])


def test_delete_traces(experiment, client):
    ids = [run_pipeline(i) for i in range(3)]
    assert client.delete_traces(experiment_id=experiment, trace_ids=[ids[0]]) == 1
    assert sorted(t.info.trace_id for t in client.search_traces(locations=[experiment])) == sorted(ids[1:])
    cutoff = int(time.time() * 1000) + 1000
    assert client.delete_traces(experiment_id=experiment, max_timestamp_millis=cutoff, max_traces=1) == 1
    assert [t.info.trace_id for t in client.search_traces(locations=[experiment])] == [ids[2]]
    with pytest.raises(mlflow.exceptions.MlflowException):
        client.get_trace(ids[0])


def _export(span_name: str, trace_hex: str, experiment: str, api, as_json: bool, coding: str | None = None):
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from google.protobuf.json_format import MessageToDict

    now = time.time_ns()
    req = ExportTraceServiceRequest()
    span = req.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id = bytes.fromhex(trace_hex)
    span.span_id = bytes.fromhex("0123456789abcdef")
    span.name = span_name
    span.start_time_unix_nano = now - 5_000_000
    span.end_time_unix_nano = now
    span.status.code = 1
    attr = span.attributes.add()
    attr.key = "gen_ai.system"
    attr.value.string_value = "other-sdk"
    headers = {"x-mlflow-experiment-id": experiment}
    if as_json:
        body = MessageToDict(req)
        # OTLP/JSON spells ids in hex.
        s = body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
        s["traceId"], s["spanId"] = trace_hex, "0123456789abcdef"
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    else:
        data, headers["Content-Type"] = req.SerializeToString(), "application/x-protobuf"
    if coding == "gzip":
        data, headers["Content-Encoding"] = gzip.compress(data), "gzip"
    elif coding == "deflate":
        data, headers["Content-Encoding"] = zlib.compress(data), "deflate"
    return api.post("/v1/traces", data=data, headers=headers)


@pytest.mark.parametrize("as_json", [False, True])
def test_otlp_from_another_sdk(experiment, api, client, as_json):
    trace_hex = uuid.uuid4().hex
    r = _export("agent-run", trace_hex, experiment, api, as_json)
    assert r.status_code == 200, r.text
    tid = f"tr-{trace_hex}"
    trace = client.get_trace(tid)
    assert trace.info.experiment_id == experiment
    assert trace.info.state.value == "OK"
    if not IS_REFERENCE:  # Reprise names a trace that came only as OTLP after its root span
        assert trace.info.tags["mlflow.traceName"] == "agent-run"
    (span,) = trace.data.spans
    assert span.name == "agent-run" and span.get_attribute("gen_ai.system") == "other-sdk"
    found = client.search_traces(locations=[experiment], filter_string="span.name = 'agent-run'")
    assert [t.info.trace_id for t in found] == [tid]


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_otlp_compressed_exports(experiment, api, client, coding):
    # OTel exporters compress their bodies (the Java and Go SDKs gzip by default).
    trace_hex = uuid.uuid4().hex
    r = _export("zipped", trace_hex, experiment, api, False, coding=coding)
    assert r.status_code == 200, r.text
    assert client.get_trace(f"tr-{trace_hex}").data.spans[0].name == "zipped"


@pytest.mark.reprise_only
def test_otlp_compression_refusals(experiment, api):
    headers = {"x-mlflow-experiment-id": experiment, "Content-Type": "application/x-protobuf"}
    r = api.post("/v1/traces", data=b"not gzip at all", headers={**headers, "Content-Encoding": "gzip"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "not valid gzip")
    r = api.post("/v1/traces", data=b"x", headers={**headers, "Content-Encoding": "br"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "Content-Encoding 'br'")
    # A decompression bomb: 64 MiB of zeros in 64 KiB is refused without inflating it all.
    bomb = gzip.compress(bytes(64 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 200_000
    r = api.post("/v1/traces", data=bomb, headers={**headers, "Content-Encoding": "gzip"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "decompresses to more than")
    assert api.get("/health").status_code == 200


def otlp_error(r, status, message_part=None):
    if IS_REFERENCE:  # the reference's OTLP route answers FastAPI's {"detail": …}
        assert r.status_code == status, r.text
    else:
        assert_error(r, status, "INVALID_PARAMETER_VALUE" if status == 400 else "RESOURCE_DOES_NOT_EXIST", message_part)


def test_otlp_refusals(experiment, api):
    r = api.post("/v1/traces", data=b"", headers={"x-mlflow-experiment-id": experiment, "Content-Type": "application/x-protobuf"})
    otlp_error(r, 400, "no spans found")
    r = api.post("/v1/traces", data=b"\xff\xff\xff", headers={"x-mlflow-experiment-id": experiment, "Content-Type": "application/x-protobuf"})
    otlp_error(r, 400)
    r = api.post("/v1/traces", data=b"x", headers={"x-mlflow-experiment-id": experiment, "Content-Type": "text/plain"})
    otlp_error(r, 400)
    r = _export("x", uuid.uuid4().hex, "999999", api, False)
    otlp_error(r, 404)
    if IS_REFERENCE:
        return  # the reference stores a span id of any length
    # A span id of the wrong length is refused.
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    req = ExportTraceServiceRequest()
    span = req.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id = bytes(16)
    span.span_id = b"\x01"
    span.name = "bad"
    r = api.post("/v1/traces", data=req.SerializeToString(), headers={"x-mlflow-experiment-id": experiment, "Content-Type": "application/x-protobuf"})
    otlp_error(r, 400)


def test_prompt_registry(server):
    name = f"greeting-{uuid.uuid4().hex[:8]}"
    v1 = mlflow.genai.register_prompt(name=name, template="Hi {{name}}", commit_message="first", tags={"lang": "en"})
    assert v1.version == 1
    v2 = mlflow.genai.register_prompt(name=name, template="Hello {{name}}!")
    assert v2.version == 2
    assert mlflow.genai.load_prompt(f"prompts:/{name}/1").template == "Hi {{name}}"
    mlflow.genai.set_prompt_alias(name, alias="production", version=1)
    loaded = mlflow.genai.load_prompt(f"prompts:/{name}@production")
    assert loaded.version == 1 and loaded.format(name="Ana") == "Hi Ana"
    assert mlflow.genai.load_prompt(f"prompts:/{name}@latest").version == 2
    found = mlflow.genai.search_prompts(filter_string=f"name = '{name}'")
    assert [p.name for p in found] == [name]
    # Prompts stay out of the model list.
    assert name not in [m.name for m in MlflowClient().search_registered_models()]


def test_prompt_tags_model_config_and_deletion(server):
    client = MlflowClient()
    name = f"faq-{uuid.uuid4().hex[:8]}"
    mlflow.genai.register_prompt(name=name, template="Q: {{q}}", model_config={"model_name": "gpt-x", "temperature": 0.1})
    mlflow.genai.register_prompt(name=name, template="Question: {{q}}")
    assert mlflow.genai.load_prompt(f"prompts:/{name}/1").model_config == {"model_name": "gpt-x", "temperature": 0.1}

    mlflow.genai.set_prompt_tag(name, "team", "support")
    assert mlflow.genai.get_prompt_tags(name)["team"] == "support"
    mlflow.genai.delete_prompt_tag(name, "team")
    assert "team" not in mlflow.genai.get_prompt_tags(name)

    mlflow.genai.set_prompt_version_tag(name, 2, "reviewed", "yes")
    assert mlflow.genai.load_prompt(f"prompts:/{name}/2").tags["reviewed"] == "yes"
    mlflow.genai.delete_prompt_version_tag(name, 2, "reviewed")
    assert "reviewed" not in mlflow.genai.load_prompt(f"prompts:/{name}/2").tags

    mlflow.genai.set_prompt_model_config(name, 2, {"model_name": "gpt-y", "max_tokens": 64})
    assert mlflow.genai.load_prompt(f"prompts:/{name}/2").model_config == {"model_name": "gpt-y", "max_tokens": 64}
    mlflow.genai.delete_prompt_model_config(name, 2)
    assert not mlflow.genai.load_prompt(f"prompts:/{name}/2").model_config

    mlflow.genai.set_prompt_alias(name, alias="staging", version=2)
    mlflow.genai.delete_prompt_alias(name, alias="staging")
    with pytest.raises(Exception):
        mlflow.genai.load_prompt(f"prompts:/{name}@staging")

    client.delete_prompt_version(name, "1")
    with pytest.raises(Exception):
        mlflow.genai.load_prompt(f"prompts:/{name}/1", allow_missing=False)
    client.delete_prompt_version(name, "2")
    client.delete_prompt(name)
    assert [p.name for p in mlflow.genai.search_prompts(filter_string=f"name = '{name}'")] == []


def test_async_export_the_default(experiment, monkeypatch):
    # The client's default: traces are exported from a background queue; StartTraceV3 and the
    # OTLP spans can arrive in either order.
    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "true")
    ids = []
    for i in range(3):
        pipeline(i)
        ids.append(mlflow.get_last_active_trace_id())
    mlflow.flush_trace_async_logging()
    for i, tid in enumerate(ids):
        trace = mlflow.get_trace(tid)
        assert trace.info.state.value == "OK" and trace.info.response_preview == str((i + 1) * 2)
        assert sorted(s.name for s in trace.data.spans) == ["llm-call", "pipeline", "step"]


def test_trace_artifact_download(experiment, api):
    from mlflow.entities import SpanEvent, TraceData

    with mlflow.start_span(name="fetch") as span:
        span.set_attributes({"fruit": "apple", "n": 3, "nested": {"a": [1, 2]}})
        span.add_event(SpanEvent("cache_miss", timestamp=99999, attributes={"key": "k1", "tries": 2}))
        with mlflow.start_span(name="inner") as child:
            child.set_inputs({"q": 1})
    mlflow.flush_trace_async_logging()
    r = api.get("/ajax-api/2.0/mlflow/get-trace-artifact", params={"request_id": span.trace_id})
    assert r.status_code == 200, r.text
    assert r.headers["Content-Disposition"] == "attachment; filename=traces.json"
    data = TraceData.from_dict(json.loads(r.text))
    got = {s.name: s.to_dict() for s in data.spans}
    assert got["fetch"] == span.to_dict()
    assert got["inner"] == child.to_dict()
    r = api.get("/ajax-api/2.0/mlflow/get-trace-artifact", params={"request_id": f"tr-{uuid.uuid4().hex}"})
    assert r.status_code == 404


def test_links_made_before_the_trace_arrives(experiment, client, monkeypatch):
    # With the client's default background export, a trace can be linked before it is stored.
    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "true")
    run = client.create_run(experiment).info.run_id
    with mlflow.start_span(name="later") as span:
        span.set_attributes({"x": 1})
    client.link_traces_to_run(trace_ids=[span.trace_id], run_id=run)
    mlflow.flush_trace_async_logging()
    found = client.search_traces(locations=[experiment], filter_string=f"attribute.run_id = '{run}'")
    assert [t.info.trace_id for t in found] == [span.trace_id]


def test_structured_expectations_travel_serialized(experiment, api):
    tid = run_pipeline(7)
    body = {"assessment": {"assessment_name": "latency", "expectation": {"value": {"max_ms": 1000, "ok": True}},
                           "source": {"source_type": "CODE", "source_id": "ci"}}}
    r = api.post(f"/api/3.0/mlflow/traces/{tid}/assessments", json=body)
    assert r.status_code == 200, r.text
    serialized = r.json()["assessment"]["expectation"]["serialized_value"]
    assert serialized["serialization_format"] == "JSON_FORMAT" and json.loads(serialized["value"]) == {"max_ms": 1000, "ok": True}
    got = mlflow.get_assessment(tid, r.json()["assessment"]["assessment_id"])
    assert got.value == {"max_ms": 1000, "ok": True}


def test_full_text_search_reads_values_not_json(experiment, client):
    from mlflow.entities.trace_status import TraceStatus

    def make(name, attributes):
        span = client.start_trace(name=name, experiment_id=experiment)
        span.set_attributes(attributes)
        client.end_trace(request_id=span.trace_id, status=TraceStatus.OK)
        return span.trace_id

    a = make("first", {"test": "value1"})
    b = make("second", {"test": "value2"})
    c = make("third", {"other": "I like it"})

    def text(pattern):
        return {t.info.trace_id for t in client.search_traces(locations=[experiment], filter_string=f"trace.text LIKE '{pattern}'")}

    assert text("%value%") == {a, b}
    assert text("%I like it%") == {c}
    assert text("%ir%") == {a, c}  # span names


def test_v2_trace_api_of_older_clients(experiment, client):
    from mlflow.entities.trace_status import TraceStatus

    store = client._tracing_client.store
    info = store.deprecated_start_trace_v2(
        experiment_id=experiment, timestamp_ms=1000, request_metadata={"m1": "a", "m2": "b"}, tags={"t1": "x"})
    assert len(info.request_id) == 32 and info.timestamp_ms == 1000 and info.status == TraceStatus.IN_PROGRESS
    assert info.request_metadata == {"m1": "a", "m2": "b"} and info.tags["t1"] == "x"
    done = store.deprecated_end_trace_v2(
        request_id=info.request_id, timestamp_ms=3000, status=TraceStatus.OK, request_metadata={"m1": "c", "m3": "d"}, tags={"t2": "y"})
    assert done.execution_time_ms == 2000 and done.status == TraceStatus.OK
    assert done.request_metadata["m1"] == "c" and done.request_metadata["m2"] == "b" and done.request_metadata["m3"] == "d"
    assert done.tags["t1"] == "x" and done.tags["t2"] == "y"
    assert store.get_trace_info(info.request_id).state.value == "OK"


def test_hostile_inputs_on_trace_and_evaluation_routes(experiment, api):
    # Int64.max, NUL, "../", a body over the limit: each a 4xx envelope, never a 5xx or a crash.
    loc = [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": experiment}}]
    r = api.post("/api/3.0/mlflow/traces/search", json={"locations": loc, "max_results": 9223372036854775807})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    for bad_id in ["tr-\u0000x", "../../etc", "a/b"]:
        info = {"trace_id": bad_id, "trace_location": loc[0], "request_time": "2026-01-01T00:00:00Z", "state": "OK"}
        assert_error(api.post("/api/3.0/mlflow/traces", json={"trace": {"trace_info": info}}), 400, "INVALID_PARAMETER_VALUE")
    info = {"trace_id": "tr-ok", "trace_location": loc[0], "request_time": "9999999-01-01T00:00:00Z", "state": "OK"}
    assert_error(api.post("/api/3.0/mlflow/traces", json={"trace": {"trace_info": info}}), 400, "INVALID_PARAMETER_VALUE")
    r = api.post("/api/2.0/mlflow/traces/delete-traces", json={"experiment_id": experiment, "max_timestamp_millis": 9223372036854775807, "max_traces": 9223372036854775807})
    assert r.status_code in (200, 400), r.text
    big = b"\x0a" + b"\xff" * (33 * 1024 * 1024)
    r = api.post("/v1/traces", data=big, headers={"x-mlflow-experiment-id": experiment, "Content-Type": "application/x-protobuf"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "larger than the limit")
    r = api.get("/api/3.0/mlflow/traces/get", params={"trace_id": "../../etc/passwd"})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    r = api.get("/api/3.0/mlflow/datasets/d-none/records", params={"max_results": 9223372036854775807})
    assert r.status_code in (400, 404) and "error_code" in r.json()
    r = api.post("/api/3.0/mlflow/scorers/register", json={"experiment_id": experiment, "name": "s\u0000", "serialized_scorer": "{}"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    r = api.get("/ajax-api/2.0/mlflow/get-trace-artifact", params={"request_id": "../../../etc/passwd"})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")


def test_prompt_links_and_the_prompt_filter(experiment, client, api):
    name = f"tp-{uuid.uuid4().hex[:8]}"
    prompt = mlflow.genai.register_prompt(name=name, template="Hi {{x}}")
    linked, other = run_pipeline(1), run_pipeline(2)
    client.link_prompt_versions_to_trace(prompt_versions=[prompt], trace_id=linked)
    client.link_prompt_versions_to_trace(prompt_versions=[prompt], trace_id=linked)  # twice is once

    @mlflow.trace(name="uses-prompt")
    def uses_prompt():
        return mlflow.genai.load_prompt(f"prompts:/{name}/1").format(x="there")

    uses_prompt()
    mlflow.flush_trace_async_logging()
    inside = mlflow.get_last_active_trace_id()
    found = mlflow.search_traces(filter_string=f"prompt = '{name}/1'", return_type="list")
    # A trace that loaded the prompt carries the same mlflow.linkedPrompts tag the link writes;
    # Reprise's filter reads that tag, the reference only its own link table.
    expected = [linked] if IS_REFERENCE else [linked, inside]
    assert sorted(t.info.trace_id for t in found) == sorted(expected)
    if not IS_REFERENCE:
        assert json.loads(client.get_trace(linked).info.tags["mlflow.linkedPrompts"]) == [{"name": name, "version": "1"}]
    assert mlflow.search_traces(filter_string=f"trace.prompt = '{name}/2'", return_type="list") == []
    assert other not in [t.info.trace_id for t in found]

    link = "/api/2.0/mlflow/traces/link-prompts"
    assert_error(api.post(link, json={"trace_id": "tr-" + "0" * 32, "prompt_versions": [{"name": name, "version": "1"}]}),
                 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(api.post(link, json={"prompt_versions": []}), 400, "INVALID_PARAMETER_VALUE", "trace_id")
    search = {"locations": [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": experiment}}]}
    assert_error(api.post("/api/3.0/mlflow/traces/search", json={**search, "filter": f"prompt = '{name}'"}),
                 400, "INVALID_PARAMETER_VALUE", "Expected format")


@pytest.mark.reprise_only
def test_span_attribute_filter(experiment, api):
    # Reprise compares span.attributes.<key> with the attribute's value as logged ('red', 3); the
    # reference compares with its JSON spelling, so `= 'red'` finds nothing there.
    @mlflow.trace(name="paint")
    def paint(color, coats):
        mlflow.get_current_active_span().set_attributes({"color": color, "coats": coats, "note": "50% off_sale"})
        return color

    ids = {}
    for color, coats in [("red", 3), ("blue", 2), ("Rose", 1)]:
        paint(color, coats)
        mlflow.flush_trace_async_logging()
        ids[color] = mlflow.get_last_active_trace_id()

    def found(f):
        return sorted(t.info.trace_id for t in mlflow.search_traces(filter_string=f, return_type="list"))

    assert found("span.attributes.color = 'red'") == [ids["red"]]
    assert found("span.attributes.color != 'red'") == sorted([ids["blue"], ids["Rose"]])
    assert found("span.attributes.color LIKE 'r%'") == [ids["red"]]
    assert found("span.attributes.color ILIKE 'r%'") == sorted([ids["red"], ids["Rose"]])
    assert found("span.attributes.coats = '3'") == [ids["red"]]
    assert found("span.attributes.`note` = '50% off_sale'") == sorted(ids.values())
    assert found("span.attributes.note = '50_ off%sale'") == []
    assert found("span.attributes.missing = 'x'") == []
    search = {"locations": [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": experiment}}]}
    assert_error(api.post("/api/3.0/mlflow/traces/search", json={**search, "filter": "span.attributes.coats = 3"}),
                 400, "INVALID_PARAMETER_VALUE", "quoted string")
    assert_error(api.post("/api/3.0/mlflow/traces/search", json={**search, "filter": "span.attributes.coats > '3'"}),
                 400, "INVALID_PARAMETER_VALUE", "comparator")
