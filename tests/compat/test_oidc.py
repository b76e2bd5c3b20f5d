"""Single sign-on: bearer JWTs from an OpenID Connect issuer the test runs itself.

The issuer is a small HTTP server in this process: it serves a discovery document and a JWKS with
an RSA key generated here, and the tests sign tokens with that key (RS256). Reprise is started with
`--oidc-issuer` pointing at it and must verify signature, issuer, audience and expiry, map the
user-name claim to a user and the groups claim to Reprise groups, and record `auth_method: oidc`.
"""
import base64
import json
import os
import threading
import time
import uuid
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from conftest import IS_REFERENCE, free_port, start_server, stop_server

pytestmark = pytest.mark.skipif(IS_REFERENCE, reason="OIDC is a Reprise extension")

ADMIN_PW = "admin-Passw0rd-oidc"
AUDIENCE = "reprise-tracking"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def int_b64url(n: int) -> str:
    return b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))


class Issuer:
    """An OIDC issuer: discovery, JWKS, and RS256 signing with keys made here."""

    def __init__(self):
        self.keys = {"k1": rsa.generate_private_key(public_exponent=65537, key_size=2048)}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.jwks_fetches = 0
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == "/.well-known/openid-configuration":
                    body = {"issuer": issuer.url, "jwks_uri": issuer.url + "/jwks.json"}
                elif self.path == "/jwks.json":
                    issuer.jwks_fetches += 1
                    body = {"keys": [issuer.jwk(kid) for kid in issuer.keys]}
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def jwk(self, kid: str) -> dict:
        pub = self.keys[kid].public_key().public_numbers()
        return {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": int_b64url(pub.n), "e": int_b64url(pub.e)}

    def token(self, sub="u-1", username="erin", groups=("ml-leads",), aud=AUDIENCE, iss=None, exp_in=300,
              kid="k1", key=None) -> str:
        now = int(time.time())
        claims = {"iss": iss or self.url, "sub": sub, "aud": aud, "iat": now, "exp": now + exp_in,
                  "preferred_username": username, "groups": list(groups)}
        header = {"alg": "RS256", "typ": "JWT", "kid": kid}
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        signer = key or self.keys[kid]
        sig = signer.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{b64url(sig)}"

    def close(self):
        self.httpd.shutdown()


@pytest.fixture()
def issuer():
    i = Issuer()
    try:
        yield i
    finally:
        i.close()


@pytest.fixture()
def sso_server(tmp_path, issuer):
    ini = tmp_path / "auth.ini"
    ini.write_text(f"[mlflow]\ndefault_permission = NO_PERMISSIONS\nadmin_username = admin\nadmin_password = {ADMIN_PW}\n")
    url = start_server(
        tmp_path / "srv",
        extra_args=("--app-name", "basic-auth", "--oidc-issuer", issuer.url, "--oidc-audience", AUDIENCE),
        env_extra={"MLFLOW_AUTH_CONFIG_PATH": str(ini), "REPRISE_BCRYPT_COST": "4"},
        env_remove=("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN", "MLFLOW_AUTH_ADMIN_PASSWORD"),
    )
    try:
        yield url
    finally:
        stop_server(url)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@contextmanager
def token_env(token: str):
    old = os.environ.get("MLFLOW_TRACKING_TOKEN")
    os.environ["MLFLOW_TRACKING_TOKEN"] = token
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MLFLOW_TRACKING_TOKEN", None)
        else:
            os.environ["MLFLOW_TRACKING_TOKEN"] = old


def admin(url: str) -> requests.Session:
    s = requests.Session()
    s.auth = ("admin", ADMIN_PW)
    return s


def test_a_valid_token_names_the_user_and_their_groups(sso_server, issuer):
    r = requests.get(f"{sso_server}/api/reprise/v1/whoami", headers=bearer(issuer.token()))
    assert r.status_code == 200, r.text
    me = r.json()
    assert me["username"] == "erin" and me["method"] == "oidc" and me["groups"] == ["ml-leads"]


@pytest.mark.parametrize("case", ["wrong_audience", "wrong_issuer", "expired", "foreign_key", "tampered", "garbage"])
def test_bad_tokens_are_unauthenticated(sso_server, issuer, case):
    if case == "wrong_audience":
        token = issuer.token(aud="someone-else")
    elif case == "wrong_issuer":
        token = issuer.token(iss="http://evil.example")
    elif case == "expired":
        token = issuer.token(exp_in=-120)
    elif case == "foreign_key":
        token = issuer.token(key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    elif case == "tampered":
        h, p, s = issuer.token().split(".")
        claims = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
        claims["preferred_username"] = "admin"
        token = f"{h}.{b64url(json.dumps(claims).encode())}.{s}"
    else:
        token = "not.a.jwt"
    r = requests.get(f"{sso_server}/api/reprise/v1/whoami", headers=bearer(token))
    assert r.status_code == 401, (case, r.status_code, r.text)
    assert r.headers.get("WWW-Authenticate") == 'Basic realm="mlflow"'


def test_stock_client_with_a_token_and_group_grants(sso_server, issuer):
    """The groups claim maps to Reprise groups: a grant to ml-leads lets erin log to the experiment."""
    a = admin(sso_server)
    exp = a.post(f"{sso_server}/api/2.0/mlflow/experiments/create", json={"name": f"sso-{uuid.uuid4().hex[:8]}"}).json()["experiment_id"]
    token = issuer.token()
    client = MlflowClient(sso_server)
    with token_env(token):
        # default NO_PERMISSIONS: nothing yet
        with pytest.raises(MlflowException) as e:
            client.get_experiment(exp)
        assert e.value.error_code == "PERMISSION_DENIED"
        assert exp not in [x.experiment_id for x in client.search_experiments()]
    role = a.post(f"{sso_server}/api/3.0/mlflow/roles/create", json={"workspace": "default", "name": "ml-leads"}).json()["role"]
    r = a.post(f"{sso_server}/api/3.0/mlflow/roles/permissions/add",
               json={"role_id": role["id"], "resource_type": "experiment", "resource_pattern": exp, "permission": "EDIT"})
    assert r.status_code == 200, r.text
    with token_env(token):
        run = client.create_run(exp)
        client.log_metric(run.info.run_id, "loss", 0.5)
        assert client.get_run(run.info.run_id).data.metrics == {"loss": 0.5}
        assert exp in [x.experiment_id for x in client.search_experiments()]
    # The same user without the group claim cannot.
    with token_env(issuer.token(groups=())):
        with pytest.raises(MlflowException) as e:
            client.log_metric(run.info.run_id, "loss", 0.4)
        assert e.value.error_code == "PERMISSION_DENIED"
    events = a.get(f"{sso_server}/api/reprise/v1/audit/events", params={"entity_type": "run", "limit": 1000}).json()["events"]
    mine = [e for e in events if e["entity_id"] == run.info.run_id and e["action"] == "run.create"]
    assert mine and mine[0]["actor"] == "erin" and mine[0]["authenticated"] is True and mine[0]["auth_method"] == "oidc"


def test_keys_are_fetched_once_not_per_request(sso_server, issuer):
    token = issuer.token(username="frank", groups=())
    for _ in range(20):
        assert requests.get(f"{sso_server}/api/reprise/v1/whoami", headers=bearer(token)).status_code == 200
    assert issuer.jwks_fetches == 1
