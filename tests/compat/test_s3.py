"""Artifacts in S3-compatible storage, with moto as the S3 endpoint (signatures checked).

* Proxied: ``--artifacts-destination s3://bucket/prefix``; the stock client talks to the server,
  the server to S3 (SigV4 signed by Reprise).
* Direct: ``--default-artifact-root s3://bucket/prefix``; runs get ``s3://`` URIs and the stock
  client writes with boto3 itself; the server still lists and serves them.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import requests

import mlflow
from mlflow import MlflowClient
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

from conftest import MotoS3, assert_error, start_server, stop_server

ART = "/api/2.0/mlflow-artifacts/artifacts"
API = "/api/2.0/mlflow"
PROXY_PREFIX = "proxied"


def tree(root: Path) -> dict[str, bytes]:
    out = {}
    for dp, _, fn in os.walk(root):
        for f in fn:
            p = Path(dp) / f
            out[p.relative_to(root).as_posix()] = p.read_bytes()
    return out


def sha256(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def keys_under(moto: MotoS3, prefix: str) -> dict[str, int]:
    s3 = moto.client()
    out, token = {}, None
    while True:
        kw = {"Bucket": moto.bucket, "Prefix": prefix}
        if token:
            kw["ContinuationToken"] = token
        page = s3.list_objects_v2(**kw)
        for o in page.get("Contents", []):
            out[o["Key"]] = o["Size"]
        if not page.get("IsTruncated"):
            return out
        token = page["NextContinuationToken"]


@pytest.fixture(scope="module")
def s3_server(moto_s3):
    """A server whose artifact proxy stores in s3://<bucket>/proxied; the global tracking URI points
    at it for this module (the stock client resolves ``mlflow-artifacts:`` through it)."""
    old_uri = mlflow.get_tracking_uri() if os.environ.get("MLFLOW_TRACKING_URI") else None
    with tempfile.TemporaryDirectory(prefix="reprise-s3-") as d:
        url = start_server(Path(d), env_extra=moto_s3.env,
                           artifacts_destination=f"s3://{moto_s3.bucket}/{PROXY_PREFIX}")
        mlflow.set_tracking_uri(url)
        os.environ["MLFLOW_TRACKING_URI"] = url
        try:
            yield url
        finally:
            while mlflow.active_run() is not None:
                mlflow.end_run()
            stop_server(url)
            if old_uri:
                mlflow.set_tracking_uri(old_uri)
                os.environ["MLFLOW_TRACKING_URI"] = old_uri
            else:
                os.environ.pop("MLFLOW_TRACKING_URI", None)


@pytest.fixture()
def s3_run(s3_server):
    client = MlflowClient(tracking_uri=s3_server)
    eid = client.create_experiment(f"s3-{uuid.uuid4().hex[:10]}")
    run = client.create_run(eid)
    return client, eid, run.info.run_id


def test_proxied_round_trip(s3_run, moto_s3, tmp_path):
    client, eid, rid = s3_run
    hello = tmp_path / "hello.txt"
    hello.write_text("hello world")
    src = tmp_path / "src"
    (src / "deep" / "deeper").mkdir(parents=True)
    (src / "a.txt").write_text("A")
    (src / "deep" / "b.json").write_text('{"b": 1}')
    (src / "deep" / "deeper" / "c.bin").write_bytes(b"\x00\x01\x02")
    (src / "deep" / "deeper" / "empty.txt").write_bytes(b"")
    (src / "deep" / "with space+plus&amp.txt").write_text("odd name")
    client.log_artifact(rid, str(hello))
    client.log_artifacts(rid, str(src), "sub")

    root = client.list_artifacts(rid)
    assert sorted((a.path, a.is_dir, a.file_size) for a in root) == [("hello.txt", False, 11), ("sub", True, None)]
    deep = client.list_artifacts(rid, "sub/deep")
    assert sorted((a.path, a.is_dir, a.file_size) for a in deep) == [
        ("sub/deep/b.json", False, 8), ("sub/deep/deeper", True, None), ("sub/deep/with space+plus&amp.txt", False, 8)]

    dst = tmp_path / "dst"
    dst.mkdir()
    local = mlflow.artifacts.download_artifacts(run_id=rid, artifact_path="sub", dst_path=str(dst))
    assert tree(Path(local)) == tree(src)
    assert (Path(mlflow.artifacts.download_artifacts(run_id=rid, artifact_path="hello.txt", dst_path=str(dst)))
            .read_text() == "hello world")

    # The bytes are in the bucket, under <prefix>/<experiment>/<run>/artifacts, and nowhere on disk.
    base = f"{PROXY_PREFIX}/{eid}/{rid}/artifacts"
    keys = keys_under(moto_s3, base + "/")
    assert keys == {
        f"{base}/hello.txt": 11, f"{base}/sub/a.txt": 1, f"{base}/sub/deep/b.json": 8,
        f"{base}/sub/deep/deeper/c.bin": 3, f"{base}/sub/deep/deeper/empty.txt": 0,
        f"{base}/sub/deep/with space+plus&amp.txt": 8,
    }
    body = moto_s3.client().get_object(Bucket=moto_s3.bucket, Key=f"{base}/sub/deep/deeper/c.bin")["Body"].read()
    assert body == b"\x00\x01\x02"


def test_large_file_goes_up_in_parts(s3_run, moto_s3, tmp_path):
    client, eid, rid = s3_run
    big = tmp_path / "big.bin"
    size = 20 * 1024 * 1024 + 12345
    with open(big, "wb") as f:
        f.write(os.urandom(size))
    client.log_artifact(rid, str(big), "weights")
    key = f"{PROXY_PREFIX}/{eid}/{rid}/artifacts/weights/big.bin"
    head = moto_s3.client().head_object(Bucket=moto_s3.bucket, Key=key)
    assert head["ContentLength"] == size
    # A multipart object's ETag ends with -<parts>: 8 MiB + 8 MiB + the rest.
    assert head["ETag"].strip('"').endswith("-3"), head["ETag"]
    assert not moto_s3.client().list_multipart_uploads(Bucket=moto_s3.bucket, Prefix=f"{PROXY_PREFIX}/").get("Uploads"), "an upload was left open"
    dst = tmp_path / "dst"
    dst.mkdir()
    local = client.download_artifacts(rid, "weights/big.bin", str(dst))
    assert sha256(Path(local)) == sha256(big)
    listing = client.list_artifacts(rid, "weights")
    assert [(a.path, a.file_size) for a in listing] == [("weights/big.bin", size)]


def test_failed_upload_leaves_nothing(s3_server, s3_run, moto_s3):
    """An upload over the limit of the stream fails part-way: no object, no open multipart upload."""
    client, eid, rid = s3_run
    path = f"{eid}/{rid}/artifacts/broken.bin"

    def body():
        yield b"x" * (9 * 1024 * 1024)  # more than a part: the multipart upload has begun
        raise OSError("client went away")

    with pytest.raises(Exception):
        requests.put(f"{s3_server}{ART}/{path}", data=body(), timeout=60)
    time.sleep(1.0)  # the server may still be reading what was sent before the connection dropped
    deadline = time.monotonic() + 15
    while moto_s3.client().list_multipart_uploads(Bucket=moto_s3.bucket, Prefix=f"{PROXY_PREFIX}/").get("Uploads") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not moto_s3.client().list_multipart_uploads(Bucket=moto_s3.bucket, Prefix=f"{PROXY_PREFIX}/").get("Uploads"), "upload not aborted"
    assert keys_under(moto_s3, f"{PROXY_PREFIX}/{path}") == {}


def test_delete_file_and_folder(s3_server, s3_run, moto_s3, tmp_path):
    client, eid, rid = s3_run
    src = tmp_path / "src"
    (src / "inner").mkdir(parents=True)
    (src / "one.txt").write_text("1")
    (src / "inner" / "two.txt").write_text("2")
    client.log_artifacts(rid, str(src), "tmp")
    client.log_artifact(rid, str(src / "one.txt"))
    base = f"{PROXY_PREFIX}/{eid}/{rid}/artifacts"
    assert len(keys_under(moto_s3, base + "/")) == 3

    repo = get_artifact_repository(client.get_run(rid).info.artifact_uri)
    repo.delete_artifacts("one.txt")
    assert set(keys_under(moto_s3, base + "/")) == {f"{base}/tmp/one.txt", f"{base}/tmp/inner/two.txt"}
    repo.delete_artifacts("tmp")
    assert keys_under(moto_s3, base + "/") == {}
    assert client.list_artifacts(rid) == []
    # Deleting what is not there is not an error (as on a local disk).
    r = requests.delete(f"{s3_server}{ART}/{eid}/{rid}/artifacts/never", timeout=30)
    assert r.status_code == 200, r.text
    r = requests.get(f"{s3_server}{ART}/{eid}/{rid}/artifacts/tmp/one.txt", timeout=30)
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")


def test_server_routes_and_ui_over_s3(s3_server, s3_run, tmp_path):
    client, eid, rid = s3_run
    f = tmp_path / "notes.txt"
    f.write_text("seen in the browser")
    client.log_artifact(rid, str(f), "docs")
    r = requests.get(f"{s3_server}{API}/artifacts/list", params={"run_id": rid, "path": "docs"}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["files"] == [{"path": "docs/notes.txt", "is_dir": False, "file_size": 19}]
    r = requests.get(f"{s3_server}/get-artifact", params={"run_id": rid, "path": "docs/notes.txt"}, timeout=30)
    assert r.status_code == 200 and r.content == b"seen in the browser"
    r = requests.get(f"{s3_server}/ui/runs/{rid}/artifacts", params={"path": "docs/notes.txt"}, timeout=30)
    assert r.status_code == 200, r.text
    assert "seen in the browser" in r.text
    r = requests.get(f"{s3_server}/ui/runs/{rid}/artifacts", timeout=30)
    assert r.status_code == 200 and "docs/" in r.text


@pytest.mark.reprise_only
def test_sealed_artifacts_hold_on_s3(s3_server, s3_run, moto_s3):
    client, eid, rid = s3_run
    base = f"{s3_server}{ART}/{eid}/{rid}/artifacts"
    assert requests.put(f"{base}/model/MLmodel", data=b"flavors: original", timeout=30).status_code == 200
    client.set_terminated(rid)
    name = f"s3-sealed-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(name)
    client.create_model_version(name, client.get_run(rid).info.artifact_uri + "/model", run_id=rid)
    assert_error(requests.put(f"{base}/model/MLmodel", data=b"tampered", timeout=30), 403, "PERMISSION_DENIED", "sealed")
    assert_error(requests.delete(f"{base}/model", timeout=30), 403, "PERMISSION_DENIED", "sealed")
    key = f"{PROXY_PREFIX}/{eid}/{rid}/artifacts/model/MLmodel"
    assert moto_s3.client().get_object(Bucket=moto_s3.bucket, Key=key)["Body"].read() == b"flavors: original"


@pytest.mark.reprise_only
def test_wrong_secret_is_a_clear_error(moto_s3, s3_server, tmp_path):
    bad_secret = "WRONG" + moto_s3.secret[5:] + "-not-the-secret"
    env = dict(moto_s3.env, AWS_SECRET_ACCESS_KEY=bad_secret)
    url = start_server(tmp_path / "bad", env_extra=env, artifacts_destination=f"s3://{moto_s3.bucket}/{PROXY_PREFIX}")
    try:
        r = requests.put(f"{url}{ART}/0/x/artifacts/a.txt", data=b"data", timeout=30)
        body = assert_error(r, 403, "PERMISSION_DENIED", f"bucket '{moto_s3.bucket}'")
        assert "SignatureDoesNotMatch" in body["message"]
        assert bad_secret not in body["message"] and moto_s3.secret not in body["message"]
        r = requests.get(f"{url}{ART}", params={"path": "0"}, timeout=30)
        assert_error(r, 403, "PERMISSION_DENIED", f"bucket '{moto_s3.bucket}'")
        client = MlflowClient(tracking_uri=url)
        run = client.create_run("0")
        f = tmp_path / "a.txt"
        f.write_text("a")
        with pytest.raises(Exception) as e:
            get_artifact_repository(run.info.artifact_uri.replace("mlflow-artifacts:", f"mlflow-artifacts://127.0.0.1:{url.port}")).log_artifact(str(f))
        assert "refused the server's credentials" in str(e.value)
    finally:
        stop_server(url)
    assert url.proc.returncode == 0, url.stderr_text()  # a clean stop (HTTP clients shut down)
    assert bad_secret not in url.stderr_text()
    # The good server never logged its secret either.
    assert moto_s3.secret not in s3_server.stderr_text()


def test_direct_mode_client_writes_with_boto3(moto_s3, tmp_path, monkeypatch):
    for k, v in moto_s3.env.items():
        monkeypatch.setenv(k, v)
    root = f"s3://{moto_s3.bucket}/direct"
    url = start_server(tmp_path / "direct", env_extra=moto_s3.env, extra_args=("--default-artifact-root", root))
    try:
        client = MlflowClient(tracking_uri=url)
        eid = client.create_experiment(f"direct-{uuid.uuid4().hex[:8]}")
        assert client.get_experiment(eid).artifact_location == f"{root}/{eid}"
        run = client.create_run(eid)
        rid = run.info.run_id
        assert run.info.artifact_uri == f"{root}/{eid}/{rid}/artifacts"
        f = tmp_path / "model.txt"
        f.write_text("written by boto3")
        client.log_artifact(rid, str(f), "m")  # the client's own S3 repository (boto3), not the server
        key = f"direct/{eid}/{rid}/artifacts/m/model.txt"
        assert moto_s3.client().get_object(Bucket=moto_s3.bucket, Key=key)["Body"].read() == b"written by boto3"
        assert [(a.path, a.file_size) for a in client.list_artifacts(rid, "m")] == [("m/model.txt", 16)]
        # The server reads the same bucket for its own routes and the UI.
        r = requests.get(f"{url}{API}/artifacts/list", params={"run_id": rid, "path": "m"}, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json() == {"root_uri": run.info.artifact_uri, "files": [{"path": "m/model.txt", "is_dir": False, "file_size": 16}]}
        r = requests.get(f"{url}/get-artifact", params={"run_id": rid, "path": "m/model.txt"}, timeout=30)
        assert r.status_code == 200 and r.content == b"written by boto3"
        r = requests.get(f"{url}/ui/runs/{rid}/artifacts", params={"path": "m/model.txt"}, timeout=30)
        assert r.status_code == 200 and "written by boto3" in r.text
        # A location in another bucket is not the server's to open.
        other = client.create_experiment(f"other-{uuid.uuid4().hex[:8]}", artifact_location="s3://some-other-bucket/x")
        orun = client.create_run(other)
        r = requests.get(f"{url}{API}/artifacts/list", params={"run_id": orun.info.run_id}, timeout=30)
        assert_error(r, 403, "PERMISSION_DENIED", "outside this server's artifact roots")
    finally:
        stop_server(url)
    assert url.proc.returncode == 0, url.stderr_text()


@pytest.mark.reprise_only
def test_no_serve_artifacts_with_s3_destination_is_direct_mode(moto_s3, tmp_path):
    """As with mlflow server: without the proxy, the destination is the root runs write to."""
    url = start_server(tmp_path / "noserve", env_extra=moto_s3.env, extra_args=("--no-serve-artifacts",),
                       artifacts_destination=f"s3://{moto_s3.bucket}/noserve")
    try:
        client = MlflowClient(tracking_uri=url)
        run = client.create_run("0")
        assert run.info.artifact_uri == f"s3://{moto_s3.bucket}/noserve/0/{run.info.run_id}/artifacts"
        moto_s3.client().put_object(Bucket=moto_s3.bucket, Key=f"noserve/0/{run.info.run_id}/artifacts/x.txt", Body=b"x")
        r = requests.get(f"{url}{API}/artifacts/list", params={"run_id": run.info.run_id}, timeout=30)
        assert r.json()["files"] == [{"path": "x.txt", "is_dir": False, "file_size": 1}]
        assert_error(requests.get(f"{url}{ART}", timeout=30), 503, "TEMPORARILY_UNAVAILABLE")
    finally:
        stop_server(url)


# --- Multipart upload through presigned URLs (A5-A7) and content digests ----------------------------
#
# The session's moto checks SigV4 signatures, but only from the Authorization header: in that mode a
# presigned request (query-string auth, no header) makes it fail with a 500 whether or not the
# signature is right (moto 5.2.5, IAMRequestBase reads headers["Authorization"]), and without that
# mode it accepts any presigned URL. So the multipart tests run against a second moto without
# authentication, and each presigned URL's signature is checked here, independently, against the
# real secret (`assert_presigned`); SigV4Tests checks the signer against AWS's published example.

MPU = "/api/2.0/mlflow-artifacts/mpu"
MiB = 1024 * 1024


def reprise_cli(*args, env_extra=None):
    """``reprise`` itself (the binary under test), as a user would run it."""
    import subprocess

    from conftest import REPRISE_BIN
    env = dict(os.environ)
    env.update(env_extra or {})
    return subprocess.run([REPRISE_BIN, *args], capture_output=True, text=True, timeout=120, env=env)


def open_uploads(moto: MotoS3) -> list:
    # Only this module's prefix: on the S3 pass every server of the suite shares the session's bucket.
    return moto.client().list_multipart_uploads(Bucket=moto.bucket, Prefix=f"{PROXY_PREFIX}/").get("Uploads", [])


def assert_presigned(url: str, moto: MotoS3, method: str = "PUT", max_expires: int = 3600) -> None:
    """Recomputes the SigV4 query signature of ``url`` from AWS's description, with the secret, as
    S3 would check it (moto does not)."""
    import hmac
    from urllib.parse import parse_qsl, quote, urlsplit

    u = urlsplit(url)
    pairs = parse_qsl(u.query, keep_blank_values=True)
    q = dict(pairs)
    assert q["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256" and q["X-Amz-SignedHeaders"] == "host"
    assert 0 < int(q["X-Amz-Expires"]) <= max_expires
    key_id, day, region, service, term = q["X-Amz-Credential"].split("/")
    assert (key_id, region, service, term) == (moto.key_id, moto.region, "s3", "aws4_request")
    assert moto.secret not in url
    enc = lambda s: quote(s, safe="-_.~")  # noqa: E731
    canonical_query = "&".join(f"{k}={v}" for k, v in sorted((enc(k), enc(v)) for k, v in pairs if k != "X-Amz-Signature"))
    creq = "\n".join([method, u.path, canonical_query, f"host:{u.netloc}", "", "host", "UNSIGNED-PAYLOAD"])
    sts = "\n".join(["AWS4-HMAC-SHA256", q["X-Amz-Date"], f"{day}/{region}/s3/aws4_request", hashlib.sha256(creq.encode()).hexdigest()])
    k = ("AWS4" + moto.secret).encode()
    for part in (day, region, "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    assert hmac.new(k, sts.encode(), hashlib.sha256).hexdigest() == q["X-Amz-Signature"], url


@pytest.fixture(scope="module")
def moto_open(tmp_path_factory):
    """A moto_server without authentication (presigned URLs work), with the same bucket."""
    import signal
    import subprocess
    import sys

    from conftest import _signal_group, free_port
    tmp = tmp_path_factory.mktemp("moto-open")
    port = free_port()
    log = open(tmp / "moto.log", "wb")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{endpoint}/moto-api/", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "moto_server did not start"
            time.sleep(0.1)
        moto = MotoS3(endpoint, "AKIAREPRISEMPUTEST01", "mpu-test-secret/+=" + uuid.uuid4().hex, proc, tmp / "moto.log")
        moto.client().create_bucket(Bucket=MotoS3.bucket)
        yield moto
    finally:
        _signal_group(proc, signal.SIGTERM)
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def mpu_server(moto_open):
    with tempfile.TemporaryDirectory(prefix="reprise-mpu-") as d:
        url = start_server(Path(d), env_extra=moto_open.env, artifacts_destination=f"s3://{moto_open.bucket}/{PROXY_PREFIX}")
        try:
            yield url
        finally:
            stop_server(url)
        assert moto_open.secret not in url.stderr_text()


@pytest.fixture()
def mpu_run(mpu_server, monkeypatch):
    """A run on the multipart server, with the stock client's tracking URI pointing there."""
    old = mlflow.get_tracking_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mpu_server)
    mlflow.set_tracking_uri(mpu_server)
    client = MlflowClient(tracking_uri=mpu_server)
    eid = client.create_experiment(f"mpu-{uuid.uuid4().hex[:10]}")
    try:
        yield client, eid, client.create_run(eid).info.run_id
    finally:
        mlflow.set_tracking_uri(old)


@pytest.mark.reprise_only
def test_server_info_offers_multipart_for_s3_only(mpu_server, tmp_path):
    info = requests.get(f"{mpu_server}/api/3.0/mlflow/server-info", timeout=30).json()
    assert info["multipart_uploads_enabled"] is True
    assert info["multipart_downloads_enabled"] is False
    # A local destination: off, and the reference's 501 that the client falls back on.
    local = start_server(tmp_path / "local", artifacts_destination=str(tmp_path / "local" / "artifacts"))
    try:
        assert requests.get(f"{local}/api/3.0/mlflow/server-info", timeout=30).json()["multipart_uploads_enabled"] is False
        r = requests.post(f"{local}{MPU}/create/0/x/artifacts", json={"path": "/tmp/f.bin", "num_parts": 2}, timeout=30)
        assert r.status_code == 501
        assert r.json() == {"error_code": "NOT_IMPLEMENTED", "message": "Multipart upload is not supported for the current artifact repository"}
    finally:
        stop_server(local)


@pytest.mark.reprise_only  # checks Reprise's presigned URLs and error messages (boto may presign SigV2)
def test_stock_client_multipart_upload_goes_straight_to_the_bucket(mpu_run, mpu_server, moto_open, tmp_path, monkeypatch):
    """The stock client with proxy multipart on: create -> presigned PUTs to moto -> complete; then
    the file comes back whole through the proxy."""
    client, eid, rid = mpu_run
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(1 * MiB))
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(5 * MiB))
    big = tmp_path / "weights.bin"
    size = 12 * MiB + 777
    big.write_bytes(os.urandom(size))

    # The client PUTs parts with requests.put: see where they went.
    sent = []
    real_put = requests.put

    def spy_put(url, *a, **kw):
        sent.append(url)
        return real_put(url, *a, **kw)

    monkeypatch.setattr(requests, "put", spy_put)
    client.log_artifact(rid, str(big), "model")
    monkeypatch.setattr(requests, "put", real_put)

    # Three presigned part PUTs (5 + 5 + 2 MiB), all to the bucket, none through the server.
    assert len(sent) == 3, sent
    for u in sent:
        assert u.startswith(f"{moto_open.endpoint}/{moto_open.bucket}/{PROXY_PREFIX}/{eid}/{rid}/artifacts/model/weights.bin?"), u
        assert_presigned(u, moto_open)
    key = f"{PROXY_PREFIX}/{eid}/{rid}/artifacts/model/weights.bin"
    head = moto_open.client().head_object(Bucket=moto_open.bucket, Key=key)
    assert head["ContentLength"] == size
    assert head["ETag"].strip('"').endswith("-3"), head["ETag"]
    assert not open_uploads(moto_open), "an upload was left open"

    dst = tmp_path / "dst"
    dst.mkdir()
    local = client.download_artifacts(rid, "model/weights.bin", str(dst))
    assert sha256(Path(local)) == sha256(big)
    assert [(a.path, a.file_size) for a in client.list_artifacts(rid, "model")] == [("model/weights.bin", size)]


@pytest.mark.reprise_only
def test_multipart_upload_is_hashed_by_reading_it_back(mpu_run, mpu_server, tmp_path, monkeypatch):
    """A multipart upload's bytes never pass through the server: it records the size when the
    upload completes, then reads the object back once and adds its SHA-256 (method
    multipart-readback), after which verify checks the file like any other."""
    client, eid, rid = mpu_run
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(1 * MiB))
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(5 * MiB))
    big = tmp_path / "big.bin"
    data = os.urandom(6 * MiB)
    big.write_bytes(data)
    client.log_artifact(rid, str(big))
    deadline = time.time() + 30
    while True:
        r = requests.get(f"{mpu_server}/api/reprise/v1/artifact-digests", params={"run_id": rid}, timeout=30)
        assert r.status_code == 200, r.text
        (f,) = r.json()["files"]
        assert f["path"] == "big.bin" and f["size"] == 6 * MiB, f
        if f["method"] == "multipart-readback" or time.time() > deadline:
            break
        assert f["method"] == "multipart" and "sha256" not in f, f
        time.sleep(0.2)
    assert f["method"] == "multipart-readback" and f["sha256"] == hashlib.sha256(data).hexdigest(), f
    out = reprise_cli("artifacts", "verify", rid, "--tracking-uri", mpu_server)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines()[0].split()[:2] == ["ok", "big.bin"], out.stdout


@pytest.mark.reprise_only  # checks Reprise's presigned URLs and error messages (boto may presign SigV2)
def test_multipart_abort_with_the_stock_client(mpu_run, moto_open, tmp_path):
    """The stock client's own create and abort calls: the upload is gone and no object appears."""
    client, eid, rid = mpu_run
    repo = get_artifact_repository(client.get_run(rid).info.artifact_uri)
    f = tmp_path / "aborted.bin"
    f.write_bytes(b"x" * (5 * MiB + 10))
    create = repo.create_multipart_upload(str(f), 2, "parts")
    assert create.upload_id and [c.part_number for c in create.credentials] == [1, 2]
    # One part goes up, then the client gives up.
    r = requests.put(create.credentials[0].url, data=b"x" * (5 * MiB), timeout=60)
    assert r.status_code == 200, r.text
    assert [u["UploadId"] for u in open_uploads(moto_open)] == [create.upload_id]
    repo.abort_multipart_upload(str(f), create.upload_id, "parts")
    assert not open_uploads(moto_open)
    assert keys_under(moto_open, f"{PROXY_PREFIX}/{eid}/{rid}/artifacts/parts/") == {}
    # Aborting or completing it again names an upload that is gone: 404 (S3's NoSuchUpload), not a
    # server error.
    base = f"{client._tracking_client.tracking_uri}{MPU}"
    r = requests.post(f"{base}/abort/{eid}/{rid}/artifacts/parts", json={"path": str(f), "upload_id": create.upload_id}, timeout=30)
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST", "multipart upload")
    r = requests.post(f"{base}/complete/{eid}/{rid}/artifacts/parts",
                      json={"path": str(f), "upload_id": create.upload_id, "parts": [{"part_number": 1, "etag": "0"}]}, timeout=30)
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST", "multipart upload")


@pytest.mark.reprise_only
def test_multipart_input_is_checked(mpu_run, mpu_server, moto_open):
    client, eid, rid = mpu_run
    base = f"{mpu_server}{MPU}"
    where = f"{eid}/{rid}/artifacts/in"
    for body in [{"path": "f.bin", "num_parts": 0}, {"path": "f.bin", "num_parts": -3}, {"path": "f.bin", "num_parts": 10001},
                 {"path": "f.bin", "num_parts": 2 ** 70}, {"path": "f.bin"}, {"num_parts": 2}, {"path": "..", "num_parts": 1},
                 {"path": "", "num_parts": 1}, {"path": "dir/", "num_parts": 1}, {"path": "a\x01b", "num_parts": 1},
                 {"path": "f.bin", "num_parts": "many"}, {"path": 7, "num_parts": 1}]:
        r = requests.post(f"{base}/create/{where}", json=body, timeout=30)
        assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    for bad in ["%2E%2E/x", "a/..%2F..%2Fx", "a%5C..%5Cb"]:
        assert_error(requests.post(f"{base}/create/{bad}", json={"path": "f.bin", "num_parts": 1}, timeout=30), 400, "INVALID_PARAMETER_VALUE")
    assert_error(requests.post(f"{base}/create/{where}", data="{", headers={"Content-Type": "application/json"}, timeout=30),
                 400, "INVALID_PARAMETER_VALUE")
    assert not open_uploads(moto_open)
    # Only the last component of the client's local path names the object.
    r = requests.post(f"{base}/create/{where}", json={"path": "/home/someone/../../etc/f.bin", "num_parts": 2}, timeout=30)
    assert r.status_code == 200, r.text
    created = r.json()
    assert [c["part_number"] for c in created["credentials"]] == [1, 2]
    assert all(c["headers"] == {} for c in created["credentials"])
    assert all(f"/{PROXY_PREFIX}/{eid}/{rid}/artifacts/in/f.bin?" in c["url"] for c in created["credentials"])
    uid = created["upload_id"]
    etags = []
    for c, chunk in zip(created["credentials"], [b"a" * (5 * MiB), b"tail"]):
        assert_presigned(c["url"], moto_open)
        pr = requests.put(c["url"], data=chunk, timeout=60)
        assert pr.status_code == 200, pr.text
        etags.append(pr.headers["ETag"])
    complete = f"{base}/complete/{where}"
    for parts in [[], [{"part_number": 2, "etag": etags[1]}, {"part_number": 1, "etag": etags[0]}],
                  [{"part_number": 1, "etag": etags[0]}, {"part_number": 1, "etag": etags[0]}],
                  [{"part_number": 0, "etag": etags[0]}], [{"part_number": 10001, "etag": etags[0]}], [{"part_number": 1}],
                  [{"part_number": 1, "etag": ""}], [{"part_number": 1, "etag": 5}], "nope", [7],
                  [{"part_number": 1, "etag": etags[0]}, {"part_number": 2, "etag": '"0123456789abcdef0123456789abcdef"'}]]:
        r = requests.post(complete, json={"path": "f.bin", "upload_id": uid, "parts": parts}, timeout=30)
        assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    assert_error(requests.post(complete, json={"path": "f.bin", "parts": [{"part_number": 1, "etag": etags[0]}]}, timeout=30),
                 400, "INVALID_PARAMETER_VALUE")
    # An upload id the store never issued is the client's mistake: 404, whatever the store answers
    # to completing it (moto: a 500; the server asks ListParts first).
    r = requests.post(complete, json={"path": "f.bin", "upload_id": "0", "parts": [{"part_number": 1, "etag": "0"}]}, timeout=30)
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST", "multipart upload")
    r = requests.post(complete, json={"path": "f.bin", "upload_id": uid,
                                      "parts": [{"part_number": 1, "etag": etags[0], "url": "x"}, {"part_number": 2, "etag": etags[1]}]}, timeout=30)
    assert r.status_code == 200 and r.json() == {}, r.text
    key = f"{PROXY_PREFIX}/{eid}/{rid}/artifacts/in/f.bin"
    assert moto_open.client().get_object(Bucket=moto_open.bucket, Key=key)["Body"].read() == b"a" * (5 * MiB) + b"tail"
    assert not open_uploads(moto_open)
    assert_error(requests.post(f"{base}/abort/{where}", json={"path": "f.bin"}, timeout=30), 400, "INVALID_PARAMETER_VALUE")


@pytest.mark.reprise_only
def test_multipart_respects_seals(mpu_run, mpu_server):
    client, eid, rid = mpu_run
    base = f"{mpu_server}{ART}/{eid}/{rid}/artifacts"
    assert requests.put(f"{base}/model/MLmodel", data=b"flavors: x", timeout=30).status_code == 200
    client.set_terminated(rid)
    name = f"mpu-sealed-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(name)
    client.create_model_version(name, client.get_run(rid).info.artifact_uri + "/model", run_id=rid)
    r = requests.post(f"{mpu_server}{MPU}/create/{eid}/{rid}/artifacts/model", json={"path": "weights.bin", "num_parts": 1}, timeout=30)
    assert_error(r, 403, "PERMISSION_DENIED", "sealed")


@pytest.mark.reprise_only
def test_verify_on_s3_catches_an_overwritten_object(s3_run, s3_server, moto_s3, tmp_path):
    """Uploaded with the stock client through the proxy (signatures checked); then the bucket is
    changed behind the server's back."""
    client, eid, rid = s3_run
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "a.txt").write_text("alpha")
    (src / "d" / "b.bin").write_bytes(os.urandom(3 * MiB))
    client.log_artifacts(rid, str(src))
    ok = reprise_cli("artifacts", "verify", rid, "--tracking-uri", s3_server)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert [line.split()[:2] for line in ok.stdout.splitlines()] == [["ok", "a.txt"], ["ok", "d/b.bin"], ["2", "ok"]], ok.stdout

    base = f"{PROXY_PREFIX}/{eid}/{rid}/artifacts"
    s3 = moto_s3.client()
    s3.put_object(Bucket=moto_s3.bucket, Key=f"{base}/d/b.bin", Body=b"swapped behind the server's back")
    s3.delete_object(Bucket=moto_s3.bucket, Key=f"{base}/a.txt")
    s3.put_object(Bucket=moto_s3.bucket, Key=f"{base}/extra.txt", Body=b"never uploaded through the server")
    bad = reprise_cli("artifacts", "verify", rid, "--tracking-uri", s3_server, "--json")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    import json as _json
    report = _json.loads(bad.stdout)
    assert report["ok"] is False
    assert {f["path"]: f["status"] for f in report["files"]} == {"a.txt": "missing", "d/b.bin": "MISMATCH", "extra.txt": "unrecorded"}
