"""Regression tests for the attacker review of the identity change: each case is a request that
got past a permission check before the fix (or would have), sent as a user who may not do it."""
import base64
import uuid
from pathlib import Path

import pytest
import requests

from conftest import IS_REFERENCE, start_server, stop_server
from test_oidc import AUDIENCE, Issuer

pytestmark = pytest.mark.skipif(IS_REFERENCE, reason="Reprise's own regressions")

ADMIN_PW = "admin-Passw0rd-bypass"


def pw(name):
    return f"{name}-Passw0rd-bypass"


def start(tmp: Path, default="NO_PERMISSIONS", extra=()):
    ini = tmp / "auth.ini"
    tmp.mkdir(parents=True, exist_ok=True)
    ini.write_text(f"[mlflow]\ndefault_permission = {default}\nadmin_username = admin\nadmin_password = {ADMIN_PW}\n")
    return start_server(tmp / "srv", extra_args=("--app-name", "basic-auth", *extra),
                        env_extra={"MLFLOW_AUTH_CONFIG_PATH": str(ini), "REPRISE_BCRYPT_COST": "4"},
                        env_remove=("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN",
                                    "MLFLOW_AUTH_ADMIN_PASSWORD"))


class As:
    def __init__(self, url, user, password=None, headers=None):
        self.url, self.s = url, requests.Session()
        self.s.auth = (user, password or (ADMIN_PW if user == "admin" else pw(user)))
        self.s.headers.update(headers or {})

    def get(self, path, **kw):
        return self.s.get(self.url + path, **kw)

    def post(self, path, json=None, **kw):
        return self.s.post(self.url + path, json=json, **kw)

    def put(self, path, json=None, **kw):
        return self.s.put(self.url + path, json=json, **kw)


def denied(r):
    assert r.status_code == 403, (r.status_code, r.text[:300])


@pytest.fixture()
def world(tmp_path):
    """alice owns an experiment with a run and an artifact; bob has no grants (NO_PERMISSIONS)."""
    url = start(tmp_path)
    admin = As(url, "admin")
    for name in ("alice", "bob"):
        assert admin.post("/api/2.0/mlflow/users/create", {"username": name, "password": pw(name)}).status_code == 200
    alice, bob = As(url, "alice"), As(url, "bob")
    exp = alice.post("/api/2.0/mlflow/experiments/create", {"name": f"secret-{uuid.uuid4().hex[:6]}"}).json()["experiment_id"]
    run = alice.post("/api/2.0/mlflow/runs/create", {"experiment_id": exp}).json()["run"]["info"]
    r = alice.s.put(f"{url}/api/2.0/mlflow-artifacts/artifacts/{exp}/{run['run_id']}/artifacts/secret.txt", data=b"TOP SECRET")
    assert r.status_code == 200, r.text
    try:
        yield url, admin, alice, bob, exp, run
    finally:
        stop_server(url)


def test_an_empty_run_id_beside_run_uuid_is_not_a_way_around_the_check(world):
    url, _, _, bob, exp, run = world
    rid = run["run_id"]
    denied(bob.get("/api/2.0/mlflow/runs/get", params={"run_id": "", "run_uuid": rid}))
    denied(bob.post("/api/2.0/mlflow/runs/delete", {"run_id": "", "run_uuid": rid}))
    denied(bob.post("/api/2.0/mlflow/runs/log-metric", {"run_id": "", "run_uuid": rid, "key": "x", "value": 1, "timestamp": 1}))
    denied(bob.get("/get-artifact", params={"run_id": "", "run_uuid": rid, "path": "secret.txt"}))
    denied(bob.post(f"/api/2.0/mlflow/upload-artifact?run_id=&run_uuid={rid}&path=x.txt", data=b"x",
                    headers={"Content-Type": "application/octet-stream"}))


def test_other_spellings_of_an_experiment_id_name_the_same_experiment(tmp_path):
    """Under default READ, DENY is the way to restrict; 05 and +5 must be denied like 5."""
    url = start(tmp_path, default="READ")
    try:
        admin = As(url, "admin")
        admin.post("/api/2.0/mlflow/users/create", {"username": "bob", "password": pw("bob")})
        exp = admin.post("/api/2.0/mlflow/experiments/create", {"name": "denied"}).json()["experiment_id"]
        admin.post("/api/2.0/mlflow/runs/create", {"experiment_id": exp})
        r = admin.post("/api/3.0/mlflow/users/permissions/grant",
                       {"username": "bob", "resource_type": "experiment", "resource_id": exp, "permission": "DENY"})
        assert r.status_code == 200, r.text
        bob = As(url, "bob")
        for spelling in (exp, "0" + exp, "+" + exp):
            denied(bob.get("/api/2.0/mlflow/experiments/get", params={"experiment_id": spelling}))
            assert bob.post("/api/2.0/mlflow/runs/search", {"experiment_ids": [spelling]}).json() == {}
    finally:
        stop_server(url)


def test_dot_segments_in_an_artifact_path_do_not_hide_the_experiment(world):
    url, _, _, bob, exp, run = world
    path = f"./{exp}/{run['run_id']}/artifacts/secret.txt"
    denied(bob.get(f"/api/2.0/mlflow-artifacts/artifacts/{path}"))
    denied(bob.get("/api/2.0/mlflow-artifacts/artifacts", params={"path": f"./{exp}"}))


def test_a_model_version_cannot_point_at_files_the_caller_may_not_read(world):
    url, admin, alice, bob, exp, run = world
    # bob gets an experiment of his own (EDIT) and a logged model in it, then tries to register a
    # version whose source is alice's run folder, by run URI, proxy URI and local path.
    mine = admin.post("/api/2.0/mlflow/experiments/create", {"name": "bobs"}).json()["experiment_id"]
    admin.post("/api/3.0/mlflow/users/permissions/grant",
               {"username": "bob", "resource_type": "experiment", "resource_id": mine, "permission": "EDIT"})
    lm = bob.post("/api/2.0/mlflow/logged-models", {"experiment_id": mine, "name": "m"}).json()["model"]["info"]["model_id"]
    assert bob.post("/api/2.0/mlflow/registered-models/create", {"name": "bobs-model"}).status_code == 200
    for source, extra in [
        (f"runs:/{run['run_id']}/artifacts", {}),
        (f"mlflow-artifacts:/{exp}/{run['run_id']}/artifacts", {"model_id": lm}),
        (str(url.artifacts / exp / run["run_id"] / "artifacts"), {"model_id": lm}),  # a path, or s3:// on the S3 pass
    ]:
        denied(bob.post("/api/2.0/mlflow/model-versions/create", {"name": "bobs-model", "source": source, **extra}))


def test_a_service_account_acting_for_others_cannot_vote(world):
    url, admin, alice, bob, exp, run = world
    r = admin.post("/api/reprise/v1/service-accounts", {"username": "bot", "can_act_as": True})
    assert r.status_code == 200, r.text
    secret = admin.post("/api/reprise/v1/tokens", {"name": "bot", "username": "bot"}).json()["secret"]
    alice.post("/api/2.0/mlflow/registered-models/create", {"name": "gov"})
    alice.post("/api/2.0/mlflow/model-versions/create", {"name": "gov", "source": f"runs:/{run['run_id']}/artifacts", "run_id": run["run_id"]})
    admin.post("/api/3.0/mlflow/users/permissions/grant",
               {"username": "bot", "resource_type": "registered_model", "resource_id": "gov", "permission": "EDIT"})
    assert alice.put("/api/reprise/v1/alias-policies", {"model": "gov", "alias": "prod", "required_approvals": 2}).status_code == 200
    req = alice.post("/api/reprise/v1/approval-requests", {"model": "gov", "alias": "prod", "version": "1", "rationale": "ship"})
    assert req.status_code == 202, req.text
    rid = req.json()["approval_request"]["id"]
    for name in ("carol", "dave"):
        r = requests.post(f"{url}/api/reprise/v1/approval-requests/{rid}/approve", json={"rationale": "ok"},
                          headers={"Authorization": f"Bearer {secret}", "X-Reprise-Actor": name})
        assert r.status_code == 403, r.text
        assert "Votes are cast by people" in r.text


def test_server_wide_policies_are_for_admins(world):
    url, admin, alice, bob, exp, run = world
    # alice is given MANAGE on every registered model; still not an admin.
    admin.post("/api/3.0/mlflow/users/permissions/grant",
               {"username": "alice", "resource_type": "registered_model", "resource_id": "*", "permission": "MANAGE"})
    denied(alice.put("/api/reprise/v1/alias-policies", {"model": "*", "alias": "production", "required_approvals": 1}))
    assert admin.put("/api/reprise/v1/alias-policies", {"model": "*", "alias": "production", "required_approvals": 2,
                                                         "self_change_requires_approval": True}).status_code == 200
    # A laxer policy for one model must not escape the guarded server-wide one.
    alice.post("/api/2.0/mlflow/registered-models/create", {"name": "escape"})
    r = alice.put("/api/reprise/v1/alias-policies", {"model": "escape", "alias": "production", "required_approvals": 1})
    assert r.status_code == 202 and r.json()["approval_request"]["kind"] == "policy_change", r.text


def test_a_token_cannot_take_over_a_local_account(tmp_path):
    issuer = Issuer()
    try:
        url = start(tmp_path, extra=("--oidc-issuer", issuer.url, "--oidc-audience", AUDIENCE))
        try:
            r = requests.get(f"{url}/api/reprise/v1/whoami",
                             headers={"Authorization": f"Bearer {issuer.token(username='admin', groups=())}"})
            assert r.status_code == 401, r.text
            # The same subject keeps its own account across requests.
            ok = requests.get(f"{url}/api/reprise/v1/whoami", headers={"Authorization": f"Bearer {issuer.token(sub='s-9', username='gina')}"})
            assert ok.status_code == 200 and ok.json()["username"] == "gina"
            other = requests.get(f"{url}/api/reprise/v1/whoami", headers={"Authorization": f"Bearer {issuer.token(sub='s-10', username='gina')}"})
            assert other.status_code == 401
        finally:
            stop_server(url)
    finally:
        issuer.close()


def test_sso_needs_an_audience(tmp_path):
    import subprocess
    from conftest import REPRISE_BIN
    r = subprocess.run([REPRISE_BIN, "server", "--port", "0", "--app-name", "basic-auth", "--oidc-issuer", "http://127.0.0.1:9"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=30,
                       env={"PATH": "/usr/bin:/bin", "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PW, "HOME": str(tmp_path)})
    assert r.returncode != 0 and "--oidc-audience" in r.stderr


def test_an_expired_token_is_refused_even_while_cached(world):
    url, admin, alice, bob, exp, run = world
    secret = alice.post("/api/reprise/v1/tokens", {"name": "short", "expires_in_seconds": 2}).json()["secret"]
    headers = {"Authorization": f"Bearer {secret}"}
    assert requests.get(f"{url}/api/reprise/v1/whoami", headers=headers).status_code == 200  # verified and cached
    import time
    time.sleep(2.5)
    assert requests.get(f"{url}/api/reprise/v1/whoami", headers=headers).status_code == 401


def test_a_denied_ui_page_is_a_page(world):
    url, admin, alice, bob, exp, run = world
    r = bob.get(f"/ui/experiments/{exp}")
    assert r.status_code == 403 and r.headers["Content-Type"].startswith("text/html") and "Not allowed" in r.text
    assert "Signed in as" in r.text and "bob" in r.text  # which account was refused


def test_the_first_session_cookie_of_a_name_is_the_one_read(world):
    """Browsers send the most specific cookie first; one planted later (from a sibling domain)
    must not replace it."""
    import re
    url, admin, alice, bob, exp, run = world
    s = requests.Session()
    page = s.get(f"{url}/ui/login")
    csrf = re.search(r'name="csrf" value="([0-9a-f.]+)"', page.text).group(1)
    r = s.post(f"{url}/ui/login", data={"username": "alice", "password": pw("alice"), "csrf": csrf, "next": "/ui/"},
               headers={"Origin": url}, allow_redirects=False)
    session = s.cookies.get("reprise_session")
    assert r.status_code in (302, 303) and session
    r = requests.get(f"{url}/api/reprise/v1/whoami", headers={"Cookie": f"reprise_session={session}; reprise_session=planted"})
    assert r.status_code == 200 and r.json()["username"] == "alice"
