"""Engine and transactions: SQLite (WAL) embedded by default, PostgreSQL by URL; schema by Alembic migrations."""
from __future__ import annotations

import os
import time
from contextlib import contextmanager
from importlib import resources

import orjson
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session


def sqlite_url(state_dir: str) -> str:
    return f"sqlite:///{os.path.join(state_dir, 'neutrino.db')}"


def _json_dumps(value) -> str:
    return orjson.dumps(value).decode()


def make_engine(url: str) -> Engine:
    """JSON columns go through orjson: listing 1000 ports decodes 4000 of them."""
    json_kw = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **json_kw)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # noqa: ANN001 - DB-API connection
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True, **json_kw)


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to the newest (or the given) Alembic revision (the only way tables are made)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("neutrino.db") / "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


class Database:
    """Owns the engine; `tx()` is one transaction, retried when a concurrent writer won a unique race."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)

    def setup(self) -> None:
        migrate(self.engine)

    @contextmanager
    def session(self):
        with Session(self.engine) as s, s.begin():
            yield s

    def run(self, fn, *args, retries: int = 8, **kw):
        """Run fn(session, ...) in one transaction; retry on IntegrityError/lock errors from concurrent writers."""
        for attempt in range(retries):
            try:
                with self.session() as s:
                    return fn(s, *args, **kw)
            except (IntegrityError, OperationalError) as e:
                if attempt == retries - 1 or not _retryable(e):
                    raise
                time.sleep(0.005 * (attempt + 1))

    def ping(self) -> None:
        with self.engine.connect() as c:
            c.execute(text("SELECT 1"))


def _retryable(e: Exception) -> bool:
    msg = str(getattr(e, "orig", e)).lower()
    return any(k in msg for k in ("unique", "duplicate", "locked", "deadlock", "could not serialize"))
