"""Fixtures for the Reprise compatibility suite.

The suite drives a real server over real HTTP with the stock `mlflow` client.

* By default the server under test is Reprise: ``$REPRISE_BIN`` (default
  ``<repo>/.build/debug/reprise``).
* With ``COMPAT_TARGET=mlflow`` the reference ``mlflow server`` from this venv is
  started instead, to check that the tests themselves encode the reference behaviour.
"""

from __future__ import annotations

import os

# Must be set before mlflow is imported anywhere: a server 5xx must fail fast instead
# of being retried with exponential backoff for minutes.
os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "30"
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
os.environ.pop("MLFLOW_TRACKING_URI", None)
os.environ.pop("MLFLOW_EXPERIMENT_NAME", None)
os.environ.pop("MLFLOW_EXPERIMENT_ID", None)

import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import requests  # noqa: E402

import mlflow  # noqa: E402
from mlflow import MlflowClient  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPAT_TARGET = os.environ.get("COMPAT_TARGET", "reprise").strip().lower()
IS_REFERENCE = COMPAT_TARGET == "mlflow"
REPRISE_BIN = os.environ.get("REPRISE_BIN", str(REPO_ROOT / ".build" / "debug" / "reprise"))
START_TIMEOUT_S = 120.0 if IS_REFERENCE else 30.0


TEST_TIMEOUT_S = int(os.environ.get("COMPAT_TEST_TIMEOUT", "300"))


class CompatTestTimeout(Exception):
    pass


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """Per-test watchdog without pytest-timeout: SIGALRM raises inside the hung test."""

    def on_alarm(signum, frame):
        raise CompatTestTimeout(f"test exceeded {TEST_TIMEOUT_S}s (COMPAT_TEST_TIMEOUT)")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TEST_TIMEOUT_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def pytest_collection_modifyitems(config, items):
    if not IS_REFERENCE:
        return
    skip = pytest.mark.skip(reason="reprise_only test; COMPAT_TARGET=mlflow")
    for item in items:
        if "reprise_only" in item.keywords:
            item.add_marker(skip)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerURL(str):
    """The server's base URL (a str) that also carries the process and its directories."""

    proc: subprocess.Popen
    tmp: Path
    artifacts: Path
    port: int
    stderr_path: Path

    def stderr_text(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-20000:]
        except OSError:
            return ""


# With REPRISE_COMPAT_POSTGRES_URL (a server's `postgres` database, as the test command sets it),
# every Reprise server of the suite keeps its metadata in a PostgreSQL database of its own.
COMPAT_POSTGRES_URL = os.environ.get("REPRISE_COMPAT_POSTGRES_URL", "")


def _backend_store_uri(tmp: Path) -> str:
    """The server's metadata store: a SQLite file in its folder, or (on PostgreSQL) a database named
    after the folder, created on first use, so a server restarted on the same folder finds its data."""
    if not COMPAT_POSTGRES_URL or IS_REFERENCE:
        return f"sqlite:///{tmp}/reprise.db"
    import hashlib
    name = "reprise_c_" + hashlib.sha256(str(tmp).encode()).hexdigest()[:20]
    exists = subprocess.run(
        ["psql", "-Atq", COMPAT_POSTGRES_URL, "-c", f"SELECT 1 FROM pg_database WHERE datname = '{name}'"],
        check=True, capture_output=True, text=True).stdout.strip()
    if not exists:
        subprocess.run(["psql", "-q", COMPAT_POSTGRES_URL, "-c", f"CREATE DATABASE {name}"], check=True, capture_output=True)
    return COMPAT_POSTGRES_URL.rsplit("/", 1)[0] + "/" + name


# With REPRISE_COMPAT_S3=1 (the test command's PostgreSQL pass sets it), every Reprise server of the
# suite keeps its proxied artifacts in S3 (the suite's moto server) under a prefix of its own, unless
# a test names another destination; `url.artifacts` then reads the bucket instead of a folder.
COMPAT_S3 = os.environ.get("REPRISE_COMPAT_S3", "") == "1" and not IS_REFERENCE


def _s3_prefix(tmp: Path) -> str:
    import hashlib
    return "srv-" + hashlib.sha256(str(tmp).encode()).hexdigest()[:20]


class S3Path:
    """The few `Path` operations the suite uses on an artifact folder (``/``, ``read_bytes``,
    ``read_text``, ``write_bytes``, ``write_text``, ``unlink``, ``exists``, ``is_dir``, ``is_file``,
    ``files``) done on the bucket, so a test that checks or tampers with what the server stored does
    so on the objects themselves on the S3 pass."""

    def __init__(self, moto: "MotoS3", key: str):
        self.moto, self.key = moto, key.strip("/")

    def __truediv__(self, part) -> "S3Path":
        return S3Path(self.moto, f"{self.key}/{str(part).strip('/')}")

    def __str__(self) -> str:
        return f"s3://{self.moto.bucket}/{self.key}"

    def read_bytes(self) -> bytes:
        return self.moto.client().get_object(Bucket=self.moto.bucket, Key=self.key)["Body"].read()

    def read_text(self) -> str:
        return self.read_bytes().decode()

    # Writing behind the server's back (what a tampering test does to a folder).
    def write_bytes(self, data: bytes) -> None:
        self.moto.client().put_object(Bucket=self.moto.bucket, Key=self.key, Body=data)

    def write_text(self, text: str) -> None:
        self.write_bytes(text.encode())

    def unlink(self) -> None:
        self.moto.client().delete_object(Bucket=self.moto.bucket, Key=self.key)

    def files(self) -> list[str]:
        """Keys below this folder, relative to it, sorted."""
        client, out, kw = self.moto.client(), [], {"Bucket": self.moto.bucket, "Prefix": self.key + "/"}
        while True:
            page = client.list_objects_v2(**kw)
            out += [o["Key"][len(self.key) + 1:] for o in page.get("Contents", [])]
            if not page.get("IsTruncated"):
                return sorted(out)
            kw["ContinuationToken"] = page["NextContinuationToken"]

    def is_file(self) -> bool:
        try:
            self.moto.client().head_object(Bucket=self.moto.bucket, Key=self.key)
            return True
        except Exception:  # botocore ClientError 404
            return False

    def is_dir(self) -> bool:
        return bool(self.moto.client().list_objects_v2(Bucket=self.moto.bucket, Prefix=self.key + "/", MaxKeys=1).get("KeyCount"))

    def exists(self) -> bool:
        return self.is_file() or self.is_dir()


# Tests about the local artifact folder itself (symbolic links planted in it, files written next to
# it, local paths as artifact locations) run where the proxy writes to a folder, not on the S3 pass.
local_artifacts_only = pytest.mark.skipif(
    COMPAT_S3, reason="about the local artifact folder (links, paths beside it); this pass keeps artifacts in S3")


# Tests that open the server's SQLite file themselves (to tamper with the audit chain, say) run on
# SQLite only; on PostgreSQL the same checks run in the Swift store conformance suites.
sqlite_file_only = pytest.mark.skipif(
    bool(COMPAT_POSTGRES_URL), reason="opens the server's SQLite file; covered on PostgreSQL by the Swift audit conformance")


def suite_server_env() -> dict:
    """Environment every server of this pass needs beyond the caller's (S3 credentials on the S3 pass)."""
    return dict(shared_moto().env) if COMPAT_S3 else {}


def _default_destination(tmp: Path) -> str:
    if COMPAT_S3:
        return f"s3://{MotoS3.bucket}/{_s3_prefix(tmp)}"
    return f"{tmp}/artifacts"


def _server_command(tmp: Path, port: int, artifacts_destination: str | None = None, backend_store_uri: str | None = None) -> list[str]:
    destination = artifacts_destination or _default_destination(tmp)
    if IS_REFERENCE:
        mlflow_bin = Path(sys.executable).parent / "mlflow"
        return [
            str(mlflow_bin), "server",
            "--host", "127.0.0.1",
            "--port", str(port),
            "--backend-store-uri", f"sqlite:///{tmp}/mlflow.db",
            "--artifacts-destination", destination,
            "--workers", "1",
        ]
    return [
        REPRISE_BIN, "server",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--backend-store-uri", backend_store_uri or _backend_store_uri(tmp),
        "--artifacts-destination", destination,
    ]


# The webhook tests deliver to a receiver on loopback over plain http, which both servers refuse by
# default (https only, no private addresses); the session servers allow it. Retries are quicker than
# in production so a test sees three attempts in about a second (the reference ignores this one).
WEBHOOK_TEST_ENV = {
    "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
    "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
    "REPRISE_WEBHOOK_RETRY_BASE_MS": "150",
    # The reference caches the webhook list for 60 s, so a webhook made by one test would miss the
    # next test's events. Reprise reads the list inside each write and has no such cache.
    "MLFLOW_WEBHOOK_CACHE_TTL": "0",
}
if IS_REFERENCE:
    from cryptography.fernet import Fernet  # noqa: E402  (installed with mlflow)

    WEBHOOK_TEST_ENV["MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"] = Fernet.generate_key().decode()


def start_server(
    tmp: Path, port: int | None = None, timeout: float = START_TIMEOUT_S, env_remove: tuple[str, ...] = (),
    extra_args: tuple[str, ...] = (), env_extra: dict | None = None, artifacts_destination: str | None = None,
    backend_store_uri: str | None = None,
) -> ServerURL:
    """Start the server under test in ``tmp`` and wait for GET /health == 200.

    ``extra_args`` are more server flags; ``env_extra`` more environment variables;
    ``artifacts_destination`` replaces ``<tmp>/artifacts`` (an ``s3://`` URI, say)."""
    tmp = Path(tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    if not IS_REFERENCE and not os.access(REPRISE_BIN, os.X_OK):
        pytest.fail(f"Reprise binary not found or not executable: {REPRISE_BIN} (set REPRISE_BIN)")
    port = port or free_port()
    env = dict(os.environ)
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    env.update(WEBHOOK_TEST_ENV)
    env.update(suite_server_env())
    for key in env_remove:
        env.pop(key, None)
    env.update(env_extra or {})
    stderr_path = tmp / f"server-{port}-{int(time.time() * 1000)}.stderr"
    stderr_file = open(stderr_path, "wb")
    proc = subprocess.Popen(
        _server_command(tmp, port, artifacts_destination, backend_store_uri) + list(extra_args),
        cwd=str(tmp),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=stderr_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    stderr_file.close()
    url = ServerURL(f"http://127.0.0.1:{port}")
    url.proc = proc
    url.tmp = tmp
    url.artifacts = S3Path(shared_moto(), _s3_prefix(tmp)) if COMPAT_S3 and not artifacts_destination else tmp / "artifacts"
    url.port = port
    url.stderr_path = stderr_path
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            pytest.fail(
                f"server exited with code {proc.returncode} before becoming healthy.\n"
                f"--- server output ---\n{url.stderr_text()}"
            )
        try:
            r = requests.get(f"{url}/health", timeout=2)
            if r.status_code == 200:
                return url
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            stop_server(url)
            pytest.fail(
                f"server did not answer GET /health with 200 within {timeout:.0f}s.\n"
                f"--- server output ---\n{url.stderr_text()}"
            )
        time.sleep(0.1)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            pass


def stop_server(url: ServerURL, timeout: float = 15.0) -> None:
    proc = url.proc
    if proc.poll() is None:
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait(timeout=10)
    else:
        # The leader is gone; make sure no worker of its group survives.
        _signal_group(proc, signal.SIGKILL)


def kill_server(url: ServerURL) -> None:
    """SIGKILL the server (crash simulation)."""
    _signal_group(url.proc, signal.SIGKILL)
    url.proc.wait(timeout=10)


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("server")
    url = start_server(tmp)
    mlflow.set_tracking_uri(url)
    os.environ["MLFLOW_TRACKING_URI"] = url
    try:
        yield url
    finally:
        while mlflow.active_run() is not None:
            mlflow.end_run()
        stop_server(url)


@pytest.fixture()
def fresh_server():
    """A separate server over an empty store, for tests that need one.

    The global tracking URI keeps pointing at the session server: use
    ``MlflowClient(fresh_server)`` or raw HTTP against it.
    """
    with tempfile.TemporaryDirectory(prefix="reprise-fresh-") as d:
        url = start_server(Path(d))
        try:
            yield url
        finally:
            stop_server(url)


@pytest.fixture()
def client(server) -> MlflowClient:
    return MlflowClient(tracking_uri=server)


@pytest.fixture()
def experiment(server):
    """A fresh, uniquely named experiment that is the active one; yields its id."""
    name = f"exp-{uuid.uuid4().hex[:12]}"
    exp = mlflow.set_experiment(name)
    try:
        yield exp.experiment_id
    finally:
        while mlflow.active_run() is not None:
            mlflow.end_run()


@pytest.fixture()
def api(server):
    """Tiny raw-HTTP helper bound to the session server."""
    return Api(server)


class Api:
    def __init__(self, base: str):
        self.base = base.rstrip("/")
        self.s = requests.Session()

    def url(self, path: str) -> str:
        return self.base + path

    def get(self, path, **kw):
        kw.setdefault("timeout", 30)
        return self.s.get(self.url(path), **kw)

    def post(self, path, json=None, **kw):
        kw.setdefault("timeout", 30)
        return self.s.post(self.url(path), json=json, **kw)

    def put(self, path, **kw):
        kw.setdefault("timeout", 30)
        return self.s.put(self.url(path), **kw)

    def delete(self, path, **kw):
        kw.setdefault("timeout", 30)
        return self.s.delete(self.url(path), **kw)

    def patch(self, path, **kw):
        kw.setdefault("timeout", 30)
        return self.s.patch(self.url(path), **kw)

    # convenience wrappers around core rpcs
    def create_experiment(self, name=None) -> str:
        name = name or f"raw-{uuid.uuid4().hex[:12]}"
        r = self.post("/api/2.0/mlflow/experiments/create", json={"name": name})
        assert r.status_code == 200, r.text
        return r.json()["experiment_id"]

    def create_run(self, experiment_id: str, **extra) -> str:
        body = {"experiment_id": experiment_id, "start_time": int(time.time() * 1000)}
        body.update(extra)
        r = self.post("/api/2.0/mlflow/runs/create", json=body)
        assert r.status_code == 200, r.text
        return r.json()["run"]["info"]["run_id"]

    def get_run(self, run_id: str) -> dict:
        r = self.get("/api/2.0/mlflow/runs/get", params={"run_id": run_id})
        assert r.status_code == 200, r.text
        return r.json()["run"]


def assert_error(resp, status: int, code: str, message_part: str | None = None):
    """Assert a JSON error envelope with the given status, error_code and message substring."""
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert resp.headers.get("Content-Type", "").startswith("application/json"), resp.headers
    body = resp.json()
    assert isinstance(body, dict), body
    assert body.get("error_code") == code, body
    assert isinstance(body.get("message"), str) and body["message"], body
    if message_part is not None:
        assert message_part in body["message"], body["message"]
    return body


# --------------------------------------------------------------------------- S3 (moto)


class MotoS3:
    """A running ``moto_server`` that checks SigV4 signatures, with one IAM user allowed everything
    and one bucket. ``env`` is what a server or client needs to reach it (as boto3 reads it)."""

    bucket = "reprise-artifacts"
    region = "us-east-1"

    def __init__(self, endpoint: str, key_id: str, secret: str, proc: subprocess.Popen, log_path: Path):
        self.endpoint = endpoint
        self.key_id = key_id
        self.secret = secret
        self.proc = proc
        self.log_path = log_path

    @property
    def env(self) -> dict:
        return {
            "MLFLOW_S3_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret,
            "AWS_DEFAULT_REGION": self.region,
        }

    def client(self, secret: str | None = None):
        import boto3  # installed with moto[server]

        return boto3.client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=self.key_id,
            aws_secret_access_key=secret or self.secret, region_name=self.region)


_MOTO: "MotoS3 | None" = None


def shared_moto() -> MotoS3:
    """The suite's one ``moto_server``, started on first use, in the mode that checks signatures.

    moto accepts unsigned and wrongly signed requests until ``INITIAL_NO_AUTH_ACTION_COUNT``
    actions have been served; the first three create an IAM user, its access key and an allow-all
    policy. From then on a request signed with a wrong secret gets ``SignatureDoesNotMatch``, so a
    broken signer fails the tests instead of passing silently. Stopped at the end of the session
    (``pytest_sessionfinish``)."""
    global _MOTO
    if _MOTO is not None:
        return _MOTO
    moto_bin = Path(sys.executable).parent / "moto_server"
    if not moto_bin.exists():
        pytest.fail(f"moto_server not found next to {sys.executable}: pip install -r tests/compat/requirements.txt")
    import boto3

    tmp = Path(tempfile.mkdtemp(prefix="reprise-moto-"))
    port = free_port()
    log_path = tmp / "moto.log"
    log = open(log_path, "wb")
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="3")
    proc = subprocess.Popen(
        [str(moto_bin), "-H", "127.0.0.1", "-p", str(port)], env=env, stdin=subprocess.DEVNULL,
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"moto_server exited with {proc.returncode}:\n{log_path.read_text(errors='replace')[-5000:]}")
            try:
                if requests.get(f"{endpoint}/moto-api/", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail("moto_server did not start within 60 s")
            time.sleep(0.1)
        iam = boto3.client("iam", endpoint_url=endpoint, aws_access_key_id="bootstrap",
                           aws_secret_access_key="bootstrap", region_name=MotoS3.region)
        iam.create_user(UserName="reprise")
        key = iam.create_access_key(UserName="reprise")["AccessKey"]
        iam.put_user_policy(
            UserName="reprise", PolicyName="all",
            PolicyDocument='{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}')
        moto = MotoS3(endpoint, key["AccessKeyId"], key["SecretAccessKey"], proc, log_path)
        moto.client().create_bucket(Bucket=MotoS3.bucket)
    except BaseException:
        _stop_moto(proc)
        raise
    _MOTO = moto
    return moto


def _stop_moto(proc: subprocess.Popen) -> None:
    _signal_group(proc, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        _signal_group(proc, signal.SIGKILL)
        proc.wait(timeout=10)


def pytest_sessionfinish(session, exitstatus):
    if _MOTO is not None:
        _stop_moto(_MOTO.proc)


@pytest.fixture(scope="session")
def moto_s3():
    """The running ``moto_server`` (see ``shared_moto``)."""
    return shared_moto()
