"""Fixtures: a database per backend (SQLite file, fresh PostgreSQL database) and a real app
server process (`python -m app`) whose native model backend is the stand-in server."""
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.support.embedding import EMBEDDING_CACHE_DIR

REPO = Path(__file__).resolve().parents[2]
STAND_IN = Path(__file__).with_name("stand_in_model_server.py")
DATABASES = ["sqlite", "postgresql"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def fresh_postgres_database(prefix: str) -> Iterator[str]:
    """The URL of a new database on the server at TEST_DATABASE_URL, dropped afterwards (skips
    the test when the variable is not set)."""
    admin_url = os.environ.get("TEST_DATABASE_URL")
    if not admin_url:
        pytest.skip("TEST_DATABASE_URL is not set (CI sets it to a running PostgreSQL server)")
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="module", params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A SQLite file URL, or a fresh database on the server at TEST_DATABASE_URL (dropped after)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'app.db'}"
        return
    with fresh_postgres_database("app_test") as url:
        yield url


@dataclass
class AppServer:
    url: str
    admin_key: str
    database_url: str
    process: subprocess.Popen
    log_path: Path
    settings_env: dict[str, str]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log_records(self, match: Callable[[dict], bool], timeout: float = 10.0) -> list[dict]:
        """JSON log records for which `match` holds, polled until one shows up: the access log
        line is written after the response has gone out, so it can trail the client's read."""
        deadline = time.monotonic() + timeout
        while True:
            records = [json.loads(line) for line in self.log().splitlines() if line.startswith("{")]
            hits = [r for r in records if match(r)]
            if hits or time.monotonic() > deadline:
                return hits
            time.sleep(0.05)


LIMITS = {"MAX_UPLOAD_BYTES": "200000", "MAX_BODY_BYTES": "20000", "RATE_LIMIT_PER_MINUTE": "40"}


def start_app(tmp: Path, database_url: str, extra_env: dict[str, str | None], wait_model: bool = True,
              timeout_s: float = 90.0) -> AppServer:
    """Start `python -m app` and wait until /health answers (and the model is ready if asked).
    A None in `extra_env` removes that setting (the app's default applies)."""
    port = free_port()
    admin_key = "test-admin-" + secrets.token_hex(16)
    settings_env = {
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "VAR_DIR": str(tmp / "var"),
        "EMBEDDING_CACHE_DIR": str(EMBEDDING_CACHE_DIR),
        "DATABASE_URL": database_url,
        "APP_ADMIN_KEY": admin_key,
        "MODEL_BACKEND": "native",
        "MODEL_NAME": "stand-in",
        "MODEL_COMMAND": f"{{python}} {STAND_IN} --port {{port}} --name {{name}}",
        "MODEL_HEALTH_INTERVAL_S": "0.5",
        **LIMITS,
        **extra_env,
    }
    settings_env = {k: v for k, v in settings_env.items() if v is not None}
    env = {**os.environ, **settings_env}
    log_path = tmp / "app.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "app"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = AppServer(f"http://127.0.0.1:{port}", admin_key, database_url, proc, log_path, settings_env)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"app exited with {proc.returncode}:\n{server.log()}")
        try:
            health = httpx.get(f"{server.url}/health", timeout=2).json()
            if not wait_model or health["model"]["state"] == "ready":
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    stop_app(server)
    raise AssertionError(f"app not ready within {timeout_s:g} s:\n{server.log()}")


def stop_app(server: AppServer) -> None:
    server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture(scope="module")
def app_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    server = start_app(tmp_path_factory.mktemp("app"), database_url, {})
    yield server
    stop_app(server)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def new_user(server: AppServer, name_prefix: str = "user") -> str:
    """Create a user through the admin API; return its key."""
    resp = httpx.post(
        f"{server.url}/api/users", json={"name": f"{name_prefix}-{secrets.token_hex(4)}"}, headers=auth(server.admin_key)
    )
    assert resp.status_code == 201, resp.text
    return resp.json()["api_key"]
