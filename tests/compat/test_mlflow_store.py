"""A database MLflow made, handed to `reprise server`: it stops before changing anything and names the
`reprise import mlflow` command that brings it in, instead of failing half-way through its own schema."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest

from conftest import COMPAT_POSTGRES_URL, REPRISE_BIN, free_port


def _mlflow_database(path) -> None:
    """MLflow's own schema, made by MLflow (its SQLAlchemy store runs its alembic migrations), with
    an experiment in it, in a separate process so this one's tracking state is untouched."""
    code = (
        "import sys\n"
        "from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore\n"
        "s = SqlAlchemyStore('sqlite:///' + sys.argv[1], sys.argv[2])\n"
        "s.create_experiment('made-by-mlflow')\n"
    )
    subprocess.run([sys.executable, "-c", code, str(path), str(path.parent / "mlartifacts")], check=True, capture_output=True, timeout=300)


@pytest.mark.reprise_only
@pytest.mark.skipif(bool(COMPAT_POSTGRES_URL), reason="an MLflow SQLite file; the PostgreSQL case is the Swift MLflowDatabaseTests")
def test_server_refuses_an_mlflow_database_without_touching_it(tmp_path):
    db = tmp_path / "mlflow.db"
    _mlflow_database(db)
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    env = dict(os.environ)
    env.pop("REPRISE_SECRET_KEY", None)
    p = subprocess.run(
        [REPRISE_BIN, "server", "--port", str(free_port()), "--backend-store-uri", f"sqlite:///{db}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    assert "made by MLflow" in p.stderr and "alembic_version" in p.stderr and "--backend-store-uri sqlite:///reprise.db" in p.stderr, p.stderr
    assert f"reprise import mlflow --from sqlite:///{db}" in p.stderr, p.stderr
    assert "already exists" not in p.stderr, p.stderr
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    assert not (tmp_path / "mlflow.db-wal").exists() and not (tmp_path / "reprise-secret.key").exists()
