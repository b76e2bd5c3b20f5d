"""HTTPS served by `reprise server --ssl-certfile --ssl-keyfile`, so credentials never cross a
network in the clear when no proxy terminates TLS. The certificate is made here (self-signed for
127.0.0.1) and the stock client trusts it through MLFLOW_TRACKING_SERVER_CERT_PATH."""
import datetime
import ipaddress
import os
import re
import subprocess
import time
import uuid

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import IS_REFERENCE, REPRISE_BIN, free_port, stop_server

pytestmark = pytest.mark.skipif(IS_REFERENCE, reason="the reference server takes TLS from gunicorn/uvicorn options")

ADMIN_PW = "admin-Passw0rd-tls"


def make_certificate(directory):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture()
def tls_server(tmp_path):
    cert, key = make_certificate(tmp_path)
    ini = tmp_path / "auth.ini"
    ini.write_text(f"[mlflow]\ndefault_permission = READ\nadmin_username = admin\nadmin_password = {ADMIN_PW}\n")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")}
    env.update({"MLFLOW_AUTH_CONFIG_PATH": str(ini), "REPRISE_BCRYPT_COST": "4"})
    log = open(tmp_path / "server.log", "wb")
    proc = subprocess.Popen(
        [REPRISE_BIN, "server", "--port", str(port), "--app-name", "basic-auth", "--ssl-certfile", str(cert), "--ssl-keyfile", str(key)],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"https://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(url + "/health", verify=str(cert), timeout=2).status_code == 200:
                break
        except requests.RequestException:
            pass
        assert proc.poll() is None, (tmp_path / "server.log").read_text()
        assert time.monotonic() < deadline, "the TLS server did not become healthy"
        time.sleep(0.1)
    try:
        yield url, cert, port
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_https_with_the_stock_client(tls_server, monkeypatch):
    url, cert, _ = tls_server
    monkeypatch.setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", str(cert))
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN_PW)
    from mlflow.tracking import MlflowClient
    client = MlflowClient(url)
    exp = client.create_experiment(f"tls-{uuid.uuid4().hex[:8]}")
    run = client.create_run(exp)
    client.log_metric(run.info.run_id, "acc", 0.9)
    assert client.get_run(run.info.run_id).data.metrics == {"acc": 0.9}


def test_plain_http_to_the_tls_port_gets_no_answer(tls_server):
    _, _, port = tls_server
    with pytest.raises(requests.RequestException):
        requests.get(f"http://127.0.0.1:{port}/health", timeout=3)


def test_an_untrusted_certificate_is_refused_by_the_client(tls_server):
    url, _, _ = tls_server
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(url + "/health", timeout=3)


def test_session_cookie_is_secure_under_tls(tls_server):
    url, cert, _ = tls_server
    s = requests.Session()
    # Per request: a session-wide `verify` loses to REQUESTS_CA_BUNDLE in the environment.
    page = s.get(url + "/ui/login", verify=str(cert))
    assert page.status_code == 200
    csrf = re.search(r'name="csrf" value="([0-9a-f.]+)"', page.text).group(1)
    r = s.post(url + "/ui/login", data={"username": "admin", "password": ADMIN_PW, "csrf": csrf, "next": "/ui/"},
               headers={"Origin": url}, allow_redirects=False, verify=str(cert))
    assert r.status_code in (302, 303), r.text[:300]
    cookie = next(h for k, h in r.raw.headers.items() if k.lower() == "set-cookie" and h.startswith("reprise_session="))
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_unreadable_certificate_stops_start_up(tmp_path):
    r = subprocess.run(
        [REPRISE_BIN, "server", "--port", str(free_port()), "--ssl-certfile", str(tmp_path / "missing.pem"), "--ssl-keyfile",
         str(tmp_path / "missing-key.pem")],
        cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "--ssl-certfile" in r.stderr and "cannot be read" in r.stderr
