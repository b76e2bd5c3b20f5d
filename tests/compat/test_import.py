"""`reprise import mlflow` (issue 12): a real MLflow 3.17.2 server, filled by the stock client, imported
from its database file; then the same stock-client calls against both servers give the same answers,
ids unchanged. Also: a second import adds nothing, an interrupted import continues, and a database that
is not MLflow's is refused.

On the SQLite pass the artifacts are copied into Reprise's folder (and checked by SHA-256); on the
PostgreSQL pass the store goes into PostgreSQL and the artifacts are referenced where MLflow left them."""
from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
import requests
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, ViewType

from conftest import COMPAT_POSTGRES_URL, REPRISE_BIN, _backend_store_uri, free_port, start_server, stop_server

pytestmark = pytest.mark.reprise_only

HERE = Path(__file__).resolve().parent
G = "/api/reprise/v1"


def _start_mlflow(data: Path) -> tuple[subprocess.Popen, str]:
    """The reference server from the suite's venv, on SQLite with proxied artifacts, as a team runs it."""
    from cryptography.fernet import Fernet

    port = free_port()
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
               MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY=Fernet.generate_key().decode(), MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS="true")
    log = open(data / "mlflow-server.log", "wb")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{data}/mlflow.db", "--artifacts-destination", f"{data}/artifacts", "--workers", "1"],
        cwd=data, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert proc.poll() is None, (data / "mlflow-server.log").read_text()[-4000:]
        try:
            if requests.get(f"{url}/health", timeout=2).status_code == 200:
                return proc, url
        except requests.RequestException:
            pass
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail("mlflow server did not start:\n" + (data / "mlflow-server.log").read_text()[-4000:])


@pytest.fixture(scope="module")
def mlflow_source(tmp_path_factory):
    data = tmp_path_factory.mktemp("mlflow-source")
    proc, url = _start_mlflow(data)
    try:
        fill = subprocess.run([sys.executable, str(HERE / "mlflow_fill.py")], env=dict(os.environ, MLFLOW_TRACKING_URI=url),
                              capture_output=True, text=True, timeout=900)
        assert fill.returncode == 0, fill.stderr[-4000:]
        made = json.loads(fill.stdout.strip().splitlines()[-1])
        yield url, data, made
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def _import(args: list[str], cwd: Path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([REPRISE_BIN, "import", "mlflow", *args], cwd=cwd, capture_output=True, text=True, timeout=600, **kw)


def _tags(run) -> dict:
    return {k: v for k, v in run.data.tags.items() if not k.startswith("reprise.")}


def _same_runs(a, b):
    assert [r.info.run_id for r in a] == [r.info.run_id for r in b]
    for x, y in zip(a, b):
        assert x.info.run_name == y.info.run_name and x.info.status == y.info.status
        assert x.info.start_time == y.info.start_time and x.info.end_time == y.info.end_time
        assert x.info.artifact_uri == y.info.artifact_uri and x.info.lifecycle_stage == y.info.lifecycle_stage
        assert x.data.params == y.data.params
        assert x.data.metrics == y.data.metrics
        assert _tags(x) == _tags(y)
        assert sorted((d.dataset.name, d.dataset.digest) for d in x.inputs.dataset_inputs) == \
            sorted((d.dataset.name, d.dataset.digest) for d in y.inputs.dataset_inputs)


def _points(client, run_id, key):
    return [(m.step, m.timestamp, "nan" if math.isnan(m.value) else m.value) for m in client.get_metric_history(run_id, key)]


@pytest.mark.parametrize("path", ["database", "rest"])
def test_import_an_mlflow_server(mlflow_source, tmp_path, path):
    """From its database file (read directly) and, separately, through its REST API."""
    mlflow_url, data, made = mlflow_source
    target = tmp_path / "reprise"
    target.mkdir()
    store = _backend_store_uri(target)
    reference = bool(COMPAT_POSTGRES_URL)
    source = f"sqlite:///{data}/mlflow.db" if path == "database" else mlflow_url
    # Credentials in a server URL are used, never recorded.
    given = source if path == "database" else mlflow_url.replace("http://", "http://ana:s3cretpw@")
    args = ["--from", given, "--to", store]
    if reference:
        args += ["--artifacts-mode", "reference"]
        destination = f"{data}/artifacts"
    else:
        # From the database, the artifacts are copied from MLflow's folder; over REST, through the server.
        args += ["--artifacts-destination", f"{target}/artifacts"]
        if path == "database":
            args += ["--artifacts", f"{data}/artifacts"]
        destination = f"{target}/artifacts"
    before = (data / "mlflow.db").read_bytes()
    p = _import(args, target)
    assert p.returncode == 0, p.stdout + p.stderr
    out = p.stdout
    assert "Verification: passed" in out, out
    assert "MISMATCH" not in out and "DIFFERS" not in out, out
    assert "runs" in out and "metric points" in out
    assert "deploy-hook" in out and "update_webhook" in out, out  # the webhook's secret could not come along
    assert (data / "mlflow.db").read_bytes() == before  # read only
    assert "s3cretpw" not in out + p.stderr
    if not reference:
        assert "SHA-256 identical" in out, out

    reprise = start_server(target, backend_store_uri=store, artifacts_destination=destination)
    # The registry URI is left unset, so it follows the tracking URI; set_tracking_uri also sets
    # MLFLOW_TRACKING_URI, so what was there before is put back at the end.
    previous = mlflow.get_tracking_uri()
    try:
        ml, rp = MlflowClient(mlflow_url, registry_uri=mlflow_url), MlflowClient(reprise, registry_uri=reprise)
        # Experiments, deleted ones too, ids unchanged.
        ea = sorted((e.experiment_id, e.name, e.lifecycle_stage, e.artifact_location, e.creation_time)
                    for e in ml.search_experiments(view_type=ViewType.ALL))
        eb = sorted((e.experiment_id, e.name, e.lifecycle_stage, e.artifact_location, e.creation_time)
                    for e in rp.search_experiments(view_type=ViewType.ALL))
        assert ea == eb
        assert rp.get_experiment(made["experiment_id"]).tags["team"] == "vision"

        exp = made["experiment_id"]
        for kwargs in (
            dict(filter_string="metrics.training_accuracy_score > 0", order_by=["params.C DESC"]),
            dict(filter_string="", order_by=["attributes.start_time ASC"]),
            dict(filter_string=f"tags.mlflow.parentRunId = '{made['parent']}'", order_by=["attributes.run_name ASC"]),
            dict(filter_string="", run_view_type=ViewType.ALL, order_by=["attributes.run_name DESC"]),
            dict(filter_string="dataset.name = 'iris'", order_by=["attributes.start_time DESC"]),
        ):
            _same_runs(ml.search_runs([exp], **kwargs), rp.search_runs([exp], **kwargs))
        assert len(ml.search_runs([exp], f"tags.mlflow.parentRunId = '{made['parent']}'")) == 3
        assert rp.get_run(made["deleted_run"]).info.lifecycle_stage == "deleted"

        # Every point of the long history, and NaN / ±inf as MLflow gives them.
        long_run = made["long_run"]
        history = _points(rp, long_run, "train_loss")
        assert len(history) == 100_000
        assert history == _points(ml, long_run, "train_loss")
        assert _points(rp, long_run, "odd") == _points(ml, long_run, "odd")

        # Artifacts: the same listing and bytes.
        # (`mlflow-artifacts:/` locations resolve against the global tracking URI, not the client's.)
        run = made["model_runs"][0]
        listings = []
        for url, c in ((mlflow_url, ml), (reprise, rp)):
            mlflow.set_tracking_uri(url)
            listings.append(sorted((f.path, f.is_dir, f.file_size) for f in c.list_artifacts(run)))
            listings.append(sorted((f.path, f.file_size) for f in c.list_artifacts(run, "model")))
        assert listings[0] == listings[2] and listings[1] == listings[3] and len(listings[1]) >= 3
        a = mlflow.artifacts.download_artifacts(run_id=run, artifact_path="notes/readme.txt", tracking_uri=mlflow_url,
                                                dst_path=str(tmp_path / "a"))
        b = mlflow.artifacts.download_artifacts(run_id=run, artifact_path="notes/readme.txt", tracking_uri=reprise,
                                                dst_path=str(tmp_path / "b"))
        assert Path(a).read_bytes() == Path(b).read_bytes() == b"notes for run 0\n"

        # The registry: versions, stages, tags, aliases, descriptions.
        def versions(c):
            found = c.search_model_versions("name = 'iris-classifier'")
            return sorted((v.version, v.current_stage, v.run_id, v.source, v.description, v.tags, v.status,
                           sorted(c.get_model_version("iris-classifier", v.version).aliases)) for v in found)
        assert versions(rp) == versions(ml)
        assert len(versions(ml)) == 2
        ma, mb = ml.get_registered_model("iris-classifier"), rp.get_registered_model("iris-classifier")
        assert mb.aliases == ma.aliases == {"champion": "1"} and mb.tags == ma.tags
        assert rp.get_model_version_by_alias("iris-classifier", "champion").run_id == made["model_runs"][0]

        # The model behind the alias loads and predicts the same.
        from sklearn.datasets import load_iris
        X, _ = load_iris(return_X_y=True, as_frame=True)
        predictions = []
        for url in (mlflow_url, reprise):
            mlflow.set_tracking_uri(url)
            predictions.append(list(mlflow.pyfunc.load_model("models:/iris-classifier@champion").predict(X)))
        assert predictions[0] == predictions[1]

        # The prompt came along with the registry.
        mlflow.set_tracking_uri(reprise)
        assert mlflow.genai.load_prompt("prompts:/summarize/1").template == "Summarize in one line: {{text}}"

        # The webhook, disabled until someone gives it a new secret.
        hooks = {h.webhook_id: h for h in rp.list_webhooks()}
        assert hooks[made["webhook_id"]].name == "deploy-hook" and str(hooks[made["webhook_id"]].status).endswith("DISABLED")

        # Provenance: reserved tags, passport gaps marked, audit events by `import`, a chain that verifies.
        tags = rp.get_run(long_run).data.tags
        assert tags["reprise.import.source"] == source
        missing = tags["reprise.import.passport_missing"].split(",")
        assert "environment" in missing and "seed" in missing and "owner" not in missing
        events = requests.get(f"{reprise}{G}/audit/events", params={"entity_type": "run", "entity_id": long_run}, timeout=30).json()["events"]
        assert [e["action"] for e in events] == ["import.run"] and events[0]["actor"] == "import"
        assert events[0]["summary"]["metric_points"] == 100_004
        assert requests.get(f"{reprise}{G}/audit/verify", timeout=60).json()["ok"] is True
        # A client cannot forge provenance.
        r = requests.post(f"{reprise}/api/2.0/mlflow/runs/set-tag", json={"run_id": long_run, "key": "reprise.import.source", "value": "x"},
                          timeout=30)
        assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"

        # New experiments do not take an imported id.
        new = rp.create_experiment("made-after-import")
        assert int(new) > max(int(e[0]) for e in ea)
    finally:
        mlflow.set_tracking_uri(previous)
        stop_server(reprise)

    # Again: nothing new, nothing duplicated.
    again = _import(args, target)
    assert again.returncode == 0, again.stdout + again.stderr
    runs_line = next(line for line in again.stdout.splitlines() if line.strip().startswith("runs "))
    assert runs_line.split()[1] == "0", again.stdout
    assert "Verification: passed" in again.stdout


def _mlflow_database_with_runs(path: Path, runs: int, points: int) -> None:
    """A database written by MLflow's own store: one run made through it, then cloned row by row inside
    MLflow's schema (to have many runs quickly)."""
    code = f"""
import sqlite3, sys, uuid
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
from mlflow.entities import Metric, Param, RunTag
s = SqlAlchemyStore('sqlite:///{path}', '{path.parent}/art')
exp = s.create_experiment('bulk')
run = s.create_run(exp, 'u', 0, [], 'seed-run')
s.log_batch(run.info.run_id, [Metric('m', i * 0.5, 1000 + i, i) for i in range({points})], [Param('lr', '0.1')], [RunTag('t', 'v')])
db = sqlite3.connect('{path}')
for n in range({runs} - 1):
    rid = uuid.uuid4().hex
    db.execute("INSERT INTO runs SELECT ?, name || ?, source_type, source_name, entry_point_name, user_id, status, start_time + ?, end_time, source_version, lifecycle_stage, replace(artifact_uri, run_uuid, ?), experiment_id, deleted_time FROM runs WHERE run_uuid = ?", (rid, str(n), n, rid, run.info.run_id))
    for t in ('params', 'tags', 'latest_metrics', 'metrics'):
        cols = [c[1] for c in db.execute(f'PRAGMA table_info({{t}})')]
        sel = ', '.join('?' if c == 'run_uuid' else c for c in cols)
        db.execute(f"INSERT INTO {{t}} ({{', '.join(cols)}}) SELECT {{sel}} FROM {{t}} WHERE run_uuid = ?", (rid, run.info.run_id))
db.commit()
"""
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=600)


def _count_runs(store: str, db_file: Path) -> int:
    if store.startswith("sqlite"):
        if not db_file.exists():
            return 0
        try:
            with sqlite3.connect(f"file:{db_file}?mode=ro", uri=True, timeout=5) as c:
                return c.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        except sqlite3.OperationalError:
            return 0
    p = subprocess.run(["psql", "-Atq", store, "-c", "SELECT COUNT(*) FROM runs"], capture_output=True, text=True)
    return int(p.stdout.strip() or 0) if p.returncode == 0 else 0


def test_an_interrupted_import_continues_without_duplicates(tmp_path):
    source = tmp_path / "mlflow.db"
    runs, points = 1500, 20
    _mlflow_database_with_runs(source, runs, points)
    target = tmp_path / "reprise"
    target.mkdir()
    store = _backend_store_uri(target)
    args = ["--from", f"sqlite:///{source}", "--to", store, "--batch-size", "1"]
    proc = subprocess.Popen([REPRISE_BIN, "import", "mlflow", *args], cwd=target, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while _count_runs(store, target / "reprise.db") < 50 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out + err
    assert "Run the same command again" in err, err
    partial = _count_runs(store, target / "reprise.db")
    assert 50 <= partial < runs

    again = _import(args, target)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "continued an interrupted import" in again.stdout
    assert "Verification: passed" in again.stdout, again.stdout
    check = [line for line in again.stdout.splitlines() if line.strip().startswith(("runs ", "metric points "))]
    counts = {line.split()[0]: line.split()[-2:] for line in check[-2:]}
    assert counts["runs"] == [str(runs), str(runs)] and counts["metric"] == [str(runs * points), str(runs * points)], again.stdout
    assert _count_runs(store, target / "reprise.db") == runs


def test_refuses_what_is_not_an_mlflow_database(tmp_path):
    plain = tmp_path / "plain.db"
    with sqlite3.connect(plain) as c:
        c.execute("CREATE TABLE t (x)")
    p = _import(["--from", f"sqlite:///{plain}", "--to", f"sqlite:///{tmp_path}/r.db"], tmp_path)
    assert p.returncode != 0 and "is not an MLflow tracking database" in p.stderr, p.stderr
    missing = _import(["--from", f"sqlite:///{tmp_path}/nope.db", "--to", f"sqlite:///{tmp_path}/r.db"], tmp_path)
    assert missing.returncode != 0 and "No database at" in missing.stderr
    assert not (tmp_path / "nope.db").exists()


SOURCE_POSTGRES_URL = COMPAT_POSTGRES_URL or os.environ.get("REPRISE_TEST_POSTGRES_URL", "")


@pytest.mark.skipif(not SOURCE_POSTGRES_URL, reason="needs the test command's PostgreSQL cluster (REPRISE_TEST_POSTGRES_URL)")
def test_import_an_mlflow_postgresql_database(tmp_path):
    """MLflow's own store code writes its schema and data into PostgreSQL; the import reads it there."""
    import hashlib
    name = "mlflow_src_" + hashlib.sha256(str(tmp_path).encode()).hexdigest()[:16]
    subprocess.run(["psql", "-q", SOURCE_POSTGRES_URL, "-c", f"CREATE DATABASE {name}"], check=True, capture_output=True)
    source = SOURCE_POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    code = """
import json, sys
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as Registry
from mlflow.entities import Metric, Param, RunTag
uri = sys.argv[1].replace('postgresql://', 'postgresql+psycopg2://')
s = SqlAlchemyStore(uri, sys.argv[2])
exp = s.create_experiment('pg-exp')
runs = []
for i in range(3):
    r = s.create_run(exp, 'ana', 1000 + i, [RunTag('mlflow.user', 'ana')], f'r{i}')
    s.log_batch(r.info.run_id, [Metric('acc', j / 10, 2000 + j, j) for j in range(50)] + [Metric('odd', float('nan'), 1, 0)],
                [Param('i', str(i))], [RunTag('kind', 'pg')])
    runs.append(r.info.run_id)
reg = Registry(uri)
reg.create_registered_model('pg-model')
reg.create_model_version('pg-model', 'runs:/' + runs[0] + '/model', runs[0])
reg.set_registered_model_alias('pg-model', 'prod', 1)
print(json.dumps({'experiment_id': exp, 'runs': runs}))
"""
    made = subprocess.run([sys.executable, "-c", code, source, str(tmp_path / "art")], capture_output=True, text=True, timeout=600)
    assert made.returncode == 0, made.stderr[-4000:]
    made = json.loads(made.stdout.strip().splitlines()[-1])

    target = tmp_path / "reprise"
    target.mkdir()
    store = _backend_store_uri(target)
    p = _import(["--from", source, "--to", store], target)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "Verification: passed" in p.stdout, p.stdout
    assert source.split("@")[-1] in p.stdout  # the source is named (without a password)
    reprise = start_server(target, backend_store_uri=store)
    try:
        rp = MlflowClient(reprise, registry_uri=reprise)
        found = rp.search_runs([made["experiment_id"]], "params.i = '1'")
        assert [r.info.run_id for r in found] == [made["runs"][1]]
        assert found[0].data.metrics["acc"] == 4.9 and math.isnan(found[0].data.metrics["odd"])
        assert len(rp.get_metric_history(made["runs"][2], "acc")) == 50
        assert rp.get_model_version_by_alias("pg-model", "prod").run_id == made["runs"][0]
    finally:
        stop_server(reprise)


MLFLOW2_PYTHON = os.environ.get("MLFLOW2_PYTHON", str(HERE / ".venv-mlflow2" / "bin" / "python"))


def test_import_a_database_mlflow_2_wrote(tmp_path):
    """An older store: MLflow 2.22 (from PyPI, in a venv of its own that scripts/test.sh makes) writes
    its schema and data; the import reads that schema (no logged models, no workspaces, no webhooks)."""
    assert os.access(MLFLOW2_PYTHON, os.X_OK), f"no MLflow 2.x venv at {MLFLOW2_PYTHON}: scripts/test.sh makes it"
    db = tmp_path / "mlflow2.db"
    code = """
import json, sys
import mlflow
assert mlflow.__version__.startswith('2.'), mlflow.__version__
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as Registry
from mlflow.entities import Metric, Param, RunTag, Dataset, DatasetInput, InputTag
uri = 'sqlite:///' + sys.argv[1]
s = SqlAlchemyStore(uri, sys.argv[2])
exp = s.create_experiment('from-mlflow-2', tags=[])
s.set_experiment_tag(exp, RunTag('era', 'two'))
runs = []
for i in range(4):
    r = s.create_run(exp, 'bo', 5000 + i, [RunTag('mlflow.user', 'bo'), RunTag('mlflow.source.git.commit', 'abc123')], f'v2-{i}')
    s.log_batch(r.info.run_id, [Metric('loss', 1.0 / (j + 1), 6000 + j, j) for j in range(300)] + [Metric('odd', float('nan'), 1, 0)],
                [Param('i', str(i))], [RunTag('gen', '2')])
    runs.append(r.info.run_id)
s.log_inputs(runs[0], [DatasetInput(Dataset('train', 'd1g3st', 'local', '{"uri": "/data/train.csv"}', None, None), [InputTag('mlflow.data.context', 'training')])])
s.delete_run(runs[3])
reg = Registry(uri)
reg.create_registered_model('old-model')
reg.create_model_version('old-model', sys.argv[2] + '/model', runs[0])
reg.create_model_version('old-model', sys.argv[2] + '/model2', runs[1])
reg.transition_model_version_stage('old-model', 2, 'Production', False)
reg.set_registered_model_alias('old-model', 'live', 2)
print(json.dumps({'experiment_id': exp, 'runs': runs, 'version': mlflow.__version__}))
"""
    made = subprocess.run([MLFLOW2_PYTHON, "-c", code, str(db), str(tmp_path / "art")], capture_output=True, text=True, timeout=600)
    assert made.returncode == 0, made.stderr[-4000:]
    made = json.loads(made.stdout.strip().splitlines()[-1])

    target = tmp_path / "reprise"
    target.mkdir()
    store = _backend_store_uri(target)
    p = _import(["--from", f"sqlite:///{db}", "--to", store], target)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "Verification: passed" in p.stdout, p.stdout
    reprise = start_server(target, backend_store_uri=store)
    try:
        rp = MlflowClient(reprise, registry_uri=reprise)
        assert rp.get_experiment(made["experiment_id"]).tags["era"] == "two"
        found = rp.search_runs([made["experiment_id"]], "metrics.loss < 0.5", order_by=["params.i ASC"])
        assert [r.info.run_id for r in found] == made["runs"][:3]
        assert len(rp.get_metric_history(made["runs"][1], "loss")) == 300
        assert rp.get_run(made["runs"][3]).info.lifecycle_stage == "deleted"
        inputs = rp.get_run(made["runs"][0]).inputs.dataset_inputs
        assert [(d.dataset.name, d.dataset.digest) for d in inputs] == [("train", "d1g3st")]
        v = rp.get_model_version_by_alias("old-model", "live")
        assert (v.version, v.current_stage, v.run_id) == ("2", "Production", made["runs"][1])
        # MLflow 2 recorded the commit and the user: those passport fields are not marked missing.
        missing = rp.get_run(made["runs"][0]).data.tags["reprise.import.passport_missing"].split(",")
        assert "code" not in missing and "owner" not in missing and "data" not in missing and "environment" in missing
    finally:
        stop_server(reprise)


def _dump(tables_dir: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(tables_dir.glob("*.jsonl"))}


def test_export_and_restore_round_trip(tmp_path):
    """`reprise export` then `reprise import reprise` into a new store (the other backend on the PostgreSQL
    pass: SQLite to PostgreSQL, the move the docs describe): the restored store exports byte-identical
    tables, its audit chain verifies, and what was governed stays governed."""
    a = tmp_path / "a"
    src = start_server(a, artifacts_destination=str(a / "artifacts"),
                       backend_store_uri=f"sqlite:///{a}/reprise.db", env_extra={"REPRISE_SECRET_KEY": ""})
    try:
        c = MlflowClient(src, registry_uri=src)
        exp = c.create_experiment("kept", tags={"t": "1"})
        ids = []
        for i in range(3):
            r = c.create_run(exp, run_name=f"r{i}", tags={"mlflow.user": "ana"})
            c.log_batch(r.info.run_id, metrics=[Metric("m", j * 0.25, 1000 + j, j) for j in range(2000)] +
                        [Metric("odd", float("nan"), 1, 0), Metric("big", float("inf"), 1, 0)],
                        params=[Param("i", str(i))])
            c.log_text(r.info.run_id, f"artifact {i}\n", "out/a.txt")
            c.set_terminated(r.info.run_id)
            ids.append(r.info.run_id)
        c.delete_run(ids[2])
        c.create_registered_model("m")
        c.create_model_version("m", f"runs:/{ids[0]}/out", ids[0])
        c.create_model_version("m", f"runs:/{ids[1]}/out", ids[1])
        c.set_registered_model_alias("m", "prod", "1")
        # Governance state: a protected alias.
        r = requests.put(f"{src}{G}/alias-policies", json={"model": "m", "alias": "prod", "required_approvals": 1, "approvers": ["bob"]},
                         timeout=30)
        assert r.status_code == 200, r.text
    finally:
        stop_server(src)

    export = tmp_path / "export.tar"
    p = subprocess.run([REPRISE_BIN, "export", "--backend-store-uri", f"sqlite:///{a}/reprise.db",
                        "--artifacts-destination", str(a / "artifacts"), "--to", str(export)],
                       cwd=a, capture_output=True, text=True, timeout=300, env=dict(os.environ, REPRISE_SECRET_KEY=""))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "reprise-secret.key" in p.stdout

    b = tmp_path / "b"
    b.mkdir()
    store = _backend_store_uri(b) if COMPAT_POSTGRES_URL else f"sqlite:///{b}/reprise.db"
    p = subprocess.run([REPRISE_BIN, "import", "reprise", "--from", str(export), "--to", store,
                        "--artifacts-destination", str(b / "artifacts")],
                       cwd=b, capture_output=True, text=True, timeout=300, env=dict(os.environ, REPRISE_SECRET_KEY=""))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "verified" in p.stdout

    # A second restore into the now-filled store is refused.
    again = subprocess.run([REPRISE_BIN, "import", "reprise", "--from", str(export), "--to", store],
                           cwd=b, capture_output=True, text=True, timeout=300, env=dict(os.environ, REPRISE_SECRET_KEY=""))
    assert again.returncode != 0 and "holds data already" in again.stderr

    # Export the restored store: byte-identical tables.
    p = subprocess.run([REPRISE_BIN, "export", "--backend-store-uri", store, "--artifacts-destination", str(b / "artifacts"),
                        "--to", str(tmp_path / "export2")],
                       cwd=b, capture_output=True, text=True, timeout=300, env=dict(os.environ, REPRISE_SECRET_KEY=""))
    assert p.returncode == 0, p.stdout + p.stderr
    first = tmp_path / "unpacked"
    first.mkdir()
    subprocess.run(["tar", "-xf", str(export), "-C", str(first)], check=True)
    assert _dump(first / "tables") == _dump(tmp_path / "export2" / "tables")
    assert len(_dump(first / "tables")["metrics.jsonl"].splitlines()) == 3 * 2002

    restored = start_server(b, backend_store_uri=store, artifacts_destination=str(b / "artifacts"), env_extra={"REPRISE_SECRET_KEY": ""})
    try:
        c = MlflowClient(restored, registry_uri=restored)
        assert len(c.get_metric_history(ids[1], "m")) == 2000
        assert math.isnan(c.get_run(ids[1]).data.metrics["odd"])
        assert c.get_run(ids[2]).info.lifecycle_stage == "deleted"
        assert c.get_model_version_by_alias("m", "prod").run_id == ids[0]
        # (set_tracking_uri also sets MLFLOW_TRACKING_URI: what was there before is put back.)
        previous = mlflow.get_tracking_uri()
        mlflow.set_tracking_uri(restored)
        try:
            path = mlflow.artifacts.download_artifacts(run_id=ids[0], artifact_path="out/a.txt", dst_path=str(tmp_path / "dl"))
        finally:
            mlflow.set_tracking_uri(previous)
        assert Path(path).read_text() == "artifact 0\n"
        assert requests.get(f"{restored}{G}/audit/verify", timeout=60).json()["ok"] is True
        # Still governed: moving the protected alias needs an approval.
        r = requests.post(f"{restored}/api/2.0/mlflow/registered-models/alias", json={"name": "m", "alias": "prod", "version": "2"}, timeout=30)
        assert r.status_code >= 400, r.text
        assert c.get_model_version_by_alias("m", "prod").version == "1"
        # New ids continue after the restored ones.
        assert int(c.create_experiment("after-restore")) > int(exp)
    finally:
        stop_server(restored)


def test_import_artifacts_from_a_bucket_into_a_bucket(mlflow_source, tmp_path, moto_s3):
    """MLflow that kept its proxied artifacts in S3 (the same layout, in a bucket: moto, signatures
    checked), imported into a Reprise that keeps its own in S3: every file copied and checked by
    SHA-256, served by Reprise afterwards, and a second import copies nothing again."""
    mlflow_url, data, made = mlflow_source
    s3 = moto_s3.client()
    prefix = "import-" + os.urandom(4).hex()
    uploaded = 0
    for f in sorted((data / "artifacts").rglob("*")):
        if f.is_file():
            s3.upload_file(str(f), moto_s3.bucket, f"{prefix}/mlflow/{f.relative_to(data / 'artifacts')}")
            uploaded += 1
    target = tmp_path / "reprise"
    target.mkdir()
    store = _backend_store_uri(target)
    destination = f"s3://{moto_s3.bucket}/{prefix}/reprise"
    args = ["--from", f"sqlite:///{data}/mlflow.db", "--to", store, "--artifacts", f"s3://{moto_s3.bucket}/{prefix}/mlflow",
            "--artifacts-destination", destination]
    env = dict(os.environ, **moto_s3.env)
    p = _import(args, target, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "Verification: passed" in p.stdout and "SHA-256 identical" in p.stdout, p.stdout
    assert f"artifacts: {uploaded} files" in p.stdout, p.stdout
    copied = s3.list_objects_v2(Bucket=moto_s3.bucket, Prefix=f"{prefix}/reprise/")["KeyCount"]
    assert copied == uploaded

    again = _import(args, target, env=env)
    assert again.returncode == 0 and f"({uploaded} already there)" in again.stdout, again.stdout

    reprise = start_server(target, backend_store_uri=store, artifacts_destination=destination, env_extra=moto_s3.env)
    uri = mlflow.get_tracking_uri()
    try:
        mlflow.set_tracking_uri(reprise)
        path = mlflow.artifacts.download_artifacts(run_id=made["model_runs"][1], artifact_path="notes/readme.txt",
                                                   dst_path=str(tmp_path / "dl"))
        assert Path(path).read_bytes() == b"notes for run 1\n"
    finally:
        mlflow.set_tracking_uri(uri)
        stop_server(reprise)


def test_restore_refuses_a_tampered_export(tmp_path):
    """What `import reprise` reads is checked before anything is written: a table file that was
    changed, a manifest naming a file outside the export or a column the store does not have (the
    names go into SQL), an artifact path that leaves the folder."""
    a = tmp_path / "a"
    src = start_server(a, backend_store_uri=f"sqlite:///{a}/reprise.db", artifacts_destination=str(a / "artifacts"))
    try:
        c = MlflowClient(src)
        r = c.create_run(c.create_experiment("e"))
        c.log_param(r.info.run_id, "p", "1")
        c.log_text(r.info.run_id, "x", "f.txt")
    finally:
        stop_server(src)
    export = tmp_path / "export"
    p = subprocess.run([REPRISE_BIN, "export", "--backend-store-uri", f"sqlite:///{a}/reprise.db", "--artifacts-destination",
                        str(a / "artifacts"), "--to", str(export)], cwd=a, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert (export.stat().st_mode & 0o777) == 0o700
    manifest = json.loads((export / "manifest.json").read_text())

    def restore(changed: dict | None = None, edit=None) -> subprocess.CompletedProcess:
        import copy
        import shutil
        d = tmp_path / ("t" + os.urandom(4).hex())
        shutil.copytree(export, d / "export")
        m = copy.deepcopy(manifest)
        if changed:
            changed(m)
        (d / "export" / "manifest.json").write_text(json.dumps(m))
        if edit:
            edit(d / "export")
        return subprocess.run([REPRISE_BIN, "import", "reprise", "--from", str(d / "export"), "--to", f"sqlite:///{d}/r.db",
                               "--artifacts-destination", str(d / "art")], cwd=d, capture_output=True, text=True, timeout=300)

    def params_file(e):
        f = e / "tables" / "params.jsonl"
        f.write_text(f.read_text().replace('"1"', '"2"'))
    p = restore(edit=params_file)
    assert p.returncode != 0 and "does not match the manifest's SHA-256" in p.stderr and "Nothing was written" in p.stderr, p.stderr

    def outside(m):
        m["tables"]["params"]["file"] = "../../etc/passwd"
    p = restore(outside)
    assert p.returncode != 0 and "not one of a Reprise export" in p.stderr, p.stderr

    def injected(m):
        m["tables"]["params"]["columns"].append("value) SELECT 1, 2, 3 --")
    p = restore(injected)
    assert p.returncode != 0 and "are not this store's" in p.stderr, p.stderr

    def dot_path(m):
        m["artifacts"].append({"path": ".", "size": 0, "sha256": "0" * 64})
    p = restore(dot_path)
    assert p.returncode != 0 and "artifact path" in p.stderr, p.stderr

    ok = restore()
    assert ok.returncode == 0, ok.stderr
