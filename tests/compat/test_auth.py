"""Authentication and authorization (issue 10) through the stock `mlflow` 3.17.2 client.

Every test starts its own server with `--app-name basic-auth` and an INI file it writes itself
(`MLFLOW_AUTH_CONFIG_PATH`), then talks to it over real HTTP: the stock `MlflowClient` (which reads
MLFLOW_TRACKING_USERNAME / PASSWORD / TOKEN from the environment at request time), the stock
`AuthServiceClient` from `mlflow.server.get_app_client("basic-auth", ...)`, and `requests` for the
wire details and the Reprise extension API.

Tests not marked `reprise_only` encode MLflow's own behaviour and also run against the reference
server (`COMPAT_TARGET=mlflow`).
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException

import mlflow.server
from conftest import IS_REFERENCE, _server_command, free_port, start_server, stop_server, suite_server_env

API = "/api/2.0/mlflow"
API3 = "/api/3.0/mlflow"
AJAX = "/ajax-api/2.0/mlflow"
G = "/api/reprise/v1"
REALM = 'Basic realm="mlflow"'
NOT_AUTHENTICATED = "You are not authenticated"
CRED_VARS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")
reprise_only = pytest.mark.reprise_only


def uid() -> str:
    return uuid.uuid4().hex[:10]


def pw(name: str) -> str:
    """Each test user's password (MLflow's rule: at least 12 characters)."""
    return f"{name}-Passw0rd-2025"


ADMIN_PW = pw("admin")
# The reference auth app refuses to start without a static CSRF key (and needs Flask-WTF installed).
REFERENCE_ENV = {"MLFLOW_FLASK_SERVER_SECRET_KEY": "compat-suite-secret"} if IS_REFERENCE else {}


# --------------------------------------------------------------------------- servers


def write_ini(path: Path, default_permission="READ", admin_password: str | None = ADMIN_PW,
              admin_username="admin", database_uri: str | None = None) -> Path:
    lines = ["[mlflow]", f"default_permission = {default_permission}", f"admin_username = {admin_username}"]
    if admin_password is not None:
        lines.append(f"admin_password = {admin_password}")
    if database_uri is None and IS_REFERENCE:
        # The reference reads `database_uri` unconditionally; Reprise defaults to the main store.
        database_uri = f"sqlite:///{path.parent}/basic_auth.db"
    if database_uri is not None:
        lines.append(f"database_uri = {database_uri}")
    path.write_text("\n".join(lines) + "\n")
    return path


def start_auth_server(tmp: Path, default_permission="READ", admin_password: str | None = ADMIN_PW,
                      env_extra: dict | None = None, database_uri: str | None = None,
                      flags: tuple[str, ...] = ("--app-name", "basic-auth")):
    tmp = Path(tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    ini = write_ini(tmp / "auth.ini", default_permission, admin_password, database_uri=database_uri)
    env = {"MLFLOW_AUTH_CONFIG_PATH": str(ini), **REFERENCE_ENV, **(env_extra or {})}
    return start_server(tmp, extra_args=flags, env_extra=env,
                        env_remove=("MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_AUTH_ADMIN_USERNAME", *CRED_VARS))


@pytest.fixture(autouse=True)
def no_ambient_credentials(monkeypatch):
    """The stock client must only see the credentials a test hands it."""
    for k in CRED_VARS:
        monkeypatch.delenv(k, raising=False)


@pytest.fixture()
def auth_server(tmp_path):
    url = start_auth_server(tmp_path / "srv", "READ")
    try:
        yield url
    finally:
        stop_server(url)


@pytest.fixture()
def closed_server(tmp_path):
    """default_permission = NO_PERMISSIONS."""
    url = start_auth_server(tmp_path / "srv", "NO_PERMISSIONS")
    try:
        yield url
    finally:
        stop_server(url)


# --------------------------------------------------------------------------- clients


@contextmanager
def signed_in(url: str, username: str | None = None, password: str | None = None, token: str | None = None):
    """The stock client as `username` (password defaults to pw(username)) or with a bearer token.

    The client reads the MLFLOW_TRACKING_* variables on every request, so they are set for the
    duration of the block and restored after it."""
    saved = {k: os.environ.get(k) for k in CRED_VARS}
    for k in CRED_VARS:
        os.environ.pop(k, None)
    if username is not None:
        os.environ["MLFLOW_TRACKING_USERNAME"] = username
        os.environ["MLFLOW_TRACKING_PASSWORD"] = password if password is not None else pw(username)
    if token is not None:
        os.environ["MLFLOW_TRACKING_TOKEN"] = token
    try:
        yield MlflowClient(tracking_uri=url)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextmanager
def auth_client(url: str, username="admin", password: str | None = None):
    """The stock AuthServiceClient, signed in as `username`."""
    with signed_in(url, username, password):
        yield mlflow.server.get_app_client("basic-auth", tracking_uri=url)


class Http:
    """Raw HTTP as one identity: Basic (user + password), Bearer (token), or nothing."""

    def __init__(self, base: str, user: str | None = None, password: str | None = None, token: str | None = None,
                 headers: dict | None = None):
        self.base = base.rstrip("/")
        self.s = requests.Session()
        if token is not None:
            self.s.headers["Authorization"] = f"Bearer {token}"
        elif user is not None:
            self.s.auth = (user, password if password is not None else pw(user))
        self.s.headers.update(headers or {})

    def request(self, method, path, **kw):
        kw.setdefault("timeout", 30)
        kw.setdefault("allow_redirects", False)
        return self.s.request(method, self.base + path, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, json=None, **kw):
        return self.request("POST", path, json=json, **kw)

    def put(self, path, json=None, **kw):
        return self.request("PUT", path, json=json, **kw)

    def patch(self, path, json=None, **kw):
        return self.request("PATCH", path, json=json, **kw)

    def delete(self, path, json=None, **kw):
        return self.request("DELETE", path, json=json, **kw)


def add_users(url: str, *names: str) -> None:
    admin = Http(url, "admin", ADMIN_PW)
    for name in names:
        r = admin.post(f"{API}/users/create", {"username": name, "password": pw(name)})
        assert r.status_code == 200, (name, r.status_code, r.text)


def assert_denied(fn, code="PERMISSION_DENIED"):
    with pytest.raises(MlflowException) as e:
        fn()
    assert e.value.error_code == code, (e.value.error_code, str(e.value)[:300])
    return e.value


def assert_401(r):
    assert r.status_code == 401, (r.status_code, r.text[:300])
    assert r.headers.get("WWW-Authenticate") == REALM, r.headers
    assert NOT_AUTHENTICATED in r.text, r.text[:300]


def audit_events(url: str, entity_type: str, entity_id: str) -> list[dict]:
    r = Http(url, "admin", ADMIN_PW).get(f"{G}/audit/events", params={"entity_type": entity_type, "entity_id": entity_id})
    assert r.status_code == 200, r.text
    return r.json()["events"]


def alice_experiment_with_run(url: str, name: str | None = None) -> tuple[str, str]:
    with signed_in(url, "alice") as c:
        eid = c.create_experiment(name or f"alice-{uid()}")
        rid = c.create_run(eid).info.run_id
    return eid, rid


def cookie_headers(r) -> list[str]:
    return list(r.raw.headers.getlist("Set-Cookie")) if r.raw is not None else []


# =========================================================================== 1. start-up and configuration


def test_admin_from_ini_signs_in_and_anonymous_is_refused(auth_server):
    r = Http(auth_server, "admin", ADMIN_PW).get(f"{API}/users/current")
    assert r.status_code == 200, r.text
    assert r.json()["user"]["username"] == "admin" and r.json()["user"]["is_admin"] is True
    assert_401(Http(auth_server).get(f"{API}/users/current"))
    assert_401(Http(auth_server, "admin", ADMIN_PW + "x").get(f"{API}/users/current"))


def test_admin_password_from_environment(tmp_path):
    env_pw = "from-the-environment-42"
    url = start_auth_server(tmp_path / "srv", admin_password=None, env_extra={"MLFLOW_AUTH_ADMIN_PASSWORD": env_pw})
    try:
        r = Http(url, "admin", env_pw).get(f"{API}/users/current")
        assert r.status_code == 200, r.text
        assert r.json()["user"]["is_admin"] is True
        assert_401(Http(url, "admin", ADMIN_PW).get(f"{API}/users/current"))
    finally:
        stop_server(url)


def test_environment_admin_password_wins_over_the_ini(tmp_path):
    env_pw = "environment-beats-file-7"
    url = start_auth_server(tmp_path / "srv", admin_password=ADMIN_PW, env_extra={"MLFLOW_AUTH_ADMIN_PASSWORD": env_pw})
    try:
        assert Http(url, "admin", env_pw).get(f"{API}/users/current").status_code == 200
        assert_401(Http(url, "admin", ADMIN_PW).get(f"{API}/users/current"))
    finally:
        stop_server(url)


def _start_expecting_refusal(tmp: Path, admin_password: str | None, env_extra: dict | None = None):
    tmp.mkdir(parents=True, exist_ok=True)
    ini = write_ini(tmp / "auth.ini", admin_password=admin_password)
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_AUTH_ADMIN_USERNAME")}
    env["MLFLOW_AUTH_CONFIG_PATH"] = str(ini)
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    env.update(REFERENCE_ENV)
    env.update(suite_server_env())
    env.update(env_extra or {})
    port = free_port()
    try:
        r = subprocess.run(_server_command(tmp, port) + ["--app-name", "basic-auth"], cwd=str(tmp), env=env,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120 if IS_REFERENCE else 30)
    except subprocess.TimeoutExpired:
        pytest.fail("the server kept running instead of refusing to start")
    return r.returncode, r.stdout + r.stderr


def test_start_is_refused_without_an_admin_password(tmp_path):
    rc, out = _start_expecting_refusal(tmp_path / "srv", admin_password=None)
    assert rc != 0, out[-2000:]
    assert "MLFLOW_AUTH_ADMIN_PASSWORD" in out or "admin_password" in out, out[-2000:]


def test_start_is_refused_with_a_short_admin_password(tmp_path):
    rc, out = _start_expecting_refusal(tmp_path / "srv", admin_password="short-pw")
    assert rc != 0, out[-2000:]
    assert "12" in out, out[-2000:]


def test_start_is_refused_with_an_empty_environment_password(tmp_path):
    # A set-but-empty MLFLOW_AUTH_ADMIN_PASSWORD wins over the file's password (MLflow's rule), so an
    # empty injected secret is an error instead of a silent fall-back to a possibly stale file.
    rc, out = _start_expecting_refusal(tmp_path / "srv", admin_password=ADMIN_PW, env_extra={"MLFLOW_AUTH_ADMIN_PASSWORD": ""})
    assert rc != 0, out[-2000:]


def test_restart_needs_no_admin_password_once_the_admin_exists(tmp_path):
    tmp = tmp_path / "srv"
    url = start_auth_server(tmp)
    add_users(url, "alice")
    with signed_in(url, "alice") as c:
        eid = c.create_experiment("kept-across-restart")
    stop_server(url)
    url = start_auth_server(tmp, admin_password=None)
    try:
        assert Http(url, "admin", ADMIN_PW).get(f"{API}/users/current").status_code == 200
        with signed_in(url, "alice") as c:
            assert c.get_experiment(eid).name == "kept-across-restart"
            c.create_run(eid)  # still MANAGE on her experiment
    finally:
        stop_server(url)


@reprise_only
def test_users_live_where_database_uri_says(tmp_path):
    tmp = tmp_path / "srv"
    auth_db = tmp_path / "separate" / "auth.db"
    auth_db.parent.mkdir(parents=True)
    url = start_auth_server(tmp, database_uri=f"sqlite:///{auth_db}")
    try:
        add_users(url, "alice")
        assert Http(url, "alice").get(f"{API}/users/current").status_code == 200
        assert auth_db.exists() and auth_db.stat().st_size > 0
    finally:
        stop_server(url)
    # A server over the same main store without that database_uri does not know alice.
    url = start_auth_server(tmp)
    try:
        assert_401(Http(url, "alice").get(f"{API}/users/current"))
    finally:
        stop_server(url)


@reprise_only
def test_auth_flag_is_an_alias_of_app_name(tmp_path):
    url = start_auth_server(tmp_path / "srv", flags=("--auth",))
    try:
        assert_401(Http(url).get(f"{API}/experiments/search", params={"max_results": 1}))
        assert Http(url, "admin", ADMIN_PW).get(f"{API}/experiments/search", params={"max_results": 1}).status_code == 200
    finally:
        stop_server(url)


# =========================================================================== 2. the stock client signs in


def test_stock_client_logs_and_searches_with_username_and_password(auth_server):
    add_users(auth_server, "alice")
    with signed_in(auth_server, "alice") as c:
        eid = c.create_experiment("alice-tracking")
        run = c.create_run(eid, tags={"team": "fraud"})
        rid = run.info.run_id
        c.log_param(rid, "C", "0.5")
        for step in range(3):
            c.log_metric(rid, "loss", 1.0 / (step + 1), step=step)
        ts = int(time.time() * 1000)
        c.log_batch(rid, metrics=[Metric("acc", 0.9, ts, 0)], params=[Param("solver", "lbfgs")])
        c.set_terminated(rid)
        got = c.get_run(rid)
        assert got.data.params == {"C": "0.5", "solver": "lbfgs"}
        assert got.data.metrics["acc"] == 0.9
        assert [m.value for m in c.get_metric_history(rid, "loss")] == [1.0, 0.5, 1.0 / 3]
        assert [r.info.run_id for r in c.search_runs([eid], "params.C = '0.5'")] == [rid]
        assert "alice-tracking" in [e.name for e in c.search_experiments()]


def test_wrong_password_is_unauthenticated(auth_server):
    add_users(auth_server, "alice")
    with signed_in(auth_server, "alice", "not-alices-password") as c:
        e = assert_denied(lambda: c.search_experiments(), code="UNAUTHENTICATED")
        assert "401" in str(e)
    with signed_in(auth_server, "nobody-here") as c:
        assert_denied(lambda: c.create_experiment("x"), code="UNAUTHENTICATED")
    r = Http(auth_server, "alice", "not-alices-password").get(f"{API}/experiments/search", params={"max_results": 5})
    assert_401(r)
    r = Http(auth_server, "nobody-here").get(f"{API}/experiments/search", params={"max_results": 5})
    assert_401(r)


def test_no_credentials_get_401_on_every_kind_of_route(auth_server):
    paths = [
        ("GET", f"{API}/experiments/search?max_results=1"),
        ("POST", f"{API}/experiments/create"),
        ("GET", f"{AJAX}/experiments/search?max_results=1"),
        ("GET", f"{API}/registered-models/search"),
        ("GET", "/api/2.0/mlflow-artifacts/artifacts"),
        ("GET", f"{API}/users/get?username=admin"),
    ]
    if not IS_REFERENCE:
        paths += [("GET", f"{G}/whoami"), ("GET", f"{G}/tokens"), ("GET", f"{G}/audit/events"),
                  ("GET", f"{G}/alias-policies")]
    anon = Http(auth_server)
    for method, path in paths:
        r = anon.request(method, path, json={"name": "anon"} if method == "POST" else None)
        assert r.status_code == 401, (method, path, r.status_code, r.text[:200])
        assert r.headers.get("WWW-Authenticate") == REALM, (path, r.headers)
    with signed_in(auth_server) as c:
        assert_denied(lambda: c.search_experiments(), code="UNAUTHENTICATED")
    # Nothing was created by the anonymous POST.
    with signed_in(auth_server, "admin", ADMIN_PW) as c:
        assert "anon" not in [e.name for e in c.search_experiments()]


@pytest.mark.parametrize("header", [
    "Basic !!!not-base64!!!",
    "Basic " + base64.b64encode(b"no-colon-here").decode(),
    "Basic ",
    "Bearer ",
    "Bearer rpt_0000000000000000000000000000000000000000",
    "Bearer not.a.jwt",
    # The reference answers this one with a 500 (it assumes Basic); Reprise must say 401.
    pytest.param("Digest username=admin", marks=reprise_only),
])
def test_malformed_authorization_headers_get_401(auth_server, header):
    r = requests.get(f"{auth_server}{API}/experiments/search", params={"max_results": 1},
                     headers={"Authorization": header}, timeout=30)
    assert r.status_code == 401, (header, r.status_code, r.text[:200])
    assert auth_server.proc.poll() is None


def test_health_is_open_without_credentials(auth_server):
    r = requests.get(f"{auth_server}/health", timeout=30)
    assert r.status_code == 200, r.text
    if not IS_REFERENCE:
        assert requests.get(f"{auth_server}/version", timeout=30).status_code == 200


# =========================================================================== 3. AuthServiceClient


def test_auth_client_user_lifecycle(auth_server):
    url = auth_server
    with auth_client(url) as ac:
        e = assert_denied(lambda: ac.create_user("shorty", "short-pw-1"), code="INVALID_PARAMETER_VALUE")
        assert "12" in str(e)
        user = ac.create_user("erin", pw("erin"))
        assert user.username == "erin" and user.is_admin is False and isinstance(user.id, int)
        assert_denied(lambda: ac.create_user("erin", pw("erin")), code="RESOURCE_ALREADY_EXISTS")
        got = ac.get_user("erin")
        assert (got.id, got.username, got.is_admin) == (user.id, "erin", False)
        assert_denied(lambda: ac.get_user("nobody-at-all"), code="RESOURCE_DOES_NOT_EXIST")
    # The short-password user was not created.
    assert_401(Http(url, "shorty", "short-pw-1").get(f"{API}/users/current"))

    with signed_in(url, "erin") as c:
        c.search_experiments()
    # A non-admin cannot manage users.
    with auth_client(url, "erin") as ac:
        assert_denied(lambda: ac.create_user("mallory", pw("mallory")))
        assert_denied(lambda: ac.update_user_admin("erin", True))
    assert_401(Http(url, "mallory").get(f"{API}/users/current"))

    new_pw = "erins-new-password-2"
    with auth_client(url) as ac:
        ac.update_user_password("erin", new_pw)
    assert_401(Http(url, "erin").get(f"{API}/users/current"))
    assert Http(url, "erin", new_pw).get(f"{API}/users/current").status_code == 200

    with auth_client(url) as ac:
        ac.update_user_admin("erin", True)
        assert ac.get_user("erin").is_admin is True
    with auth_client(url, "erin", new_pw) as ac:
        assert ac.create_user("frank", pw("frank")).username == "frank"

    with auth_client(url) as ac:
        ac.delete_user("erin")
        assert_denied(lambda: ac.get_user("erin"), code="RESOURCE_DOES_NOT_EXIST")
    assert_401(Http(url, "erin", new_pw).get(f"{API}/users/current"))


def test_own_password_change_needs_the_current_password(auth_server):
    add_users(auth_server, "alice")
    with auth_client(auth_server, "alice") as ac:
        assert_denied(lambda: ac.update_user_password("alice", "alices-second-pw-1"), code="INVALID_PARAMETER_VALUE")
        assert_denied(lambda: ac.update_user_password("alice", "alices-second-pw-1", current_password="wrong-current-pw"),
                      code="INVALID_PARAMETER_VALUE")
        ac.update_user_password("alice", "alices-second-pw-1", current_password=pw("alice"))
    assert_401(Http(auth_server, "alice").get(f"{API}/users/current"))
    assert Http(auth_server, "alice", "alices-second-pw-1").get(f"{API}/users/current").status_code == 200


def test_a_user_cannot_change_another_users_password(auth_server):
    add_users(auth_server, "alice", "bob")
    with auth_client(auth_server, "bob") as ac:
        assert_denied(lambda: ac.update_user_password("alice", "taken-over-by-bob", current_password=pw("bob")))
    assert Http(auth_server, "alice").get(f"{API}/users/current").status_code == 200


def test_admin_cannot_delete_itself(auth_server):
    with auth_client(auth_server) as ac:
        with pytest.raises(MlflowException):
            ac.delete_user("admin")
    assert Http(auth_server, "admin", ADMIN_PW).get(f"{API}/users/current").status_code == 200


def test_auth_client_roles_grant_through_membership(auth_server):
    url = auth_server
    add_users(url, "alice", "bob")
    eid, rid = alice_experiment_with_run(url)
    with signed_in(url, "bob") as c:
        assert_denied(lambda: c.log_metric(rid, "m", 1.0))
    with auth_client(url) as ac:
        role = ac.create_role("default", "leads", description="ML leads")
        assert role.name == "leads" and role.workspace == "default" and role.description == "ML leads"
        assert "leads" in [r.name for r in ac.list_roles("default")]
        assert ac.get_role(role.id).name == "leads"
        rp = ac.add_role_permission(role.id, "experiment", eid, "EDIT")
        assert (rp.role_id, rp.resource_type, rp.resource_pattern, rp.permission) == (role.id, "experiment", eid, "EDIT")
        assert [p.id for p in ac.list_role_permissions(role.id)] == [rp.id]
        assignment = ac.assign_role("bob", role.id)
        assert assignment.role_id == role.id
        assert "leads" in [r.name for r in ac.list_user_roles("bob")]
        assert "leads" not in [r.name for r in ac.list_user_roles("alice")]
        assert ac.get_user("bob").id in [a.user_id for a in ac.list_role_users(role.id)]
        assert ac.get_user_permission("bob", "experiment", eid).permission == "EDIT"
    with signed_in(url, "bob") as c:
        c.log_metric(rid, "m", 1.0)  # EDIT through the role
        assert c.get_run(rid).data.metrics["m"] == 1.0
        assert_denied(lambda: c.delete_experiment(eid))  # EDIT is not MANAGE
    with auth_client(url) as ac:
        ac.unassign_role("bob", role.id)
        assert "leads" not in [r.name for r in ac.list_user_roles("bob")]
    with signed_in(url, "bob") as c:
        assert_denied(lambda: c.log_metric(rid, "m", 2.0))
    # Only admins manage roles.
    with auth_client(url, "bob") as ac:
        assert_denied(lambda: ac.create_role("default", "bobs-own"))
        assert_denied(lambda: ac.assign_role("bob", role.id))


def test_auth_client_grant_get_and_revoke_user_permission(auth_server):
    url = auth_server
    add_users(url, "alice", "bob")
    eid, rid = alice_experiment_with_run(url)
    with auth_client(url) as ac:
        assert ac.get_user_permission("alice", "experiment", eid).permission == "MANAGE"
        assert ac.get_user_permission("bob", "experiment", eid).permission == "READ"
        assert_denied(lambda: ac.grant_user_permission("bob", "experiment", eid, "WRITE"), code="INVALID_PARAMETER_VALUE")
        ac.grant_user_permission("bob", "experiment", eid, "EDIT")
        res = ac.get_user_permission("bob", "experiment", eid)
        assert res.permission == "EDIT" and res.allowed is True
    with signed_in(url, "bob") as c:
        c.log_metric(rid, "granted", 1.0)
        c.set_tag(rid, "reviewed-by", "bob")
    with auth_client(url) as ac:
        ac.revoke_user_permission("bob", "experiment", eid)
        assert ac.get_user_permission("bob", "experiment", eid).permission == "READ"
    with signed_in(url, "bob") as c:
        assert_denied(lambda: c.log_metric(rid, "revoked", 1.0))
        assert "revoked" not in c.get_run(rid).data.metrics


def test_non_admin_cannot_grant_itself_permissions(auth_server):
    url = auth_server
    add_users(url, "alice", "bob")
    eid, rid = alice_experiment_with_run(url)
    with auth_client(url, "bob") as ac:
        assert_denied(lambda: ac.grant_user_permission("bob", "experiment", eid, "MANAGE"))
    with signed_in(url, "bob") as c:
        assert_denied(lambda: c.log_metric(rid, "m", 1.0))


# =========================================================================== 4. permissions


def test_creator_manages_and_default_read_cannot_write(auth_server):
    url = auth_server
    add_users(url, "alice", "bob")
    eid, rid = alice_experiment_with_run(url, "alice-private-work")
    with signed_in(url, "alice") as c:
        c.log_metric(rid, "loss", 0.3)
        c.set_experiment_tag(eid, "owner", "alice")
    with signed_in(url, "bob") as c:
        # READ: everything is visible...
        assert c.get_experiment(eid).name == "alice-private-work"
        assert c.get_run(rid).data.metrics["loss"] == 0.3
        assert rid in [r.info.run_id for r in c.search_runs([eid])]
        assert "alice-private-work" in [e.name for e in c.search_experiments()]
        # ...and nothing can be written.
        assert_denied(lambda: c.log_metric(rid, "loss", 99.0))
        assert_denied(lambda: c.set_tag(rid, "hijacked", "yes"))
        assert_denied(lambda: c.log_param(rid, "p", "1"))
        assert_denied(lambda: c.create_run(eid))
        assert_denied(lambda: c.set_experiment_tag(eid, "owner", "bob"))
        assert_denied(lambda: c.rename_experiment(eid, "bobs-now"))
        assert_denied(lambda: c.delete_run(rid))
        assert_denied(lambda: c.delete_experiment(eid))
        # Bob may still create his own experiment, which he then manages.
        own = c.create_experiment("bobs-own")
        c.create_run(own)
    with signed_in(url, "alice") as c:
        run = c.get_run(rid)
        assert run.data.metrics["loss"] == 0.3 and "hijacked" not in run.data.tags and run.info.lifecycle_stage == "active"
        assert c.get_experiment(eid).tags.get("owner") == "alice"
        assert_denied(lambda: c.create_run(own))  # alice has only READ on bob's


def test_raw_403_is_plain_permission_denied(auth_server):
    add_users(auth_server, "alice", "bob")
    eid, rid = alice_experiment_with_run(auth_server)
    r = Http(auth_server, "bob").post(f"{API}/runs/log-metric", {"run_id": rid, "key": "m", "value": 1, "timestamp": 1})
    assert r.status_code == 403, (r.status_code, r.text)
    assert "Permission denied" in r.text
    assert "WWW-Authenticate" not in r.headers


@reprise_only
def test_grant_edit_with_the_classic_experiment_permission_endpoints(auth_server):
    url = auth_server
    add_users(url, "alice", "bob")
    eid, rid = alice_experiment_with_run(url)
    alice, bob = Http(url, "alice"), Http(url, "bob")
    # Bob cannot grant himself anything.
    r = bob.post(f"{API}/experiments/permissions/create", {"experiment_id": eid, "username": "bob", "permission": "EDIT"})
    assert r.status_code == 403, r.text
    r = alice.post(f"{API}/experiments/permissions/create", {"experiment_id": eid, "username": "bob", "permission": "EDIT"})
    assert r.status_code == 200, r.text
    assert r.json()["experiment_permission"]["permission"] == "EDIT"
    r = alice.get(f"{API}/experiments/permissions/get", params={"experiment_id": eid, "username": "bob"})
    assert r.status_code == 200 and r.json()["experiment_permission"]["permission"] == "EDIT", r.text
    with signed_in(url, "bob") as c:
        c.log_metric(rid, "by_bob", 1.0)
        c.set_tag(rid, "checked", "bob")
        assert_denied(lambda: c.delete_experiment(eid))
    r = alice.patch(f"{API}/experiments/permissions/update", {"experiment_id": eid, "username": "bob", "permission": "READ"})
    assert r.status_code == 200, r.text
    with signed_in(url, "bob") as c:
        assert_denied(lambda: c.log_metric(rid, "by_bob", 2.0))
    r = alice.delete(f"{API}/experiments/permissions/delete", {"experiment_id": eid, "username": "bob"})
    assert r.status_code == 200, r.text
    r = alice.get(f"{API}/experiments/permissions/get", params={"experiment_id": eid, "username": "bob"})
    assert r.status_code == 404, r.text
    # The /ajax-api twin answers the same.
    r = Http(url, "alice").get(f"{AJAX}/experiments/permissions/get", params={"experiment_id": eid, "username": "alice"})
    assert r.status_code == 200 and r.json()["experiment_permission"]["permission"] == "MANAGE", r.text


@reprise_only
def test_registered_model_permissions(auth_server):
    url = auth_server
    add_users(url, "alice", "bob")
    name = f"model-{uid()}"
    with signed_in(url, "alice") as c:
        c.create_registered_model(name)
    with signed_in(url, "bob") as c:
        assert c.get_registered_model(name).name == name
        assert_denied(lambda: c.update_registered_model(name, description="bob was here"))
        assert_denied(lambda: c.set_registered_model_tag(name, "k", "v"))
        assert_denied(lambda: c.delete_registered_model(name))
    alice = Http(url, "alice")
    r = alice.post(f"{API}/registered-models/permissions/create", {"name": name, "username": "bob", "permission": "EDIT"})
    assert r.status_code == 200, r.text
    r = alice.get(f"{API}/registered-models/permissions/get", params={"name": name, "username": "bob"})
    assert r.json()["registered_model_permission"]["permission"] == "EDIT", r.text
    with signed_in(url, "bob") as c:
        c.update_registered_model(name, description="reviewed by bob")
        assert_denied(lambda: c.delete_registered_model(name))
    with signed_in(url, "alice") as c:
        assert c.get_registered_model(name).description == "reviewed by bob"


def test_no_permissions_default_hides_experiments_and_models(closed_server):
    url = closed_server
    add_users(url, "alice", "bob")
    eid, rid = alice_experiment_with_run(url, "alice-secret")
    model = f"alice-model-{uid()}"
    with signed_in(url, "alice") as c:
        c.create_registered_model(model)
        assert c.get_experiment(eid).name == "alice-secret"  # the creator still manages it
    with signed_in(url, "bob") as c:
        assert_denied(lambda: c.get_experiment(eid))
        assert_denied(lambda: c.get_experiment_by_name("alice-secret"))
        assert_denied(lambda: c.get_run(rid))
        assert_denied(lambda: c.get_registered_model(model))
        mine = c.create_experiment("bobs-visible")
        names = [e.name for e in c.search_experiments()]
        assert "bobs-visible" in names and "alice-secret" not in names, names
        bobs_model = f"bob-model-{uid()}"
        c.create_registered_model(bobs_model)
        names = [m.name for m in c.search_registered_models()]
        assert bobs_model in names and model not in names
        try:
            runs = c.search_runs([eid])
        except MlflowException as e:
            assert e.error_code == "PERMISSION_DENIED", e.error_code
        else:
            assert runs == [], [r.info.run_id for r in runs]
        c.create_run(mine)
    # A grant opens exactly one experiment.
    with auth_client(url) as ac:
        ac.grant_user_permission("bob", "experiment", eid, "READ")
    with signed_in(url, "bob") as c:
        assert c.get_experiment(eid).name == "alice-secret"
        assert_denied(lambda: c.log_metric(rid, "m", 1.0))


def test_filtered_search_refills_to_max_results_and_pages(closed_server):
    url = closed_server
    add_users(url, "alice", "bob")
    readable, hidden = [], []
    with signed_in(url, "alice") as c:
        # Interleaved, so every raw page of the unfiltered listing mixes both kinds.
        for i in range(5):
            hidden.append(c.create_experiment(f"page-{i}-hidden"))
            readable.append(c.create_experiment(f"page-{i}-readable"))
    with auth_client(url) as ac:
        for eid in readable:
            ac.grant_user_permission("bob", "experiment", eid, "READ")
    seen: list[str] = []
    with signed_in(url, "bob") as c:
        page = c.search_experiments(max_results=3, filter_string="name LIKE 'page-%'")
        assert len(page) == 3, [e.name for e in page]
        assert page.token, "a first page of 3 out of 5 readable has a next page"
        seen += [e.experiment_id for e in page]
        pages = 1
        while page.token:
            page = c.search_experiments(max_results=3, filter_string="name LIKE 'page-%'", page_token=page.token)
            seen += [e.experiment_id for e in page]
            pages += 1
            assert pages < 10
    assert sorted(seen) == sorted(readable), (seen, readable)
    assert len(seen) == len(set(seen))


def test_filtered_model_search_refills_to_max_results(closed_server):
    url = closed_server
    add_users(url, "alice", "bob")
    readable = []
    with signed_in(url, "alice") as c:
        for i in range(4):
            c.create_registered_model(f"rm-{i}-hidden")
            readable.append(c.create_registered_model(f"rm-{i}-readable").name)
    with auth_client(url) as ac:
        for name in readable:
            ac.grant_user_permission("bob", "registered_model", name, "READ")
    with signed_in(url, "bob") as c:
        first = c.search_registered_models(max_results=3)
        assert len(first) == 3 and all(m.name.endswith("-readable") for m in first), [m.name for m in first]
        assert first.token
        rest = c.search_registered_models(max_results=3, page_token=first.token)
        assert sorted([m.name for m in first] + [m.name for m in rest]) == sorted(readable)


# =========================================================================== 5. access tokens (Reprise)


def _create_token(url: str, user: str, name="ci", **extra) -> dict:
    r = Http(url, user, ADMIN_PW if user == "admin" else None).post(f"{G}/tokens", {"name": name, **extra})
    assert r.status_code == 200, (r.status_code, r.text)
    body = r.json()
    assert body["secret"].startswith("rpt_"), body
    return body


@reprise_only
def test_personal_token_works_with_the_stock_client_in_a_subprocess(auth_server):
    url = auth_server
    add_users(url, "alice")
    body = _create_token(url, "alice", "laptop")
    secret, token_id = body["secret"], body["token"]["id"]
    assert body["token"]["username"] == "alice" and body["token"]["revoked"] is False
    script = (
        "import mlflow, sys\n"
        "mlflow.set_experiment('token-logged')\n"
        "with mlflow.start_run() as r:\n"
        "    mlflow.log_param('p', '1')\n"
        "    mlflow.log_metric('m', 0.5)\n"
        "print('RUN', r.info.run_id)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in CRED_VARS}
    env.update({"MLFLOW_TRACKING_URI": url, "MLFLOW_TRACKING_TOKEN": secret})
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    rid = re.search(r"RUN (\w+)", out.stdout).group(1)
    with signed_in(url, "alice") as c:
        run = c.get_run(rid)
        assert run.data.params == {"p": "1"} and run.data.metrics == {"m": 0.5}
    who = Http(url, token=secret).get(f"{G}/whoami").json()
    assert who["username"] == "alice" and who["method"] == "token" and who["token_id"] == token_id
    assert who["authenticated"] is True
    events = [e for e in audit_events(url, "run", rid) if e["action"] == "run.log"]
    assert events and all(e["actor"] == "alice" and e["auth_method"] == "token" and e["token_id"] == token_id
                          for e in events), events


@reprise_only
def test_token_listing_never_reveals_secrets(auth_server):
    url = auth_server
    add_users(url, "alice", "bob")
    a = _create_token(url, "alice", "first")
    b = _create_token(url, "alice", "second")
    c = _create_token(url, "bob", "bobs")
    assert a["secret"] != b["secret"] and a["token"]["id"] != b["token"]["id"]
    for body in (a, b):
        assert body["secret"] not in str(body["token"])
    r = Http(url, "alice").get(f"{G}/tokens")
    assert r.status_code == 200, r.text
    tokens = r.json()["tokens"]
    assert sorted(t["name"] for t in tokens) == ["first", "second"]  # only her own
    for t in tokens:
        assert "secret" not in t and not any("hash" in k for k in t), t
    for secret in (a["secret"], b["secret"]):
        assert secret not in r.text and secret[4:] not in r.text
    r = Http(url, "admin", ADMIN_PW).get(f"{G}/tokens", params={"username": "bob"})
    assert r.status_code == 200 and [t["id"] for t in r.json()["tokens"]] == [c["token"]["id"]], r.text
    assert c["secret"] not in r.text


@reprise_only
def test_revoked_token_is_refused(auth_server):
    url = auth_server
    add_users(url, "alice", "bob")
    body = _create_token(url, "alice")
    secret, token_id = body["secret"], body["token"]["id"]
    with signed_in(url, token=secret) as c:
        eid = c.create_experiment("before-revocation")
    # Someone else cannot revoke it.
    r = Http(url, "bob").delete(f"{G}/tokens", {"id": token_id})
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    with signed_in(url, token=secret) as c:
        assert c.get_experiment(eid).name == "before-revocation"
    r = Http(url, "alice").delete(f"{G}/tokens", {"id": token_id})
    assert r.status_code == 200, r.text
    with signed_in(url, token=secret) as c:
        assert_denied(lambda: c.get_experiment(eid), code="UNAUTHENTICATED")
    assert_401(Http(url, token=secret).get(f"{G}/whoami"))
    listed = {t["id"]: t for t in Http(url, "alice").get(f"{G}/tokens").json()["tokens"]}
    assert listed[token_id]["revoked"] is True


@reprise_only
def test_admin_can_revoke_any_token(auth_server):
    add_users(auth_server, "alice")
    body = _create_token(auth_server, "alice")
    r = Http(auth_server, "admin", ADMIN_PW).delete(f"{G}/tokens", {"id": body["token"]["id"]})
    assert r.status_code == 200, r.text
    assert_401(Http(auth_server, token=body["secret"]).get(f"{G}/whoami"))


@reprise_only
def test_tampered_or_unknown_tokens_are_refused(auth_server):
    add_users(auth_server, "alice")
    secret = _create_token(auth_server, "alice")["secret"]
    assert Http(auth_server, token=secret).get(f"{G}/whoami").status_code == 200
    last = secret[-1]
    tampered = secret[:-1] + ("0" if last != "0" else "1")
    for bad in (tampered, secret + "x", secret[:-4], "rpt_" + uuid.uuid4().hex + uuid.uuid4().hex):
        assert_401(Http(auth_server, token=bad).get(f"{G}/whoami"))


@reprise_only
def test_token_expiry_is_recorded(auth_server):
    add_users(auth_server, "alice")
    day_ms = 86_400_000
    one = _create_token(auth_server, "alice", "one-day", expires_in_days=1)["token"]
    assert one["expires_time"] is not None
    assert abs(one["expires_time"] - one["created_time"] - day_ms) < 60_000, one
    default = _create_token(auth_server, "alice", "default")["token"]
    assert abs(default["expires_time"] - default["created_time"] - 90 * day_ms) < 60_000, default
    never = _create_token(auth_server, "alice", "never", expires_in_days=0)["token"]
    assert never["expires_time"] is None, never


@reprise_only
def test_only_admins_create_tokens_for_others(auth_server):
    add_users(auth_server, "alice", "bob")
    r = Http(auth_server, "bob").post(f"{G}/tokens", {"name": "as-alice", "username": "alice"})
    assert r.status_code == 403, (r.status_code, r.text)
    body = _create_token(auth_server, "admin", "for-alice", username="alice")
    assert Http(auth_server, token=body["secret"]).get(f"{G}/whoami").json()["username"] == "alice"


# =========================================================================== 6. identity in the audit trail (Reprise)


@reprise_only
def test_audit_records_the_authenticated_user_and_method(auth_server):
    url = auth_server
    add_users(url, "alice")
    with signed_in(url, "alice") as c:
        eid = c.create_experiment("audited-by-identity")
        rid = c.create_run(eid).info.run_id
        c.log_param(rid, "p", "1")
    created = [e for e in audit_events(url, "experiment", eid) if e["action"] == "experiment.create"]
    assert len(created) == 1, created
    run_events = audit_events(url, "run", rid)
    assert [e["action"] for e in run_events] == ["run.create", "run.log"], run_events
    for e in created + run_events:
        assert e["actor"] == "alice" and e["authenticated"] is True and e["auth_method"] == "basic", e
        assert not e.get("token_id") and not e.get("via"), e
    who = Http(url, "alice").get(f"{G}/whoami").json()
    assert who == {**who, "username": "alice", "is_admin": False, "method": "basic", "authenticated": True}


@reprise_only
def test_actor_header_is_refused_from_users(auth_server):
    url = auth_server
    add_users(url, "alice", "bob")
    for user, password in (("bob", pw("bob")), ("admin", ADMIN_PW)):
        s = Http(url, user, password, headers={"X-Reprise-Actor": "alice"})
        r = s.post(f"{API}/experiments/create", {"name": f"claimed-by-{user}"})
        assert r.status_code == 403, (user, r.status_code, r.text)
        # Positive control: the same call without the header works.
        assert Http(url, user, password).post(f"{API}/experiments/create", {"name": f"plain-{user}"}).status_code == 200
    with signed_in(url, "admin", ADMIN_PW) as c:
        names = [e.name for e in c.search_experiments()]
    assert "claimed-by-bob" not in names and "claimed-by-admin" not in names


@reprise_only
def test_service_account_with_act_as_right_is_recorded_with_the_user(auth_server):
    url = auth_server
    add_users(url, "alice")
    admin = Http(url, "admin", ADMIN_PW)
    r = admin.post(f"{G}/service-accounts", {"username": "deployer", "can_act_as": True})
    assert r.status_code == 200, r.text
    assert r.json()["user"]["username"] == "deployer"
    r = admin.post(f"{G}/service-accounts", {"username": "plain-bot", "can_act_as": False})
    assert r.status_code == 200, r.text
    # Only admins make service accounts.
    assert Http(url, "alice").post(f"{G}/service-accounts", {"username": "alices-bot", "can_act_as": True}).status_code == 403

    deployer = _create_token(url, "admin", "deploy", username="deployer")
    bot = _create_token(url, "admin", "bot", username="plain-bot")
    # A service account has no password to sign in with.
    assert_401(Http(url, "deployer", "").get(f"{G}/whoami"))

    s = Http(url, token=deployer["secret"], headers={"X-Reprise-Actor": "alice"})
    r = s.post(f"{API}/experiments/create", {"name": "deployed-for-alice"})
    assert r.status_code == 200, r.text
    eid = r.json()["experiment_id"]
    (event,) = [e for e in audit_events(url, "experiment", eid) if e["action"] == "experiment.create"]
    assert event["actor"] == "alice" and event["via"] == "deployer", event
    assert event["authenticated"] is True and event["auth_method"] == "token" and event["token_id"] == deployer["token"]["id"]

    # Without the right, the header is refused and nothing is written.
    s = Http(url, token=bot["secret"], headers={"X-Reprise-Actor": "alice"})
    r = s.post(f"{API}/experiments/create", {"name": "bot-for-alice"})
    assert r.status_code == 403, (r.status_code, r.text)
    r = Http(url, token=bot["secret"]).post(f"{API}/experiments/create", {"name": "bot-itself"})
    assert r.status_code == 200, r.text
    (event,) = [e for e in audit_events(url, "experiment", r.json()["experiment_id"]) if e["action"] == "experiment.create"]
    assert event["actor"] == "plain-bot" and not event.get("via"), event
    with signed_in(url, "admin", ADMIN_PW) as c:
        assert "bot-for-alice" not in [e.name for e in c.search_experiments()]


# =========================================================================== 7. governance on identities (Reprise)


def _leads_and_model(url: str) -> tuple[str, str, int]:
    """Users alice, bob, carol, dave; role `leads` = {carol, dave}; alice's model with versions 1 and 2,
    @production on version 1. Returns (model name, run id, role id)."""
    add_users(url, "alice", "bob", "carol", "dave")
    with auth_client(url) as ac:
        role = ac.create_role("default", "leads")
        ac.assign_role("carol", role.id)
        ac.assign_role("dave", role.id)
    name = f"fraud-{uid()}"
    with signed_in(url, "alice") as c:
        eid = c.create_experiment(f"gov-{uid()}")
        run = c.create_run(eid)
        source = run.info.artifact_uri + "/model"
        c.create_registered_model(name)
        for _ in range(2):
            c.create_model_version(name, source, run_id=run.info.run_id)
        c.set_registered_model_alias(name, "production", "1")
    return name, run.info.run_id, role.id


def _policies(url: str, model: str) -> dict[str, dict]:
    r = Http(url, "admin", ADMIN_PW).get(f"{G}/alias-policies", params={"model": model})
    assert r.status_code == 200, r.text
    return {p["alias"]: p for p in r.json()["policies"]}


def _approve(url: str, user: str, req: str, rationale="reviewed", headers=None):
    return Http(url, user, headers=headers).post(f"{G}/approval-requests/{req}/approve", {"rationale": rationale})


def _request(url: str, req: str) -> dict:
    r = Http(url, "admin", ADMIN_PW).get(f"{G}/approval-requests/{req}")
    assert r.status_code == 200, r.text
    return r.json()["approval_request"]


def _alias_version(url: str, model: str, alias: str) -> str:
    with signed_in(url, "alice") as c:
        return c.get_model_version_by_alias(model, alias).version


@reprise_only
def test_two_of_group_needs_two_distinct_authenticated_leads(auth_server):
    url = auth_server
    model, _, _ = _leads_and_model(url)
    assert "leads" in Http(url, "carol").get(f"{G}/whoami").json()["groups"]
    alice = Http(url, "alice")
    r = alice.put(f"{G}/alias-policies", {"model": model, "alias": "production", "required_approvals": 2,
                                          "approvers": ["group:leads"]})
    assert r.status_code == 200, r.text
    # The stock client cannot move the protected alias directly.
    with signed_in(url, "alice") as c:
        assert_denied(lambda: c.set_registered_model_alias(model, "production", "2"))

    r = alice.post(f"{G}/approval-requests", {"model": model, "alias": "production", "version": "2", "rationale": "better recall"})
    assert r.status_code == 202, r.text
    req = r.json()["approval_request"]["id"]
    assert r.json()["approval_request"]["requester"] == "alice"

    # The requester cannot approve, under her own name or a claimed one; bob is no lead.
    assert _approve(url, "alice", req).status_code == 403
    assert _approve(url, "alice", req, headers={"X-Reprise-Actor": "carol"}).status_code == 403
    assert _approve(url, "bob", req).status_code == 403
    assert _request(url, req)["votes"] == []

    r = _approve(url, "carol", req, "looked at the eval")
    assert r.status_code == 200, r.text
    assert r.json()["approval_request"]["state"] == "open"
    r = _approve(url, "carol", req, "again")
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    body = _request(url, req)
    assert body["state"] == "open" and [v["approver"] for v in body["votes"]] == ["carol"]
    assert _alias_version(url, model, "production") == "1"

    r = _approve(url, "dave", req, "agree")
    assert r.status_code == 200, r.text
    assert r.json()["approval_request"]["state"] == "approved"
    assert [v["approver"] for v in _request(url, req)["votes"]] == ["carol", "dave"]
    assert _alias_version(url, model, "production") == "2"


@reprise_only
def test_a_lead_cannot_approve_their_own_request(auth_server):
    url = auth_server
    model, _, _ = _leads_and_model(url)
    Http(url, "alice").put(f"{G}/alias-policies", {"model": model, "alias": "production", "required_approvals": 2,
                                                   "approvers": ["group:leads"]}).raise_for_status()
    with auth_client(url) as ac:
        ac.grant_user_permission("carol", "registered_model", model, "EDIT")
    r = Http(url, "carol").post(f"{G}/approval-requests", {"model": model, "alias": "production", "version": "2",
                                                            "rationale": "promote"})
    assert r.status_code == 202, r.text
    req = r.json()["approval_request"]["id"]
    r = _approve(url, "carol", req)
    assert r.status_code == 403, r.text
    assert "Self-approval" in r.text
    assert _approve(url, "dave", req).json()["approval_request"]["state"] == "open"
    assert _alias_version(url, model, "production") == "1"


@reprise_only
def test_non_manager_cannot_create_weaken_or_delete_a_policy(auth_server):
    url = auth_server
    model, _, _ = _leads_and_model(url)
    policy = {"model": model, "alias": "production", "required_approvals": 2, "approvers": ["group:leads"]}
    assert Http(url, "alice").put(f"{G}/alias-policies", policy).status_code == 200
    bob = Http(url, "bob")
    r = bob.put(f"{G}/alias-policies", {**policy, "required_approvals": 1, "approvers": ["bob"]})
    assert r.status_code == 403, r.text
    r = bob.delete(f"{G}/alias-policies", {"model": model, "alias": "production"})
    assert r.status_code == 403, r.text
    r = bob.put(f"{G}/alias-policies", {"model": model, "alias": "staging", "required_approvals": 1, "approvers": ["bob"]})
    assert r.status_code == 403, r.text
    policies = _policies(url, model)
    assert set(policies) == {"production"}
    assert policies["production"]["required_approvals"] == 2 and policies["production"]["approvers"] == ["group:leads"]
    # Bob still cannot move it himself.
    with signed_in(url, "bob") as c:
        assert_denied(lambda: c.set_registered_model_alias(model, "production", "2"))
    assert _alias_version(url, model, "production") == "1"


@reprise_only
def test_self_protecting_policy_changes_wait_for_approval(auth_server):
    url = auth_server
    model, _, _ = _leads_and_model(url)
    alice = Http(url, "alice")
    policy = {"model": model, "alias": "production", "required_approvals": 2, "approvers": ["group:leads"],
              "self_change_requires_approval": True}
    r = alice.put(f"{G}/alias-policies", policy)
    assert r.status_code == 200, r.text
    assert _policies(url, model)["production"]["self_change_requires_approval"] is True

    # Weakening it opens a request and changes nothing yet; alice cannot approve it herself.
    r = alice.put(f"{G}/alias-policies", {**policy, "required_approvals": 1})
    assert r.status_code == 202, r.text
    weaken = r.json()["approval_request"]
    assert weaken["kind"] == "policy_change" and weaken["state"] == "open"
    assert _policies(url, model)["production"]["required_approvals"] == 2
    assert _approve(url, "alice", weaken["id"]).status_code == 403

    # Deleting it opens a request; the policy stays until two leads approve.
    r = alice.delete(f"{G}/alias-policies", {"model": model, "alias": "production"})
    assert r.status_code == 202, r.text
    delete_req = r.json()["approval_request"]
    assert delete_req["kind"] == "policy_change" and delete_req["state"] == "open"
    assert delete_req["id"] != weaken["id"]
    assert "production" in _policies(url, model)
    with signed_in(url, "alice") as c:
        assert_denied(lambda: c.set_registered_model_alias(model, "production", "2"))

    assert _approve(url, "carol", delete_req["id"]).json()["approval_request"]["state"] == "open"
    assert "production" in _policies(url, model)
    r = _approve(url, "dave", delete_req["id"])
    assert r.status_code == 200 and r.json()["approval_request"]["state"] == "approved", r.text
    assert "production" not in _policies(url, model)
    # Unprotected now: the owner moves it directly.
    with signed_in(url, "alice") as c:
        c.set_registered_model_alias(model, "production", "2")
    assert _alias_version(url, model, "production") == "2"


# =========================================================================== 8. web UI login (Reprise)


def _login_form(s: requests.Session, url: str) -> str:
    r = s.get(f"{url}/ui/login", timeout=30)
    assert r.status_code == 200, (r.status_code, r.text[:300])
    assert re.search(r'name="username"', r.text) and re.search(r'name="password"', r.text), r.text[:1000]
    m = re.search(r'name="csrf"[^>]*value="([^"]+)"', r.text) or re.search(r'value="([^"]+)"[^>]*name="csrf"', r.text)
    assert m, "no csrf field on /ui/login"
    return m.group(1)


@reprise_only
def test_ui_requires_login_and_sets_a_safe_session_cookie(auth_server):
    url = auth_server
    add_users(url, "alice")
    s = requests.Session()
    r = s.get(f"{url}/ui/", allow_redirects=False, timeout=30)
    assert r.status_code in (302, 303), (r.status_code, r.text[:200])
    assert urlparse(r.headers["Location"]).path == "/ui/login", r.headers["Location"]
    r = s.get(f"{url}/ui", timeout=30)  # follows every redirect
    assert r.status_code == 200 and urlparse(r.url).path == "/ui/login", (r.status_code, r.url)
    assert r.history and all(h.status_code in (301, 302, 303, 307, 308) for h in r.history)

    csrf = _login_form(s, url)
    r = s.post(f"{url}/ui/login", data={"username": "alice", "password": pw("alice"), "csrf": csrf},
               allow_redirects=False, timeout=30)
    assert r.status_code in (302, 303), (r.status_code, r.text[:300])
    session_cookies = [c for c in cookie_headers(r) if c.startswith("reprise_session=")]
    assert len(session_cookies) == 1, cookie_headers(r)
    attrs = [a.strip().lower() for a in session_cookies[0].split(";")]
    assert "httponly" in attrs and "samesite=lax" in attrs, session_cookies[0]

    r = s.get(f"{url}/ui/", allow_redirects=False, timeout=30)
    assert r.status_code == 200, (r.status_code, r.headers.get("Location"))
    assert "alice" in r.text
    who = s.get(f"{url}{G}/whoami", timeout=30).json()
    assert who["username"] == "alice" and who["method"] == "session", who


@reprise_only
def test_ui_login_refuses_bad_password_and_missing_csrf(auth_server):
    url = auth_server
    add_users(url, "alice")
    s = requests.Session()
    csrf = _login_form(s, url)
    r = s.post(f"{url}/ui/login", data={"username": "alice", "password": "wrong-password-1", "csrf": csrf},
               allow_redirects=False, timeout=30)
    assert not any(c.startswith("reprise_session=") for c in cookie_headers(r)), cookie_headers(r)
    assert r.status_code != 500
    r = s.get(f"{url}/ui/", allow_redirects=False, timeout=30)
    assert r.status_code in (302, 303) and urlparse(r.headers["Location"]).path == "/ui/login"

    fresh = requests.Session()
    _login_form(fresh, url)
    r = fresh.post(f"{url}/ui/login", data={"username": "alice", "password": pw("alice")}, allow_redirects=False, timeout=30)
    assert not any(c.startswith("reprise_session=") for c in cookie_headers(r)), cookie_headers(r)
    r = fresh.get(f"{url}/ui/", allow_redirects=False, timeout=30)
    assert r.status_code in (302, 303)


@reprise_only
def test_forged_session_cookie_is_not_a_login(auth_server):
    r = requests.get(f"{auth_server}/ui/", cookies={"reprise_session": "0" * 64}, allow_redirects=False, timeout=30)
    assert r.status_code in (302, 303) and urlparse(r.headers["Location"]).path == "/ui/login", r.status_code
    r = requests.get(f"{auth_server}{G}/whoami", cookies={"reprise_session": "0" * 64}, timeout=30)
    assert r.status_code == 401


# --------------------------------------------------------------------------- the identity CLI


@reprise_only
def test_identity_commands_read_what_the_server_sends(auth_server, tmp_path):
    """`reprise login`, `whoami`, `users`, `groups` and `tokens` against a real server: each command
    decodes the server's answers into typed entities (RepriseCore's identity wire types), so a
    field renamed on one side fails here."""
    from conftest import REPRISE_BIN

    env = {k: v for k, v in os.environ.items() if k not in CRED_VARS}
    env.update({"MLFLOW_TRACKING_URI": auth_server, "REPRISE_CONFIG_DIR": str(tmp_path / "cfg")})

    def cli(*args, stdin=None, check=True):
        r = subprocess.run([REPRISE_BIN, *args], input=stdin, env=env, capture_output=True, text=True, timeout=60)
        if check:
            assert r.returncode == 0, (args, r.stdout, r.stderr)
        return r

    # A token made with a token lives no longer than its parent: the login's token never expires,
    # so the bot's can be made without an expiry below.
    cli("login", "--username", "admin", "--password-stdin", "--token-name", "laptop", "--expires-in-days", "0", stdin=ADMIN_PW + "\n")
    me = json_of(cli("whoami", "--json"))
    assert me["authenticated"] is True and me["username"] == "admin" and me["is_admin"] is True and me["method"] == "token"
    assert "method:      token (" in cli("whoami").stdout

    cli("users", "create", "ana", "--password-stdin", stdin=pw("ana") + "\n")
    cli("users", "create", "ci-bot", "--service")
    cli("groups", "create", "leads", "--description", "approvers")
    cli("groups", "add-member", "leads", "ana", "ci-bot")
    cli("groups", "grant", "leads", "MANAGE", "--model", "churn")
    granted = cli("groups", "grant", "leads", "EDIT", "--experiment", "*").stdout
    assert "Group leads now has EDIT on every experiment." in granted, granted

    shown = cli("groups", "show", "leads").stdout
    assert "leads (id " in shown and ": approvers" in shown, shown
    assert "members: ana, ci-bot" in shown and "MANAGE on registered_model churn" in shown, shown
    group = json_of(cli("groups", "show", "leads", "--json"))
    assert group["members"] == ["ana", "ci-bot"]
    assert {(p["resource_type"], p["resource_pattern"], p["permission"]) for p in group["group"]["permissions"]} == {
        ("registered_model", "churn", "MANAGE"), ("experiment", "*", "EDIT")}
    listed = cli("groups", "list").stdout
    line = [ln for ln in listed.splitlines() if ln.startswith("leads ")][0]
    assert re.match(r"^leads\s+\d+\s+.*\s+approvers$", line), listed
    assert "EDIT on every experiment" in line and "MANAGE on registered_model churn" in line, listed

    users = {u["username"]: u for u in json_of(cli("users", "list", "--json"))["users"]}
    assert users["ci-bot"]["is_service"] is True and users["ana"]["is_service"] is False
    table = cli("users", "list").stdout
    assert re.search(r"^ana\s+no\s+no\s+leads$", table, re.M) and re.search(r"^ci-bot\s+no\s+yes\s+leads$", table, re.M), table

    created = cli("tokens", "create", "--name", "bot-key", "--username", "ci-bot", "--expires-in-days", "0")
    secret = created.stdout.strip()
    assert secret.startswith("rpt_") and "for ci-bot (never expires)" in created.stderr, created.stderr
    tokens = {t["name"]: t for t in json_of(cli("tokens", "list", "--all", "--json"))["tokens"]}
    assert tokens["bot-key"]["username"] == "ci-bot" and tokens["bot-key"]["expires_time"] is None
    rows = cli("tokens", "list", "--all").stdout
    assert re.search(r"\blaptop\s+admin\s+\S+\s+\S+\s+\S+.*active \(this login\)", rows), rows
    cli("tokens", "revoke", tokens["bot-key"]["id"])
    assert "revoked" in [ln for ln in cli("tokens", "list", "--all").stdout.splitlines() if "bot-key" in ln][0]

    cli("groups", "revoke", "leads", "--model", "churn")
    assert "MANAGE" not in cli("groups", "show", "leads").stdout
    missing = cli("groups", "revoke", "leads", "--model", "churn", check=False)
    assert missing.returncode != 0 and "holds no grant on registered_model churn" in missing.stderr, missing.stderr
    unknown = cli("groups", "show", "nobody", check=False)
    assert unknown.returncode != 0 and "No group named 'nobody'" in unknown.stderr, unknown.stderr

    # The service account's token signs it in; whoami says so.
    env["MLFLOW_TRACKING_TOKEN"] = json_of(cli("tokens", "create", "--name", "k2", "--username", "ci-bot", "--json"))["secret"]
    env["REPRISE_CONFIG_DIR"] = str(tmp_path / "cfg2")
    bot = json_of(cli("whoami", "--json"))
    assert bot["username"] == "ci-bot" and bot["is_service"] is True and bot["groups"] == ["leads"] and bot["token_id"].startswith("tok_")


def json_of(r):
    import json
    return json.loads(r.stdout)
