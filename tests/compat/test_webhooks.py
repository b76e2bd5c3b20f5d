"""MLflow 3.x webhooks through the stock client: definitions, the test call, signed deliveries of
registry events, retries with back-off, and deliveries that never hold up the request that caused
them. A real HTTP receiver on loopback records what arrives."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from conftest import IS_REFERENCE, start_server, stop_server

W = "/api/2.0/mlflow/webhooks"


class Receiver:
    """An HTTP server that records every POST. Paths choose the answer:
    /ok/... 200; /reject/... 400; /flaky/N/... 503 for the first N requests, then 200;
    /hold/... waits until `release` is set, then 200."""

    def __init__(self):
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.counts: dict[str, int] = {}
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.requests.append(
                        {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
                    )
                    n = receiver.counts[self.path] = receiver.counts.get(self.path, 0) + 1
                parts = self.path.strip("/").split("/")
                status = 200
                if parts[0] == "reject":
                    status = 400
                elif parts[0] == "flaky" and n <= int(parts[1]):
                    status = 503
                elif parts[0] == "hold":
                    receiver.release.wait(60)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps({"seen": n}).encode())

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def received(self, prefix: str) -> list[dict]:
        with self.lock:
            return [r for r in self.requests if r["path"].startswith(prefix)]

    def wait_for(self, prefix: str, count: int, timeout: float = 20.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.received(prefix)
            if len(got) >= count:
                return got
            time.sleep(0.05)
        raise AssertionError(f"expected {count} deliveries to {prefix}, got {len(self.received(prefix))}")

    def close(self):
        self.release.set()
        self.httpd.shutdown()


@pytest.fixture()
def receiver():
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


def verify(delivery: dict, secret: str) -> dict:
    """Checks the MLflow signature of one delivery and returns its decoded payload."""
    h = delivery["headers"]
    signed = f"{h['x-mlflow-delivery-id']}.{h['x-mlflow-timestamp']}.".encode() + delivery["body"]
    expected = "v1," + base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()
    assert hmac.compare_digest(h["x-mlflow-signature"], expected), "signature does not verify"
    assert h["content-type"].startswith("application/json")
    return json.loads(delivery["body"])


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def test_create_get_list_update_delete(client, receiver):
    url = receiver.url("/ok/crud")
    hook = client.create_webhook(
        name="ci", url=url, events=["model_version.created", "registered_model.created"], description="CI trigger",
        secret="s3cret",
    )
    assert hook.name == "ci" and hook.url == url and hook.description == "CI trigger"
    assert str(hook.status) == "ACTIVE"
    assert sorted(str(e) for e in hook.events) == ["model_version.created", "registered_model.created"]
    assert hook.creation_timestamp == hook.last_updated_timestamp > 0
    got = client.get_webhook(hook.webhook_id)
    assert got.webhook_id == hook.webhook_id and got.name == "ci"
    assert not got.secret, "the secret never comes back"

    second = client.create_webhook(name="ci", url=url, events=["model_version_alias.created"], status="DISABLED")
    assert second.webhook_id != hook.webhook_id and str(second.status) == "DISABLED"

    ids = [w.webhook_id for w in client.list_webhooks(max_results=1000)]
    assert ids.index(second.webhook_id) < ids.index(hook.webhook_id), "newest first"
    page = client.list_webhooks(max_results=1)
    assert len(page) == 1 and page.token
    rest = client.list_webhooks(max_results=1000, page_token=page.token)
    assert [w.webhook_id for w in page] + [w.webhook_id for w in rest] == ids

    with pytest.raises(MlflowException, match="Webhook URL cannot be empty or just whitespace"):
        client.update_webhook(hook.webhook_id, url="   ")
    updated = client.update_webhook(hook.webhook_id, name="ci-2", status="DISABLED", events=["model_version_tag.set"])
    assert updated.name == "ci-2" and str(updated.status) == "DISABLED"
    assert [str(e) for e in updated.events] == ["model_version_tag.set"]
    assert updated.description == "CI trigger" and updated.last_updated_timestamp >= hook.last_updated_timestamp

    client.delete_webhook(hook.webhook_id)
    client.delete_webhook(second.webhook_id)
    with pytest.raises(MlflowException) as e:
        client.get_webhook(hook.webhook_id)
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert f"Webhook with ID {hook.webhook_id} not found." in str(e.value)


def test_bad_definitions_are_refused(api, receiver):
    good = {"name": "x", "url": receiver.url("/ok/bad"), "events": [{"entity": "MODEL_VERSION", "action": "CREATED"}]}
    cases = [
        ({**good, "url": "ftp://example.com/x"}, "Invalid webhook URL scheme: 'ftp'"),
        ({**good, "events": [{"entity": "REGISTERED_MODEL", "action": "DELETED"}]},
         "Invalid action 'deleted' for entity 'registered_model'. Valid actions are: ['created']"),
        ({**good, "events": [{"entity": "MODEL_VERSION_TAG", "action": "CREATED"}]},
         "Invalid action 'created' for entity 'model_version_tag'. Valid actions are: ['deleted', 'set']"),
        ({**good, "events": []}, "Webhook events must be a non-empty list"),
        ({k: v for k, v in good.items() if k != "name"}, "Missing value for required parameter 'name'"),
        ({k: v for k, v in good.items() if k != "url"}, "Missing value for required parameter 'url'"),
        ({k: v for k, v in good.items() if k != "events"}, "Missing value for required parameter 'events'"),
    ]
    for body, message in cases:
        r = api.post(W, json=body)
        assert r.status_code == 400, (body, r.status_code, r.text)
        assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert message in r.json()["message"], r.json()["message"]
    r = api.get(W, params={"max_results": 100000})
    assert r.status_code == 400 and "max_results must be between 1 and 1000" in r.json()["message"]
    for method in (api.get, api.delete):
        r = method(f"{W}/no-such-webhook")
        assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    r = api.patch(f"{W}/no-such-webhook", json={"status": "DISABLED"})
    assert r.status_code == 404
    r = api.post(f"{W}/no-such-webhook/test", json={})
    assert r.status_code == 404


def test_test_call_reports_the_receivers_answer(client, receiver):
    ok = client.create_webhook(name="t", url=receiver.url("/ok/test"), events=["model_version_alias.created"], secret="k1")
    result = client.test_webhook(ok.webhook_id)
    assert result.success is True and result.response_status == 200 and '"seen"' in result.response_body
    delivery = receiver.wait_for("/ok/test", 1)[0]
    payload = verify(delivery, "k1")
    assert payload["entity"] == "model_version_alias" and payload["action"] == "created"
    assert set(payload["data"]) == {"name", "alias", "version"}

    result = client.test_webhook(ok.webhook_id, event="registered_model.created")
    assert result.success
    assert json.loads(receiver.wait_for("/ok/test", 2)[1]["body"])["entity"] == "registered_model"

    bad = client.create_webhook(name="t", url=receiver.url("/reject/test"), events=["model_version.created"])
    result = client.test_webhook(bad.webhook_id)
    assert result.success is False and result.response_status == 400

    # Nothing listens on port 9 of loopback (discard): the error says so instead of failing the call.
    dead = client.create_webhook(name="t", url="http://127.0.0.1:9/x", events=["model_version.created"])
    result = client.test_webhook(dead.webhook_id)
    assert result.success is False and result.error_message
    for h in (ok, bad, dead):
        client.delete_webhook(h.webhook_id)


def test_registry_events_are_delivered_signed(client, receiver):
    path = f"/ok/{uuid.uuid4().hex[:8]}"
    hook = client.create_webhook(
        name="all",
        url=receiver.url(path),
        events=[
            "registered_model.created", "model_version.created", "model_version_tag.set", "model_version_tag.deleted",
            "model_version_alias.created", "model_version_alias.deleted",
        ],
        secret="top-secret",
    )
    try:
        name = unique("wh-model")
        client.create_registered_model(name, tags={"team": "fraud"}, description="desc")
        client.create_model_version(name, "s3://bucket/model", tags={"t": "v"}, description="vd")
        client.set_model_version_tag(name, "1", "k", "v")
        client.delete_model_version_tag(name, "1", "k")
        client.set_registered_model_alias(name, "champion", "1")
        client.delete_registered_model_alias(name, "champion")
        got = receiver.wait_for(path, 6)
        payloads = [verify(d, "top-secret") for d in got]
        by_event = {f"{p['entity']}.{p['action']}": p for p in payloads}
        assert set(by_event) == {
            "registered_model.created", "model_version.created", "model_version_tag.set", "model_version_tag.deleted",
            "model_version_alias.created", "model_version_alias.deleted",
        }
        assert by_event["registered_model.created"]["data"] == {"name": name, "tags": {"team": "fraud"}, "description": "desc"}
        assert by_event["model_version.created"]["data"] == {
            "name": name, "version": "1", "source": "s3://bucket/model", "run_id": None, "tags": {"t": "v"},
            "description": "vd",
        }
        assert by_event["model_version_tag.set"]["data"] == {"name": name, "version": "1", "key": "k", "value": "v"}
        assert by_event["model_version_tag.deleted"]["data"] == {"name": name, "version": "1", "key": "k"}
        assert by_event["model_version_alias.created"]["data"] == {"name": name, "alias": "champion", "version": "1"}
        assert by_event["model_version_alias.deleted"]["data"] == {"name": name, "alias": "champion"}
        for p in payloads:
            assert p["timestamp"].endswith("+00:00")
        ids = [d["headers"]["x-mlflow-delivery-id"] for d in got]
        assert len(set(ids)) == 6
        for d in got:
            assert abs(int(d["headers"]["x-mlflow-timestamp"]) - time.time()) < 600
        # A tampered body fails verification.
        forged = dict(got[0], body=got[0]["body"].replace(name.encode(), b"someone-else"))
        assert forged["body"] != got[0]["body"]
        with pytest.raises(AssertionError):
            verify(forged, "top-secret")
    finally:
        client.delete_webhook(hook.webhook_id)


def test_unsigned_and_disabled_webhooks(client, receiver):
    plain = client.create_webhook(name="plain", url=receiver.url("/ok/plain"), events=["registered_model.created"])
    off = client.create_webhook(
        name="off", url=receiver.url("/ok/off"), events=["registered_model.created"], status="DISABLED"
    )
    try:
        client.create_registered_model(unique("wh-plain"))
        d = receiver.wait_for("/ok/plain", 1)[0]
        assert "x-mlflow-signature" not in d["headers"] and d["headers"]["x-mlflow-delivery-id"]
        time.sleep(1.0)  # the disabled one had the same chance to be called
        assert receiver.received("/ok/off") == []
    finally:
        client.delete_webhook(plain.webhook_id)
        client.delete_webhook(off.webhook_id)


def test_failed_deliveries_are_retried_with_the_same_id(client, receiver):
    path = f"/flaky/2/{uuid.uuid4().hex[:8]}"
    hook = client.create_webhook(name="flaky", url=receiver.url(path), events=["registered_model.created"], secret="k")
    try:
        client.create_registered_model(unique("wh-flaky"))
        got = receiver.wait_for(path, 3, timeout=60)
        assert len({d["headers"]["x-mlflow-delivery-id"] for d in got}) == 1, "retries keep the delivery id"
        assert len({d["body"] for d in got}) == 1 and len({d["headers"]["x-mlflow-timestamp"] for d in got}) == 1
        for d in got:
            verify(d, "k")
        time.sleep(1.0)
        assert len(receiver.received(path)) == 3, "a delivered event is not sent again"
    finally:
        client.delete_webhook(hook.webhook_id)


def test_a_slow_receiver_never_holds_up_the_registry(client, receiver):
    path = f"/hold/{uuid.uuid4().hex[:8]}"
    hook = client.create_webhook(name="slow", url=receiver.url(path), events=["model_version.created"])
    try:
        name = unique("wh-slow")
        client.create_registered_model(name)
        client.create_model_version(name, "s3://b/1")
        receiver.wait_for(path, 1)  # the receiver now holds that delivery open
        # With the first delivery still unanswered, more registry writes complete at once.
        for _ in range(3):
            client.create_model_version(name, "s3://b/2")
        assert len(client.search_model_versions(f"name = '{name}'")) == 4
        assert not receiver.release.is_set()
        receiver.release.set()
        receiver.wait_for(path, 4)
    finally:
        receiver.release.set()
        client.delete_webhook(hook.webhook_id)


@pytest.mark.reprise_only
def test_delivery_log_shows_outcomes(api, client, receiver):
    path = "/reject/log"
    hook = client.create_webhook(name="log", url=receiver.url(path), events=["registered_model.created"])
    try:
        client.create_registered_model(unique("wh-log"))
        receiver.wait_for(path, 1)
        deadline = time.monotonic() + 10
        while True:
            r = api.get(f"/api/reprise/v1/webhooks/{hook.webhook_id}/deliveries")
            assert r.status_code == 200, r.text
            deliveries = r.json()["deliveries"]
            if deliveries and deliveries[0]["state"] != "PENDING":
                break
            assert time.monotonic() < deadline, deliveries
            time.sleep(0.1)
        d = deliveries[0]
        # A 400 is the receiver refusing the event: not retried, recorded as failed.
        assert d["state"] == "FAILED" and d["attempts"] == 1 and d["last_response_status"] == 400
        assert d["event"] == {"entity": "REGISTERED_MODEL", "action": "CREATED"}
        assert d["payload"]["entity"] == "registered_model"
        assert len(receiver.received(path)) == 1
    finally:
        client.delete_webhook(hook.webhook_id)


def test_defaults_refuse_plain_http_and_internal_addresses():
    """Without the test settings a server accepts https only, as MLflow does."""
    with tempfile.TemporaryDirectory(prefix="reprise-strict-") as d:
        url = start_server(
            Path(d), env_remove=("MLFLOW_WEBHOOK_ALLOWED_SCHEMES", "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS")
        )
        try:
            body = {"name": "x", "url": "http://127.0.0.1:9/x", "events": [{"entity": "MODEL_VERSION", "action": "CREATED"}]}
            r = requests.post(url + W, json=body, timeout=30)
            assert r.status_code == 400
            assert "Invalid webhook URL scheme: 'http'. Allowed schemes are: https." in r.json()["message"]
            if not IS_REFERENCE:
                r = requests.post(url + W, json={**body, "url": "https://127.0.0.1/x"}, timeout=30)
                assert r.status_code == 400 and "private or internal address" in r.json()["message"]
        finally:
            stop_server(url)
