"""The identity routes with hostile inputs, authentication on: extreme integers, NUL and control
characters, path tricks and an oversized body get a 4xx in MLflow's envelope (or MLflow's plain
401/403), never a 5xx, and the server keeps answering."""
import pytest
import requests

from conftest import IS_REFERENCE, stop_server
from test_auth_bypass import ADMIN_PW, start

pytestmark = pytest.mark.skipif(IS_REFERENCE, reason="Reprise's identity routes")

INTS = [2**63 - 1, -(2**63), 2**31, -1, 0, "9" * 40, 1e300, "NaN"]
STRINGS = ["a\x00b", "\x1b[31m", "../../etc/passwd", "x" * 5000, "", "%00"]
A2, A3, R = "/api/2.0/mlflow", "/api/3.0/mlflow", "/api/reprise/v1"


@pytest.fixture()
def srv(tmp_path):
    url = start(tmp_path, default="READ")
    s = requests.Session()
    s.auth = ("admin", ADMIN_PW)
    try:
        yield url, s
    finally:
        stop_server(url)


def check(r, what):
    assert r.status_code < 500, f"{what}: {r.status_code} {r.text[:200]}"
    if r.status_code >= 400 and r.headers.get("Content-Type", "").startswith("application/json"):
        assert "error_code" in r.json(), what


def test_extreme_integers_on_identity_routes(srv):
    url, s = srv
    for v in INTS:
        for method, path, body in [
            ("GET", f"{A3}/roles/get", {"role_id": v}),
            ("GET", f"{A3}/roles/permissions/list", {"role_id": v}),
            ("PATCH", f"{A3}/roles/update", {"role_id": v, "name": "x"}),
            ("DELETE", f"{A3}/roles/delete", {"role_id": v}),
            ("POST", f"{A3}/roles/assign", {"username": "admin", "role_id": v}),
            ("DELETE", f"{A3}/roles/permissions/remove", {"role_permission_id": v}),
            ("PATCH", f"{A3}/roles/permissions/update", {"role_permission_id": v, "permission": "READ"}),
            ("POST", f"{R}/tokens", {"name": "t", "expires_in_days": v}),
            ("POST", f"{R}/tokens", {"name": "t", "expires_in_seconds": v}),
            ("POST", f"{A3}/users/permissions/grant", {"username": "admin", "resource_type": "experiment", "resource_id": v, "permission": "READ"}),
        ]:
            r = s.request(method, url + path, params=body if method == "GET" else None, json=None if method == "GET" else body)
            check(r, f"{method} {path} {body}")
    assert requests.get(url + "/health").status_code == 200


def test_control_characters_and_paths_in_names(srv):
    url, s = srv
    for v in STRINGS:
        for method, path, body in [
            ("POST", f"{A2}/users/create", {"username": v, "password": "long-enough-password"}),
            ("POST", f"{A3}/roles/create", {"workspace": "default", "name": v}),
            ("POST", f"{R}/tokens", {"name": v}),
            ("POST", f"{R}/service-accounts", {"username": v}),
            ("GET", f"{A2}/users/get", {"username": v}),
            ("POST", f"{A3}/users/permissions/grant", {"username": "admin", "resource_type": v, "resource_id": "1", "permission": "READ"}),
            ("POST", f"{A3}/users/permissions/grant", {"username": "admin", "resource_type": "registered_model", "resource_id": v, "permission": v}),
        ]:
            r = s.request(method, url + path, params=body if method == "GET" else None, json=None if method == "GET" else body)
            check(r, f"{method} {path} {body!r:.80}")
            if "\x00" in v or "\x1b" in v:
                assert r.status_code >= 400, f"{method} {path} accepted a control character"
    # Control characters and empty names never became accounts or groups.
    users = s.get(url + f"{A2}/users/list").json()["users"]
    assert all("\x00" not in u["username"] and "\x1b" not in u["username"] and u["username"] for u in users)


def test_an_oversized_body_is_refused(srv):
    url, s = srv
    r = s.post(url + f"{R}/tokens", data=b'{"name": "' + b"x" * (100 * 1024 * 1024) + b'"}',
               headers={"Content-Type": "application/json"})
    assert r.status_code in (400, 413), r.status_code
    assert requests.get(url + "/health").status_code == 200


def test_credentials_that_are_not_credentials(srv):
    url, _ = srv
    for header in ["Basic " + "A" * 100_000, "Basic AAAA", "Basic \x00", "Bearer rpt_", "Bearer rpt__", "Bearer " + "a." * 5000,
                   "Bearer rpt_" + "f" * 16 + "_" + "0" * 64]:
        try:
            r = requests.get(url + f"{R}/whoami", headers={"Authorization": header})
        except (requests.exceptions.InvalidHeader, ValueError):
            continue  # the client itself refuses to send it
        assert r.status_code in (400, 401, 431), (header[:30], r.status_code)
    assert requests.get(url + "/health").status_code == 200
