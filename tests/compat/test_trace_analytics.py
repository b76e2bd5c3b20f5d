"""Trace analytics with the stock client (spec §2.3): `traces/metrics` (QueryTraceMetrics) over the
TRACES, SPANS and ASSESSMENTS views, and `traces/calculate-filter-correlation` (NPMI).

Every expectation here was checked against the reference server (COMPAT_TARGET=mlflow); where Reprise
answers differently on purpose (a 4xx where the reference answers 500, a page token it never gives)
the part says so and runs on Reprise only."""

from __future__ import annotations

import math
import time
from dataclasses import asdict

import pytest

import mlflow
from mlflow import MlflowClient
from mlflow.entities import AssessmentSource
from mlflow.entities.trace_metrics import AggregationType, MetricAggregation, MetricViewType
from mlflow.entities.trace_status import TraceStatus
from mlflow.exceptions import MlflowException
from mlflow.tracing.client import TracingClient

from conftest import IS_REFERENCE, assert_error

MS = 1_000_000  # nanoseconds


@pytest.fixture(autouse=True)
def sync_trace_export(monkeypatch):
    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")


def agg(*types, p=None):
    out = [MetricAggregation(aggregation_type=AggregationType(t)) for t in types]
    if p is not None:
        out += [MetricAggregation(aggregation_type=AggregationType.PERCENTILE, percentile_value=v) for v in p]
    return out


def points(client, experiment, view, metric, aggregations, **kw):
    got = client._tracing_client.store.query_trace_metrics(
        experiment_ids=[experiment], view_type=view, metric_name=metric, aggregations=aggregations, **kw)
    return [asdict(p) for p in got]


def make_trace(client, experiment, name, *, start_ms, duration_ms, status=TraceStatus.OK, tags=None,
               tokens=None, children=()):
    """A trace with exact times: a root span and children (name, span_type, offset_ms, duration_ms, attributes)."""
    attributes = {"mlflow.chat.tokenUsage": tokens} if tokens else None
    root = client.start_trace(name=name, experiment_id=experiment, tags=tags, attributes=attributes,
                              start_time_ns=start_ms * MS)
    for child, span_type, offset, length, attrs in children:
        span = client.start_span(name=child, trace_id=root.trace_id, parent_id=root.span_id, span_type=span_type,
                                 attributes=attrs, start_time_ns=(start_ms + offset) * MS)
        client.end_span(trace_id=root.trace_id, span_id=span.span_id, end_time_ns=(start_ms + offset + length) * MS)
    client.end_trace(trace_id=root.trace_id, status=status, end_time_ns=(start_ms + duration_ms) * MS)
    mlflow.flush_trace_async_logging()
    return root.trace_id


@pytest.fixture()
def traced(experiment, client):
    """Five traces an hour apart from a fixed hour: names, statuses, latencies, tokens and LLM spans known."""
    base = (int(time.time()) // 3600 - 10) * 3600 * 1000  # ten hours ago, on the hour
    llm = lambda model, cost: {"mlflow.llm.model": model, "mlflow.llm.provider": "acme",
                               "mlflow.llm.cost": {"input_cost": cost, "output_cost": 2 * cost, "total_cost": 3 * cost}}
    specs = [
        ("agent", 100, TraceStatus.OK, {"env": "prod"}, {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15},
         [("plan", "LLM", 10, 40, llm("m-small", 0.5)), ("search", "TOOL", 60, 20, None)]),
        ("agent", 300, TraceStatus.OK, {"env": "prod"}, {"input_tokens": 30, "output_tokens": 15, "total_tokens": 45},
         [("plan", "LLM", 10, 60, llm("m-large", 2.0)), ("search", "TOOL", 100, 50, None)]),
        ("agent", 200, TraceStatus.ERROR, {"env": "dev"}, None, [("search", "TOOL", 10, 30, None)]),
        ("chat", 50, TraceStatus.OK, {"env": "dev"}, {"input_tokens": 4, "output_tokens": 4, "total_tokens": 8},
         [("plan", "LLM", 5, 30, llm("m-small", 1.0))]),
        ("chat", 0, TraceStatus.OK, None, None, []),
    ]
    ids = []
    for i, (name, duration, status, tags, tokens, children) in enumerate(specs):
        ids.append(make_trace(client, experiment, name, start_ms=base + i * 3600 * 1000, duration_ms=duration,
                              status=status, tags=tags, tokens=tokens, children=children))
    return {"experiment": experiment, "ids": ids, "base": base}


def test_trace_view_counts_latency_and_tokens(traced, client):
    e = traced["experiment"]
    T = MetricViewType.TRACES
    assert points(client, e, T, "trace_count", agg("COUNT")) == [
        {"metric_name": "trace_count", "dimensions": {}, "values": {"COUNT": 5.0}}]
    assert points(client, e, T, "trace_count", agg("COUNT"), dimensions=["trace_name", "trace_status"]) == [
        {"metric_name": "trace_count", "dimensions": {"trace_name": "agent", "trace_status": "ERROR"}, "values": {"COUNT": 1.0}},
        {"metric_name": "trace_count", "dimensions": {"trace_name": "agent", "trace_status": "OK"}, "values": {"COUNT": 2.0}},
        {"metric_name": "trace_count", "dimensions": {"trace_name": "chat", "trace_status": "OK"}, "values": {"COUNT": 2.0}},
    ]
    # Latencies 100, 300, 200, 50, 0 ms: percentiles interpolate between ranks.
    [lat] = points(client, e, T, "latency", agg("AVG", "MIN", "MAX", p=[50, 90]))
    assert lat["values"] == {"AVG": 130.0, "MIN": 0.0, "MAX": 300.0, "P50.0": 100.0, "P90.0": 260.0}
    assert points(client, e, T, "latency", agg("AVG"), dimensions=["trace_name"]) == [
        {"metric_name": "latency", "dimensions": {"trace_name": "agent"}, "values": {"AVG": 200.0}},
        {"metric_name": "latency", "dimensions": {"trace_name": "chat"}, "values": {"AVG": 25.0}},
    ]
    # Tokens come from the trace's usage (the client sums its LLM spans'); traces without any take no part.
    [tok] = points(client, e, T, "input_tokens", agg("SUM", "AVG", "MIN", "MAX"))
    assert tok["values"] == {"SUM": 44.0, "AVG": 44.0 / 3, "MIN": 4.0, "MAX": 30.0}
    assert points(client, e, T, "total_tokens", agg("SUM"), dimensions=["trace_name"]) == [
        {"metric_name": "total_tokens", "dimensions": {"trace_name": "agent"}, "values": {"SUM": 60.0}},
        {"metric_name": "total_tokens", "dimensions": {"trace_name": "chat"}, "values": {"SUM": 8.0}},
    ]
    assert points(client, e, T, "cache_read_input_tokens", agg("SUM")) == []

    # Filters: one `=` comparison each, all must hold.
    count = lambda *filters: points(client, e, T, "trace_count", agg("COUNT"), filters=list(filters))[0]["values"]["COUNT"]
    assert count("trace.status = 'OK'") == 4.0
    assert count("trace.tag.env = 'prod'") == 2.0
    assert count("trace.status = 'OK'", "trace.tag.env = 'dev'") == 1.0
    assert count("trace.tag.env = 'nowhere'") == 0.0


def test_sessions_count_distinct_conversations(experiment, client):
    @mlflow.trace(name="turn")
    def turn(session):
        if session:
            mlflow.update_current_trace(metadata={"mlflow.trace.session": session})
        return session

    for session in ["s-1", "s-1", "s-2", None]:
        turn(session)
    mlflow.flush_trace_async_logging()
    assert points(client, experiment, MetricViewType.TRACES, "session_count", agg("COUNT")) == [
        {"metric_name": "session_count", "dimensions": {}, "values": {"COUNT": 2.0}}]


def test_time_buckets_and_windows(traced, client):
    e, base = traced["experiment"], traced["base"]
    T = MetricViewType.TRACES
    hour = lambda i: time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(base / 1000 + i * 3600))
    got = points(client, e, T, "trace_count", agg("COUNT"), dimensions=["trace_status"], time_interval_seconds=3600,
                 start_time_ms=base, end_time_ms=base + 3 * 3600 * 1000)
    assert got == [
        {"metric_name": "trace_count", "dimensions": {"trace_status": "OK", "time_bucket": hour(0)}, "values": {"COUNT": 1.0}},
        {"metric_name": "trace_count", "dimensions": {"trace_status": "OK", "time_bucket": hour(1)}, "values": {"COUNT": 1.0}},
        {"metric_name": "trace_count", "dimensions": {"trace_status": "ERROR", "time_bucket": hour(2)}, "values": {"COUNT": 1.0}},
        # The window includes its end.
        {"metric_name": "trace_count", "dimensions": {"trace_status": "OK", "time_bucket": hour(3)}, "values": {"COUNT": 1.0}},
    ]
    # Buckets line up with the epoch, not with the window's start.
    [day] = points(client, e, T, "trace_count", agg("COUNT"), time_interval_seconds=86400 * 365,
                   start_time_ms=0, end_time_ms=base + 10 * 3600 * 1000)
    assert day["values"] == {"COUNT": 5.0}
    assert day["dimensions"]["time_bucket"].endswith("T00:00:00+00:00")
    with pytest.raises(MlflowException, match="start_time_ms and end_time_ms are required"):
        points(client, e, T, "trace_count", agg("COUNT"), time_interval_seconds=60)


def test_span_view_types_models_costs_and_latency(traced, client):
    e = traced["experiment"]
    S = MetricViewType.SPANS
    assert points(client, e, S, "span_count", agg("COUNT"), dimensions=["span_type"]) == [
        {"metric_name": "span_count", "dimensions": {"span_type": "LLM"}, "values": {"COUNT": 3.0}},
        {"metric_name": "span_count", "dimensions": {"span_type": "TOOL"}, "values": {"COUNT": 3.0}},
        {"metric_name": "span_count", "dimensions": {"span_type": "UNKNOWN"}, "values": {"COUNT": 5.0}},
    ]
    # Only spans that called a model have a model dimension.
    assert points(client, e, S, "span_count", agg("COUNT"), dimensions=["span_model_name", "span_model_provider"]) == [
        {"metric_name": "span_count", "dimensions": {"span_model_name": "m-large", "span_model_provider": "acme"}, "values": {"COUNT": 1.0}},
        {"metric_name": "span_count", "dimensions": {"span_model_name": "m-small", "span_model_provider": "acme"}, "values": {"COUNT": 2.0}},
    ]
    assert points(client, e, S, "total_cost", agg("SUM", "MAX"), dimensions=["span_model_name"]) == [
        {"metric_name": "total_cost", "dimensions": {"span_model_name": "m-large"}, "values": {"SUM": 6.0, "MAX": 6.0}},
        {"metric_name": "total_cost", "dimensions": {"span_model_name": "m-small"}, "values": {"SUM": 4.5, "MAX": 3.0}},
    ]
    assert points(client, e, S, "latency", agg("AVG", "MAX"), dimensions=["span_name"], filters=["span.type = 'TOOL'"]) == [
        {"metric_name": "latency", "dimensions": {"span_name": "search"}, "values": {"AVG": 100.0 / 3, "MAX": 50.0}},
    ]
    ok_spans = points(client, e, S, "span_count", agg("COUNT"), filters=["trace.status = 'OK'", "span.name = 'plan'"])
    assert ok_spans[0]["values"] == {"COUNT": 3.0}


def test_assessment_view_counts_and_values(traced, client):
    e, ids = traced["experiment"], traced["ids"]
    human = AssessmentSource("HUMAN", "rev")
    mlflow.log_feedback(trace_id=ids[0], name="quality", value=0.9, source=human)
    mlflow.log_feedback(trace_id=ids[1], name="quality", value=0.5, source=human)
    mlflow.log_feedback(trace_id=ids[1], name="safe", value=True, source=human)
    mlflow.log_feedback(trace_id=ids[2], name="safe", value="no", source=human)
    mlflow.log_feedback(trace_id=ids[3], name="tone", value="warm", source=human)
    mlflow.log_expectation(trace_id=ids[3], name="answer", value="yes")
    A = MetricViewType.ASSESSMENTS
    assert points(client, e, A, "assessment_count", agg("COUNT"), dimensions=["assessment_name"]) == [
        {"metric_name": "assessment_count", "dimensions": {"assessment_name": n}, "values": {"COUNT": c}}
        for n, c in [("answer", 1.0), ("quality", 2.0), ("safe", 2.0), ("tone", 1.0)]]
    by_value = points(client, e, A, "assessment_count", agg("COUNT"), dimensions=["assessment_name", "assessment_value"])
    assert [(p["dimensions"]["assessment_name"], p["dimensions"]["assessment_value"]) for p in by_value] == [
        ("answer", '"yes"'), ("quality", "0.5"), ("quality", "0.9"), ("safe", '"no"'), ("safe", "true"), ("tone", '"warm"')]
    # Numbers, booleans and yes/no read as numbers; other strings take no part.
    assert points(client, e, A, "assessment_value", agg("AVG", "MAX"), dimensions=["assessment_name"]) == [
        {"metric_name": "assessment_value", "dimensions": {"assessment_name": "answer"}, "values": {"AVG": 1.0, "MAX": 1.0}},
        {"metric_name": "assessment_value", "dimensions": {"assessment_name": "quality"}, "values": {"AVG": 0.7, "MAX": 0.9}},
        {"metric_name": "assessment_value", "dimensions": {"assessment_name": "safe"}, "values": {"AVG": 0.5, "MAX": 1.0}},
    ]
    count = lambda f: points(client, e, A, "assessment_count", agg("COUNT"), filters=[f])[0]["values"]["COUNT"]
    assert count("assessment.type = 'expectation'") == 1.0
    assert count("assessment.name = 'safe'") == 2.0
    assert count("trace.tag.env = 'prod'") == 3.0


def test_refusals(experiment, api):
    url = "/api/3.0/mlflow/traces/metrics"
    body = lambda **kw: {"experiment_ids": [experiment], "view_type": "TRACES", "metric_name": "trace_count",
                         "aggregations": [{"aggregation_type": "COUNT"}], **kw}
    cases = [
        (body(metric_name="bogus"), "metric_name must be one of ['trace_count', 'session_count', 'latency'"),
        (body(aggregations=[{"aggregation_type": "SUM"}]), "Found invalid aggregation_type(s): ['SUM']. Supported aggregation types: ['COUNT']"),
        (body(metric_name="latency", aggregations=[{"aggregation_type": "COUNT"}]),
         "Supported aggregation types: ['AVG', 'MAX', 'MIN', 'PERCENTILE']"),
        (body(dimensions=["span_type"]), "Found invalid dimension(s): ['span_type']. Supported dimensions: ['trace_name', 'trace_status']"),
        (body(filters=["span.type = 'LLM'"]), "Filtering by span is only supported for SPANS view type, got TRACES"),
        (body(filters=["trace.name = 'x'"]), "Invalid entity 'name' specified for view type 'trace'"),
        (body(filters=["trace.status != 'OK'"]), "only '=' operator is supported"),
        (body(filters=["trace.tag = 'x'"]), "Filtering by tag requires a key"),
        (body(filters=["status = 'OK'"]), "Columns should be specified as 'trace.<key>'"),
        (body(filters=["trace.status = OK"]), "not quoted"),
        (body(time_interval_seconds=60), "start_time_ms and end_time_ms are required if time_interval_seconds is set"),
        ({k: v for k, v in body().items() if k != "view_type"}, "Missing value for required parameter 'view_type'"),
        ({k: v for k, v in body().items() if k != "metric_name"}, "Missing value for required parameter 'metric_name'"),
    ]
    for payload, message in cases:
        assert_error(api.post(url, json=payload), 400, "INVALID_PARAMETER_VALUE", message)
    if not IS_REFERENCE:
        # The reference answers these with a 500 page (a missing or out-of-range percentile), or an
        # empty answer (no aggregation at all, a negative bucket width).
        for payload, message in [
            (body(metric_name="latency", aggregations=[{"aggregation_type": "PERCENTILE"}]), "needs percentile_value"),
            (body(metric_name="latency", aggregations=[{"aggregation_type": "PERCENTILE", "percentile_value": 150}]), "between 0 and 100"),
            (body(aggregations=[]), "at least one aggregation"),
            (body(time_interval_seconds=-5, start_time_ms=0, end_time_ms=10), "time_interval_seconds"),
            (body(time_interval_seconds=2**62, start_time_ms=0, end_time_ms=10), "time_interval_seconds"),
            (body(max_results=0), "max_results"),
        ]:
            assert_error(api.post(url, json=payload), 400, "INVALID_PARAMETER_VALUE", message)


@pytest.mark.reprise_only
def test_metric_pages(traced, client):
    # The reference cuts at max_results without a token; Reprise says where the next page starts.
    e = traced["experiment"]
    store = client._tracing_client.store
    kw = dict(experiment_ids=[e], view_type=MetricViewType.SPANS, metric_name="span_count",
              aggregations=agg("COUNT"), dimensions=["span_name"])
    first = store.query_trace_metrics(max_results=2, **kw)
    assert [p.dimensions["span_name"] for p in first] == ["agent", "chat"] and first.token
    second = store.query_trace_metrics(max_results=2, page_token=first.token, **kw)
    assert [p.dimensions["span_name"] for p in second] == ["plan", "search"] and not second.token


def test_filter_correlation(experiment, client, server):
    # MLflow's own scenario: 6 prod traces of TOOL, 4 dev traces of which 3 LLM.
    for i in range(6):
        span = client.start_trace(name=f"prod-{i}", experiment_id=experiment, tags={"env": "prod", "kind": "TOOL"})
        client.end_trace(request_id=span.request_id, status=TraceStatus.OK)
    for i in range(4):
        span = client.start_trace(name=f"dev-{i}", experiment_id=experiment,
                                  tags={"env": "dev", "kind": "LLM" if i else "TOOL"})
        client.end_trace(request_id=span.request_id, status=TraceStatus.ERROR if i == 3 else TraceStatus.OK)
    mlflow.flush_trace_async_logging()
    tc = TracingClient(tracking_uri=server)
    r = tc.calculate_trace_filter_correlation(
        experiment_ids=[experiment], filter_string1="tags.env = 'prod'", filter_string2="tags.kind = 'TOOL'")
    assert (r.total_count, r.filter1_count, r.filter2_count, r.joint_count) == (10, 6, 7, 6)
    # NPMI = ln(p(xy) / (p(x) p(y))) / -ln(p(xy)); smoothed with +1/2 on the joint, +1 on each count, n + 2.
    npmi = lambda j, a, b: math.log(j / (a * b)) / -math.log(j)
    assert r.npmi == pytest.approx(npmi(0.6, 0.6, 0.7))
    assert r.npmi_smoothed == pytest.approx(npmi(6.5 / 12, 7 / 12, 8 / 12))
    never = tc.calculate_trace_filter_correlation(
        experiment_ids=[experiment], filter_string1="tags.env = 'prod'", filter_string2="tags.kind = 'LLM'")
    assert (never.joint_count, never.npmi) == (0, -1.0)
    empty = tc.calculate_trace_filter_correlation(
        experiment_ids=[experiment], filter_string1="tags.env = 'staging'", filter_string2="tags.kind = 'TOOL'")
    assert (empty.filter1_count, empty.filter2_count) == (0, 7) and math.isnan(empty.npmi)
    # A base filter narrows the population both filters are tested on.
    based = tc.calculate_trace_filter_correlation(
        experiment_ids=[experiment], filter_string1="tags.env = 'dev'", filter_string2="tags.kind = 'LLM'",
        base_filter="trace.status = 'OK'")
    assert (based.total_count, based.filter1_count, based.filter2_count, based.joint_count) == (9, 3, 2, 2)
    # The full trace grammar: AND, span and attribute filters.
    both = tc.calculate_trace_filter_correlation(
        experiment_ids=[experiment], filter_string1="tags.env = 'dev' AND trace.status = 'OK'",
        filter_string2="trace.name LIKE 'dev-%'")
    assert (both.filter1_count, both.filter2_count, both.joint_count) == (3, 4, 3)
    with pytest.raises(MlflowException, match="Invalid"):
        tc.calculate_trace_filter_correlation(
            experiment_ids=[experiment], filter_string1="invalid.filter = 'test'", filter_string2="tags.kind = 'TOOL'")
