"""Engine and transactions: SQLite (WAL) embedded by default, PostgreSQL by URL; schema by Alembic migrations."""
from __future__ import annotations

import asyncio
import contextvars
import functools
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from importlib import resources
from typing import Callable

import orjson
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from neutrino.errors import DeadlineExceeded

# time.monotonic() by which the current request's database work must be done (set by the API's request middleware)
DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("neutrino_deadline", default=None)
PROGRESS_STEPS = 100000     # SQLite VM instructions between two deadline checks


def _json_dumps(value) -> str:
    return orjson.dumps(value).decode()


def make_engine(url: str) -> Engine:
    """JSON columns go through orjson: listing 1000 ports decodes 4000 of them."""
    json_kw = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}
    if url.startswith("sqlite"):
        # each reader thread holds one connection for lean reads (Database.session): room for them and the rest
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=16,
                               max_overflow=16, **json_kw)

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
    # no pre-ping: it costs a round trip per transaction; a connection the database dropped (restart) raises a
    # disconnect error instead, SQLAlchemy invalidates it and Database.run retries on a fresh one
    return create_engine(url, pool_size=10, max_overflow=20, **json_kw)


SETUP_LOCK = 0x6E657574      # PostgreSQL advisory lock key ("neut") held while migrating or bootstrapping


def serialize_setup(conn) -> None:
    """Hold the setup lock until this transaction (a Connection's or a Session's) ends — PostgreSQL only: SQLite
    serializes its writers anyway — so servers starting at once on one database migrate and bootstrap in turn."""
    dialect = conn.dialect if isinstance(conn, Connection) else conn.get_bind().dialect
    if dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SETUP_LOCK})


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to the newest (or the given) Alembic revision (the only way tables are made). Several
    servers may start at once on one PostgreSQL: each migrates under a transaction-scoped advisory lock, so one runs
    the migrations and the others, once it committed, find the schema at head and do nothing."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("neutrino.db") / "migrations"))
    with engine.begin() as conn:
        serialize_setup(conn)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


class CoreSession(Session):
    """A Session whose Core statements (nearly every statement of the service) go straight to its connection: the
    ORM's execute path costs a third more per statement, and a request runs about ten. `observe(seconds)` is told
    each statement's time (the query-time metric: cheaper here than SQLAlchemy's cursor events, 7 us a statement)."""

    observe: Callable[[float], None] | None = None

    def execute(self, statement, params=None, **kw):
        t0 = time.perf_counter()
        try:
            if kw or statement._propagate_attrs:         # ORM statements and execution options take the ORM's path
                return super().execute(statement, params, **kw)
            return self.connection().execute(statement, params)
        finally:
            if self.observe is not None:
                self.observe(time.perf_counter() - t0)


class LeanSession:
    """What the collections' reads use of a Session (execute, info, connection), on a connection the reader thread
    keeps: a Session costs 60 us to open and close, more than reading a port. SQLite only: its reads take no
    snapshot across statements under a Session either (pysqlite begins a transaction only before a write)."""

    observe: Callable[[float], None] | None = None

    def __init__(self, conn: Connection):
        self._conn = conn
        self.info: dict = {}

    def execute(self, statement, params=None):
        t0 = time.perf_counter()
        try:
            return self._conn.execute(statement, params)
        finally:
            if self.observe is not None:
                self.observe(time.perf_counter() - t0)

    def connection(self) -> Connection:
        return self._conn


class Database:
    """Owns the engine; `run()` is one transaction, retried when a concurrent writer won a unique race; `call()` is
    the same on a worker thread, so the API's event loop never waits for the database."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self.sqlite = url.startswith("sqlite")
        self.readers = ThreadPoolExecutor(8, thread_name_prefix="db-read")
        # SQLite has one writer at a time: queueing writes on one thread beats failing lock upgrades and retrying
        self.writers = ThreadPoolExecutor(1 if self.sqlite else 8, thread_name_prefix="db-write")
        # a thread's connections for lean reads (SQLite): .conn (reader threads), .here (the event loop's, read_here)
        self._held = threading.local()
        self.observe_query: Callable[[float], None] | None = None     # told each statement's time (metrics)

    def setup(self) -> None:
        migrate(self.engine)

    @contextmanager
    def _lean(self, here: bool):
        name = "here" if here else "conn"
        conn = getattr(self._held, name, None)
        if conn is None or conn.closed or conn.invalidated:
            conn = self.engine.connect()
            if here:
                conn.exec_driver_sql("PRAGMA busy_timeout = 0")     # the event loop never waits for a lock
            setattr(self._held, name, conn)
        try:
            yield LeanSession(conn)
        except BaseException:
            conn.rollback()
            raise
        conn.commit()

    @contextmanager
    def session(self, write: bool = False, lean: bool = False, here: bool = False):
        """One transaction. `lean` (reads of Core statements only, on SQLite): a LeanSession on this thread's own
        connection instead of a Session (`here`: the event loop's connection, see read_here)."""
        lean = lean and self.sqlite and not write
        with (self._lean(here) if lean else CoreSession(self.engine)) as s, (nullcontext() if lean else s.begin()):
            s.observe = self.observe_query
            if write and self.sqlite:
                # take the write lock now, waiting for it (busy timeout), instead of at the first write: a deferred
                # transaction whose snapshot another process's commit made stale cannot upgrade and fails at once
                # (the workers of `neutrino server --workers N` share the file)
                s.connection().exec_driver_sql("BEGIN IMMEDIATE")
            deadline = DEADLINE.get()
            if deadline is None or not self.sqlite:
                yield s
                return
            raw = s.connection().connection.dbapi_connection
            raw.set_progress_handler(lambda: time.monotonic() > deadline, PROGRESS_STEPS)
            try:
                yield s
            finally:
                raw.set_progress_handler(None, 0)

    def run(self, fn, *args, retries: int = 8, write: bool = False, lean: bool = False, here: bool = False, **kw):
        """Run fn(session, ...) in one transaction (`write`: one that writes, on SQLite holding the write lock from
        its start), then the functions fn put in session.info["after_commit"]; retry on IntegrityError/lock errors
        from concurrent writers and on a connection the database dropped. Past the request's deadline the
        transaction is interrupted and rolled back (503)."""
        deadline = DEADLINE.get()
        for attempt in range(retries):
            if deadline is not None and time.monotonic() > deadline:
                raise DeadlineExceeded("The request exceeded the server's deadline; nothing was changed.")
            try:
                with self.session(write, lean, here) as s:
                    out = fn(s, *args, **kw)
                for hook in s.info.get("after_commit", ()):
                    hook()
                return out
            except (IntegrityError, OperationalError) as e:
                if "interrupted" in str(getattr(e, "orig", e)):
                    raise DeadlineExceeded("The request exceeded the server's deadline; nothing was changed.") \
                        from None
                if attempt == retries - 1 or not _retryable(e):
                    raise
                time.sleep(random.uniform(0, 0.01 * (attempt + 1)))   # jitter: racers must not meet again

    async def call(self, fn, *args, write: bool = False, lean: bool = False):
        """run(fn, *args) on a worker thread (writes on the writer thread), with the caller's context (deadline)."""
        pool = self.writers if write else self.readers
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(pool, functools.partial(context.run, self.run, fn,
                                                                                        *args, write=write,
                                                                                        lean=lean))

    async def read_here(self, fn, *args):
        """A lean read of a few rows (one resource): on SQLite, on the calling thread (the event loop), which costs
        less than the hop to a reader thread. Its connection waits for no lock: a WAL reader is refused only in rare
        moments (recovery, a WAL reset), and then the read goes to a reader thread as any other."""
        if self.sqlite:
            try:
                return self.run(fn, *args, lean=True, here=True, retries=1)
            except OperationalError as e:
                if not _busy(e):
                    raise
        return await self.call(fn, *args, lean=True)

    def ping(self) -> None:
        with self.engine.connect() as c:
            c.execute(text("SELECT 1"))


def _busy(e: Exception) -> bool:
    msg = str(getattr(e, "orig", e)).lower()
    return "locked" in msg or "busy" in msg


def _retryable(e: Exception) -> bool:
    if getattr(e, "connection_invalidated", False):
        return True
    msg = str(getattr(e, "orig", e)).lower()
    return any(k in msg for k in ("unique", "duplicate", "locked", "deadlock", "could not serialize"))
