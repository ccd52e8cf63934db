"""Shared fixtures: a server app on a fresh SQLite database, clients per project, and a live server for CLIs."""
from __future__ import annotations

import os
import socket
import threading
import time
import uuid

import pytest
import uvicorn
from fastapi.testclient import TestClient

from neutrino.api.app import create_app
from neutrino.config import Settings
from neutrino.db.engine import Database

KERNEL_SUITES = ("functional", "fullstack", "acceptance")
OPT_IN = "opt-in:"          # a skip reason starting so is a benchmark run only on request, never a missed test
_kernel_skips: list[str] = []


def _kernel_skip(report) -> None:
    """As root a kernel test has all it needs (scripts/setup.sh installs it): a skip there hides a missing program
    or a broken fixture, so it is remembered and fails the run (pytest_sessionfinish)."""
    if os.geteuid() != 0 or not report.skipped or hasattr(report, "wasxfail"):
        return
    path = report.nodeid.split("::")[0].split("/")
    if path[:1] != ["tests"] or len(path) < 3 or path[1] not in KERNEL_SUITES:
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if not reason.removeprefix("Skipped: ").startswith(OPT_IN):
        _kernel_skips.append(f"{report.nodeid}: {reason}")


def pytest_collectreport(report):
    _kernel_skip(report)


def pytest_runtest_logreport(report):
    _kernel_skip(report)


def pytest_sessionfinish(session, exitstatus):
    if _kernel_skips and exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter):
    if _kernel_skips:
        terminalreporter.section("kernel tests skipped as root (a failure)")
        for line in _kernel_skips:
            terminalreporter.write_line(line)


@pytest.fixture
def db_url(tmp_path):
    """SQLite in the test's directory, or (NEUTRINO_TEST_PG_URL set) a fresh PostgreSQL database per test."""
    admin_url = os.environ.get("NEUTRINO_TEST_PG_URL")
    if not admin_url:
        yield f"sqlite:///{tmp_path}/neutrino.db"
        return
    from sqlalchemy import create_engine, make_url, text
    name = f"nt_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f"CREATE DATABASE {name}"))
    yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as c:
        c.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


@pytest.fixture
def app(tmp_path, db_url):
    settings = Settings(state_dir=str(tmp_path), auth="noauth", admin_token="admintoken")
    db = Database(db_url)
    db.setup()
    yield create_app(settings, db)
    db.engine.dispose()


@pytest.fixture
def client(app):
    """Admin client (noauth, no project header = admin in project 'admin')."""
    with TestClient(app) as c:
        yield c


@pytest.fixture
def project_client(app):
    """project_client('p1') -> a client acting as a member of project p1."""
    clients = []

    def make(project: str, roles: str = "member,reader"):
        c = TestClient(app, headers={"X-Project-Id": project, "X-Roles": roles})
        c.__enter__()
        clients.append(c)
        return c
    yield make
    for c in clients:
        c.__exit__(None, None, None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_server(app):
    """The app served by uvicorn on a free loopback port, for the real openstack CLI and SDK."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 10
    while not server.started and time.time() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(5)
