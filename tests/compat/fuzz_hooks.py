"""Schemathesis hooks for test_fuzz.py (loaded through SCHEMATHESIS_HOOKS=fuzz_hooks).

The OpenAPI document names the strings that follow a grammar with custom formats (search filters,
order_by clauses, page tokens, model JSON, lineage entities): these strategies generate valid ones,
so schema-valid requests reach the handlers instead of stopping at the parser. The map hooks fix
the few constraints a JSON schema cannot state (unique keys inside a list, two query parameters that
go together); the document's descriptions say them in words.
"""

from __future__ import annotations

import base64
import json

import schemathesis
from hypothesis import strategies as st

WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=8)
TEXT = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789 _-", max_size=8)
NUMBER = st.integers(-(10**9), 10**9).map(str) | st.floats(-1e6, 1e6, allow_nan=False).map(lambda f: f"{f:.3f}")
STRING_OPS = st.sampled_from(["=", "!=", "LIKE", "ILIKE"])
NUMERIC_OPS = st.sampled_from(["=", "!=", ">", ">=", "<", "<="])


def quoted(s: st.SearchStrategy) -> st.SearchStrategy:
    return s.map(lambda v: "'" + v + "'")


def clause(key: st.SearchStrategy, ops: st.SearchStrategy, value: st.SearchStrategy) -> st.SearchStrategy:
    return st.tuples(key, ops, value).map(lambda t: f"{t[0]} {t[1]} {t[2]}")


def filters(*clauses: st.SearchStrategy) -> st.SearchStrategy:
    one = st.one_of(*clauses)
    return st.just("") | st.lists(one, min_size=1, max_size=3).map(" AND ".join)


def string_clause(prefix: str) -> st.SearchStrategy:
    return clause(WORD.map(lambda k: prefix + k), STRING_OPS, quoted(TEXT))


def attribute(names: list[str], ops: st.SearchStrategy, value: st.SearchStrategy, prefixes=("", "attribute.")) -> st.SearchStrategy:
    return clause(st.tuples(st.sampled_from(list(prefixes)), st.sampled_from(names)).map("".join), ops, value)


def order_by(fields: list[str] | st.SearchStrategy) -> st.SearchStrategy:
    field = st.sampled_from(fields) if isinstance(fields, list) else fields
    return st.tuples(field, st.sampled_from(["", " ASC", " DESC"])).map("".join)


TAG = string_clause("tags.")

FORMATS = {
    "mlflow-page-token": st.just("")
    | st.integers(0, 10_000).map(lambda n: base64.b64encode(json.dumps({"offset": n}).encode()).decode()),
    "mlflow-filter-experiment": filters(
        attribute(["name"], STRING_OPS, quoted(TEXT)),
        attribute(["creation_time", "last_update_time"], NUMERIC_OPS, st.integers(0, 2**53).map(str)),
        TAG,
    ),
    "mlflow-filter-run": filters(
        clause(WORD.map(lambda k: "metrics." + k), NUMERIC_OPS, NUMBER),
        string_clause("params."),
        TAG,
        attribute(["run_name", "user_id"], STRING_OPS, quoted(TEXT), prefixes=("attributes.", "attribute.")),
        attribute(["status"], st.just("="), quoted(st.sampled_from(["RUNNING", "FINISHED", "FAILED", "KILLED"])), prefixes=("attributes.",)),
        attribute(["start_time", "end_time"], NUMERIC_OPS, st.integers(0, 2**53).map(str), prefixes=("attributes.",)),
    ),
    "mlflow-filter-registered-model": filters(attribute(["name"], STRING_OPS, quoted(TEXT)), TAG),
    "mlflow-filter-model-version": filters(
        attribute(["name", "run_id", "source_path"], STRING_OPS, quoted(TEXT)),
        attribute(["version_number"], NUMERIC_OPS, st.integers(0, 10**6).map(str)),
        TAG,
    ),
    "mlflow-filter-logged-model": filters(
        attribute(["name", "model_id", "source_run_id"], STRING_OPS, quoted(TEXT)),
        attribute(["creation_time", "last_updated_time"], NUMERIC_OPS, st.integers(0, 2**53).map(str)),
        clause(WORD.map(lambda k: "metrics." + k), NUMERIC_OPS, NUMBER),
        string_clause("params."),
        TAG,
    ),
    "mlflow-order-by-experiment": order_by(["name", "experiment_id", "creation_time", "last_update_time"]),
    "mlflow-order-by-run": order_by(
        st.sampled_from(["attributes.start_time", "attributes.end_time", "attributes.run_name", "attributes.status"])
        | WORD.map(lambda k: "metrics." + k)
        | WORD.map(lambda k: "params." + k)
        | WORD.map(lambda k: "tags." + k)
    ),
    # (timestamp is another name of last_updated_timestamp: one of them at a time)
    "mlflow-order-by-registered-model": order_by(["name", "last_updated_timestamp"]),
    "mlflow-order-by-model-version": order_by(["name", "version_number", "creation_timestamp", "last_updated_timestamp"]),
    "mlflow-order-by-logged-model-field": st.sampled_from(
        ["name", "model_id", "model_type", "status", "source_run_id", "creation_timestamp", "last_updated_timestamp"]
    )
    | WORD.map(lambda k: "metrics." + k),
    "mlflow-model-json": st.fixed_dictionaries(
        {
            "artifact_path": WORD,
            "flavors": st.just({"python_function": {}}),
            "utc_time_created": st.just("2026-01-01 00:00:00.000000"),
            "run_id": WORD,
        }
    ).map(json.dumps),
    "mlflow-model-version-source": st.one_of(
        WORD.map(lambda w: f"s3://bucket/{w}"),
        WORD.map(lambda w: f"gs://bucket/models/{w}"),
        st.text(alphabet="0123456789abcdef", min_size=32, max_size=32).map(lambda h: f"models:/m-{h}"),
    ),
    "reprise-lineage-entity": st.one_of(
        WORD.map(lambda w: "run:" + w),
        WORD.map(lambda w: "dataset:" + w),
        WORD.map(lambda w: "logged_model:m-" + w),
        st.tuples(WORD, st.integers(1, 99)).map(lambda t: f"model_version:{t[0]}/{t[1]}"),
        st.tuples(WORD, WORD).map(lambda t: f"alias:{t[0]}@{t[1]}"),
        WORD.map(lambda w: "registered_model:" + w),
    ),
}

for _name, _strategy in FORMATS.items():
    schemathesis.openapi.format(_name, _strategy)


def _order_field(clause: object) -> object:
    return clause.split()[0] if isinstance(clause, str) and clause.split() else clause


def _unique_by(items: list, key) -> list:
    seen, out = set(), []
    for item in items:
        k = key(item)
        try:
            if k in seen:
                continue
            seen.add(k)
        except TypeError:  # unhashable: leave as generated
            pass
        out.append(item)
    return out


@schemathesis.hook
def map_body(context, body):
    # order_by names each field once; a log-batch names each param key once.
    if isinstance(body, dict):
        if isinstance(body.get("order_by"), list):
            body["order_by"] = _unique_by(body["order_by"], _order_field)
        if isinstance(body.get("params"), list):
            body["params"] = _unique_by(body["params"], lambda p: p.get("key") if isinstance(p, dict) else id(p))
    return body


@schemathesis.hook
def map_query(context, query):
    if not isinstance(query, dict):
        return query
    if isinstance(query.get("order_by"), list):
        query["order_by"] = _unique_by(query["order_by"], _order_field)
    # get-history-bulk-interval: start_step and end_step go together, start first.
    if "start_step" in query or "end_step" in query:
        start, end = query.get("start_step"), query.get("end_step")
        if isinstance(start, int) and isinstance(end, int):
            query["start_step"], query["end_step"] = min(start, end), max(start, end)
        elif isinstance(start, int) or isinstance(end, int):
            query.pop("start_step", None)
            query.pop("end_step", None)
    return query
