"""A private PostgreSQL cluster in a directory (Debian's binaries), for a lab of several servers on one database.

The cluster lives in DIR/data and listens only on a Unix socket in DIR/run (no TCP), trusting local connections:
only root and the postgres user can reach a socket in a directory that postgres owns with mode 0700. It is a lab's
throwaway database, so it runs without fsync. Every step is
idempotent: `ensure` makes the cluster once, `start` finds a running postmaster, `stop` of a stopped one succeeds.
"""
from __future__ import annotations

import os
import pwd

from neutrino.errors import NeutrinoError
from neutrino.lib import proc

USER = "postgres"
DATABASE = "neutrino"


class PostgresError(NeutrinoError):
    """Debian's PostgreSQL is missing or the cluster could not be made or started."""


def bindir() -> str:
    root = "/usr/lib/postgresql"
    try:
        versions = sorted(os.listdir(root), key=lambda v: float(v) if v.replace(".", "").isdigit() else 0)
    except FileNotFoundError:
        versions = []
    if not versions:
        raise PostgresError("PostgreSQL is not installed (apt-get install postgresql)")
    return os.path.join(root, versions[-1], "bin")


def url(directory: str) -> str:
    """The SQLAlchemy URL of the cluster's neutrino database, over its Unix socket."""
    return f"postgresql://{USER}@/{DATABASE}?host={os.path.join(os.path.abspath(directory), 'run')}"


def _as_postgres(argv: list[str], **kw):
    return proc.run(["runuser", "-u", USER, "--", *argv], **kw)


def _traversable(path: str) -> None:
    """The postgres user must reach DIR: add search (not read) permission for others on each private parent."""
    path = os.path.abspath(path)
    while path != "/":
        mode = os.stat(path).st_mode
        if not mode & 0o001:
            os.chmod(path, (mode & 0o7777) | 0o001)
        path = os.path.dirname(path)


def ensure(directory: str) -> None:
    """The cluster exists in DIR/data (initdb once)."""
    data, run = os.path.join(directory, "data"), os.path.join(directory, "run")
    uid = pwd.getpwnam(USER)
    os.makedirs(directory, exist_ok=True)
    _traversable(directory)
    for d in (directory, run):
        os.makedirs(d, mode=0o700, exist_ok=True)
        os.chown(d, uid.pw_uid, uid.pw_gid)
    if not os.path.exists(os.path.join(data, "PG_VERSION")):
        _as_postgres([os.path.join(bindir(), "initdb"), "-D", data, "-U", USER, "-A", "trust", "-E", "UTF8",
                      "--no-sync"], timeout=120)


def pid(directory: str) -> int | None:
    """The postmaster's pid when it runs (from its own pid file)."""
    return proc.read_pidfile(os.path.join(directory, "data", "postmaster.pid"))


def start(directory: str) -> int:
    """Start the cluster unless it runs, wait until it accepts connections, create the database; its pid."""
    ensure(directory)
    data, run = os.path.join(directory, "data"), os.path.join(directory, "run")
    if pid(directory) is None:
        options = f"-c listen_addresses='' -c unix_socket_directories='{run}' -c max_connections=400 " \
                  "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=128MB"
        _as_postgres([os.path.join(bindir(), "pg_ctl"), "-D", data, "-l", os.path.join(directory, "postgres.log"),
                      "-o", options, "-w", "-t", "60", "start"], timeout=90)
    psql = [os.path.join(bindir(), "psql"), "-h", run, "-U", USER, "-d", "postgres", "-qtAc"]
    if _as_postgres(psql + [f"SELECT 1 FROM pg_database WHERE datname='{DATABASE}'"]).stdout.strip() != "1":
        _as_postgres(psql + [f"CREATE DATABASE {DATABASE}"])
    found = pid(directory)
    if found is None:
        raise PostgresError(f"PostgreSQL did not start (log: {os.path.join(directory, 'postgres.log')})")
    return found


def stop(directory: str) -> None:
    """Stop the cluster (fast shutdown) if it runs."""
    if pid(directory) is not None:
        _as_postgres([os.path.join(bindir(), "pg_ctl"), "-D", os.path.join(directory, "data"), "-m", "fast", "-w",
                      "stop"], timeout=60)
