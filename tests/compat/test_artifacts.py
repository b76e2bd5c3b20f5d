"""Artifacts through the stock client and the mlflow-artifacts proxy (spec §2.8, §4.3)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import requests

import mlflow
from mlflow.exceptions import MlflowException


def sha256(p) -> str:
    if not isinstance(p, Path):  # an object in S3 (conftest.S3Path) on the S3 pass
        return hashlib.sha256(p.read_bytes()).hexdigest()
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tree(root: Path) -> dict[str, bytes]:
    out = {}
    for dp, _, fn in os.walk(root):
        for f in fn:
            p = Path(dp) / f
            out[p.relative_to(root).as_posix()] = p.read_bytes()
    return out


def test_log_artifact_and_list(experiment, client, tmp_path, server):
    f = tmp_path / "hello.txt"
    f.write_text("hello world")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(f))
        mlflow.log_artifact(str(f), artifact_path="dir1")
    rid = run.info.run_id
    root = client.list_artifacts(rid)
    assert [(a.path, a.is_dir, a.file_size) for a in sorted(root, key=lambda a: a.path)] == [
        ("dir1", True, None), ("hello.txt", False, 11)]
    sub = client.list_artifacts(rid, "dir1")
    assert [(a.path, a.is_dir, a.file_size) for a in sub] == [("dir1/hello.txt", False, 11)]
    # stored under <artifacts-destination>/<exp>/<run>/artifacts
    on_disk = server.artifacts / experiment / rid / "artifacts"
    assert (on_disk / "hello.txt").read_text() == "hello world"
    assert (on_disk / "dir1" / "hello.txt").read_text() == "hello world"


def test_log_artifacts_nested_and_download_dir(experiment, client, tmp_path):
    src = tmp_path / "src"
    (src / "deep" / "deeper").mkdir(parents=True)
    (src / "a.txt").write_text("A")
    (src / "deep" / "b.json").write_text('{"b": 1}')
    (src / "deep" / "deeper" / "c.bin").write_bytes(b"\x00\x01\x02")
    (src / "deep" / "deeper" / "empty.txt").write_bytes(b"")
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(src), artifact_path="subdir")
    rid = run.info.run_id
    listing = client.list_artifacts(rid, "subdir")
    assert sorted((a.path, a.is_dir) for a in listing) == [
        ("subdir/a.txt", False), ("subdir/deep", True)]
    deep = client.list_artifacts(rid, "subdir/deep")
    assert sorted((a.path, a.is_dir, a.file_size) for a in deep) == [
        ("subdir/deep/b.json", False, 8), ("subdir/deep/deeper", True, None)]
    dst = tmp_path / "dst"
    dst.mkdir()
    local = mlflow.artifacts.download_artifacts(run_id=rid, artifact_path="subdir", dst_path=str(dst))
    assert Path(local) == dst / "subdir"
    assert tree(Path(local)) == tree(src)
    # whole-run download
    dst2 = tmp_path / "dst2"
    dst2.mkdir()
    local2 = client.download_artifacts(rid, "", str(dst2))
    assert tree(Path(local2)) == {f"subdir/{k}": v for k, v in tree(src).items()}


def test_log_text_and_dict(experiment, client, tmp_path):
    with mlflow.start_run() as run:
        mlflow.log_text("some text\nline 2", "notes/t.txt")
        mlflow.log_dict({"a": 1, "b": [1, 2]}, "cfg.json")
        mlflow.log_dict({"y": "z"}, "cfg.yaml")
    rid = run.info.run_id
    assert mlflow.artifacts.load_text(f"runs:/{rid}/notes/t.txt") == "some text\nline 2"
    assert mlflow.artifacts.load_dict(f"runs:/{rid}/cfg.json") == {"a": 1, "b": [1, 2]}
    assert mlflow.artifacts.load_text(f"runs:/{rid}/cfg.yaml").strip() == "y: z"
    paths = sorted(a.path for a in client.list_artifacts(rid))
    assert paths == ["cfg.json", "cfg.yaml", "notes"]


def test_download_single_file(experiment, tmp_path):
    f = tmp_path / "one.csv"
    f.write_text("x,y\n1,2\n")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(f), artifact_path="data")
    dst = tmp_path / "out"
    dst.mkdir()
    local = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="data/one.csv",
                                                dst_path=str(dst))
    # the reference client places a single file directly under dst_path
    assert Path(local) == dst / "one.csv"
    assert Path(local).read_text() == "x,y\n1,2\n"
    local = mlflow.artifacts.download_artifacts(artifact_uri=f"runs:/{run.info.run_id}/data/one.csv",
                                                dst_path=str(tmp_path / "out2"))
    assert Path(local).read_text() == "x,y\n1,2\n"


def test_large_binary_round_trip(experiment, client, tmp_path, server):
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(5 * 1024 * 1024 + 123))
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(big), artifact_path="blobs")
    rid = run.info.run_id
    [info] = client.list_artifacts(rid, "blobs")
    assert info.path == "blobs/big.bin" and info.file_size == 5 * 1024 * 1024 + 123
    dst = tmp_path / "dl"
    dst.mkdir()
    local = mlflow.artifacts.download_artifacts(run_id=rid, artifact_path="blobs/big.bin", dst_path=str(dst))
    assert sha256(Path(local)) == sha256(big)
    assert sha256(server.artifacts / experiment / rid / "artifacts" / "blobs" / "big.bin") == sha256(big)


def test_overwrite_artifact(experiment, tmp_path):
    f = tmp_path / "v.txt"
    with mlflow.start_run() as run:
        f.write_text("one")
        mlflow.log_artifact(str(f))
        f.write_text("two!")
        mlflow.log_artifact(str(f))
    assert mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/v.txt") == "two!"


def test_list_empty_and_missing(experiment, client):
    run = client.create_run(experiment)
    assert client.list_artifacts(run.info.run_id) == []
    assert client.list_artifacts(run.info.run_id, "nope") == []


def test_download_missing_artifact_fails(experiment, client, tmp_path):
    run = client.create_run(experiment)
    with pytest.raises(MlflowException):
        mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="missing.txt",
                                            dst_path=str(tmp_path))


def test_artifact_names_with_spaces_and_unicode(experiment, client, tmp_path):
    d = tmp_path / "w"
    d.mkdir()
    (d / "with space.txt").write_text("s")
    (d / "ünï.txt").write_text("u")
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(d), artifact_path="odd")
    names = sorted(a.path for a in client.list_artifacts(run.info.run_id, "odd"))
    assert names == sorted(["odd/with space.txt", "odd/ünï.txt"])
    rid = run.info.run_id
    assert mlflow.artifacts.load_text(f"runs:/{rid}/odd/with space.txt") == "s"
    assert mlflow.artifacts.load_text(f"runs:/{rid}/odd/ünï.txt") == "u"


def test_log_figure_like_binary(experiment, client, tmp_path):
    png = bytes.fromhex("89504e470d0a1a0a") + os.urandom(1000)
    f = tmp_path / "img.png"
    f.write_bytes(png)
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(f), artifact_path="plots")
    dst = tmp_path / "o"
    dst.mkdir()
    local = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="plots/img.png",
                                                dst_path=str(dst))
    assert Path(local).read_bytes() == png


def test_json_artifact_content_preserved(experiment, tmp_path):
    payload = {"k": list(range(1000)), "nested": {"s": "x" * 5000}}
    with mlflow.start_run() as run:
        mlflow.log_dict(payload, "big.json")
    assert mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/big.json") == payload
    text = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/big.json")
    assert json.loads(text) == payload


def reprise_cli(*args):
    import subprocess

    from conftest import REPRISE_BIN
    return subprocess.run([REPRISE_BIN, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.reprise_only
def test_verify_catches_tampering_in_the_store(experiment, client, tmp_path, server):
    """The server records each upload's SHA-256 as it streams; `reprise artifacts verify` re-reads
    the files through the server and names what changed behind its back."""
    src = tmp_path / "src"
    (src / "deep").mkdir(parents=True)
    (src / "a.txt").write_text("alpha")
    (src / "deep" / "weights.bin").write_bytes(os.urandom(3 * 1024 * 1024 + 5))
    (src / "deep" / "empty.txt").write_bytes(b"")
    (src / "gone.json").write_text('{"x": 1}')
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(src))
    rid = run.info.run_id

    r = requests.get(f"{server}/api/reprise/v1/artifact-digests", params={"run_id": rid}, timeout=30)
    assert r.status_code == 200, r.text
    recorded = {f["path"]: f for f in r.json()["files"]}
    assert set(recorded) == {"a.txt", "deep/weights.bin", "deep/empty.txt", "gone.json"}
    assert recorded["deep/weights.bin"]["sha256"] == sha256(src / "deep" / "weights.bin")
    assert recorded["deep/empty.txt"]["sha256"] == hashlib.sha256(b"").hexdigest() and recorded["deep/empty.txt"]["size"] == 0
    assert recorded["a.txt"]["method"] == "put"

    ok = reprise_cli("artifacts", "verify", rid, "--tracking-uri", server)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert [line.split()[0] for line in ok.stdout.splitlines()[:-1]] == ["ok"] * 4, ok.stdout
    assert ok.stdout.splitlines()[-1] == "4 ok"

    on_disk = server.artifacts / experiment / rid / "artifacts"
    weights = bytearray((on_disk / "deep" / "weights.bin").read_bytes())
    weights[1234567] ^= 0x01  # one bit, same size
    (on_disk / "deep" / "weights.bin").write_bytes(bytes(weights))
    (on_disk / "gone.json").unlink()
    (on_disk / "planted.txt").write_text("not uploaded through the server")
    bad = reprise_cli("artifacts", "verify", rid, "--tracking-uri", server, "--json")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    report = json.loads(bad.stdout)
    assert report["ok"] is False
    assert {f["path"]: f["status"] for f in report["files"]} == {
        "a.txt": "ok", "deep/empty.txt": "ok", "deep/weights.bin": "MISMATCH", "gone.json": "missing", "planted.txt": "unrecorded"}
    text = reprise_cli("artifacts", "verify", rid, "--tracking-uri", server)
    assert text.returncode == 1
    assert "MISMATCH    deep/weights.bin" in text.stdout and "1 MISMATCH" in text.stdout

    # Uploading again records the new bytes; deleting through the server forgets the record.
    client.log_artifact(rid, str(src / "deep" / "weights.bin"), "deep")
    requests.delete(f"{server}/api/2.0/mlflow-artifacts/artifacts/{experiment}/{rid}/artifacts/gone.json", timeout=30).raise_for_status()
    (on_disk / "planted.txt").unlink()
    again = reprise_cli("artifacts", "verify", rid, "--tracking-uri", server)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.splitlines()[-1] == "3 ok"


@pytest.mark.reprise_only
def test_verify_errors_are_clear(server):
    r = reprise_cli("artifacts", "verify", "0123456789abcdef0123456789abcdef", "--tracking-uri", server)
    assert r.returncode == 1 and "RESOURCE_DOES_NOT_EXIST" in r.stderr, r.stderr
    r = requests.get(f"{server}/api/reprise/v1/artifact-digests", timeout=30)
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    # Hostile run ids are a client error, never a 5xx: NUL, a path, a number past Int64, and a
    # 100 KiB one (a URL over the server's 64 KiB head limit: 431, in MLflow's envelope).
    for bad in ["ab\x00cd", "../../etc/passwd", str(2 ** 63), "9" * 40, "x" * 100_000]:
        r = requests.get(f"{server}/api/reprise/v1/artifact-digests", params={"run_id": bad}, timeout=30)
        assert r.status_code in (400, 404, 431), (bad[:20], r.status_code, r.text[:200])
        assert r.json()["error_code"] in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST"), r.text[:200]
    # verify prints its progress to standard error, and only there.
    r = reprise_cli("artifacts", "verify", "0123456789abcdef0123456789abcdef", "--tracking-uri", server, "--json")
    assert r.returncode == 1 and r.stdout == "", r.stdout


@pytest.mark.reprise_only
def test_multipart_bodies_are_bounded(server):
    """The multipart routes read a bounded JSON body (64 KiB for create and abort) whatever the
    destination: a 100 MB body is refused, not buffered."""
    big = b'{"path": "f.bin", "num_parts": 1, "pad": "' + b"x" * (100 * 1024 * 1024) + b'"}'
    for op in ["create", "abort"]:
        r = requests.post(f"{server}/api/2.0/mlflow-artifacts/mpu/{op}/0/run/artifacts", data=big,
                          headers={"Content-Type": "application/json"}, timeout=120)
        assert r.status_code in (400, 413, 501), (op, r.status_code, r.text[:200])
        assert r.status_code != 500


def test_proxy_url_as_artifact_location(client, tmp_path, server):
    # An experiment whose artifact location is this server's own proxy spelled as an http URL (as
    # `--default-artifact-root http://host/api/2.0/mlflow-artifacts/artifacts/experiments` makes):
    # the client writes through the proxy, and the server lists and serves the same files.
    import uuid

    location = f"{server.rstrip('/')}/api/2.0/mlflow-artifacts/artifacts/experiments/{uuid.uuid4().hex[:8]}"
    exp = client.create_experiment(f"http-root-{uuid.uuid4().hex[:8]}", artifact_location=location)
    run = client.create_run(exp)
    f = tmp_path / "hello.txt"
    f.write_text("hello over http")
    client.log_artifact(run.info.run_id, str(f), artifact_path="docs")
    assert run.info.artifact_uri.startswith(location)
    assert [a.path for a in client.list_artifacts(run.info.run_id, "docs")] == ["docs/hello.txt"]
    r = requests.get(
        f"{server.rstrip('/')}/get-artifact", params={"run_id": run.info.run_id, "path": "docs/hello.txt"}, timeout=30)
    assert r.status_code == 200 and r.text == "hello over http"
    out = client.download_artifacts(run.info.run_id, "docs/hello.txt", str(tmp_path / "dl"))
    assert Path(out).read_text() == "hello over http"
