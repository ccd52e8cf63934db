"""How a server process hears the commits of the others: PostgreSQL LISTEN/NOTIFY between servers (and workers), and
datagrams between the workers of one server on SQLite.

A write transaction sends `pg_notify(CHANNEL, payload)`; PostgreSQL delivers it at commit, in commit order, to every
connection LISTENing on the channel. Each server keeps one such connection in a thread (started by the first agent
watch) that hands each payload to its hub on the event loop. When the connection is lost the hub is reset (changes
may have been missed: every watch re-checks) and the thread reconnects; until then watches poll the revision.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time


from neutrino.db.models import Meta

LOG = logging.getLogger(__name__)
CHANNEL = "neutrino_changes"
ALL = "*"                 # in a payload: every agent
MAX_PAYLOAD = 7900        # NOTIFY payloads are capped at 8000 bytes: more keys than fit mean "everything"
Keys = frozenset[str] | None    # what a change names; None: the change may touch every view
RECONNECT = 0.5         # seconds between attempts to reconnect the LISTEN connection
_REVISION = f"SELECT revision FROM {Meta.__tablename__} WHERE id = 1"
# Bump (making the row on first use) and NOTIFY in one statement; psycopg's own placeholders: it is sent raw, below.
_BUMP_NOTIFY = (f"WITH r AS (INSERT INTO {Meta.__tablename__} (id, revision) VALUES (1, 1) ON CONFLICT (id) DO UPDATE "
                f"SET revision = {Meta.__tablename__}.revision + 1 RETURNING revision) "
                "SELECT revision, pg_notify(%(channel)s, revision || ' ' || %(names)s) FROM r")


def is_postgres(s) -> bool:
    return s.get_bind().dialect.name == "postgresql"


def bump_send_and_commit(s, keys: Keys) -> int:
    """End the write transaction: bump the global revision, NOTIFY the change (delivered at commit) and commit; the
    new revision. The revision's row lock serializes every write of every server from the bump to the commit, so
    both go in one pipeline: the database commits right after the bump instead of waiting for this process to be
    scheduled again and take the GIL to send the COMMIT (with the cores busy, writers queued 25 deep behind that
    wait, for up to 1.5 s). The session's own commit then finds nothing left to do."""
    import psycopg
    from sqlalchemy.exc import DBAPIError
    raw = s.connection().connection.dbapi_connection
    params = {"channel": CHANNEL, "names": _names(keys, MAX_PAYLOAD - 21)}
    try:
        with raw.pipeline():
            cur = raw.execute(_BUMP_NOTIFY, params)
            raw.commit()
        rev = s.info["bumped"] = cur.fetchone()[0]
        return rev
    except psycopg.Error as e:        # as SQLAlchemy raises it, so db.run retries or answers 503 as for any statement
        raise DBAPIError.instance(_BUMP_NOTIFY, params, e, psycopg.Error, connection_invalidated=raw.broken) from e


def _names(keys: Keys, room: int) -> str:
    out = ALL if keys is None else " ".join(sorted(keys))
    return out if len(out) <= room else ALL


def payload(revision: int, keys: Keys) -> str:
    """The NOTIFY payload of a change: "REV key key ..." or "REV *"."""
    rev = f"{revision} "
    return rev + _names(keys, MAX_PAYLOAD - len(rev))


def parse(message: str) -> tuple[int, Keys]:
    rev, _, rest = message.partition(" ")
    keys = rest.split()
    return int(rev), (None if ALL in keys else frozenset(keys))


def committed(app, change) -> None:
    """After a commit: wake this process's watches and page streams, and tell the sibling workers (SQLite has no
    NOTIFY)."""
    app.changes.publish(*change)
    app.notify()
    siblings = getattr(app, "siblings", None)
    if siblings is not None and app.db.engine.dialect.name != "postgresql":
        siblings.send(payload(*change))


def listen(app) -> None:
    """Start hearing other processes' commits, once, from the event loop (the first watch calls it): on PostgreSQL
    a LISTEN thread; on SQLite every commit is this process's or a sibling worker's (read from their datagrams)."""
    hub = app.changes
    if hub.listener is not None:
        return
    loop = asyncio.get_running_loop()
    if app.db.engine.dialect.name != "postgresql":
        hub.listener = getattr(app, "siblings", None) or True
        if hub.listener is not True:
            hub.listener.attach(loop, hub)
        hub.listening = True
        return
    url = app.db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    hub.listener = threading.Thread(target=_run, args=(url, hub, loop), name="pg-listen", daemon=True)
    hub.listener.start()


class Siblings:
    """Datagram sockets between the worker processes of one server (`neutrino server --workers N`), one per worker
    in a directory: a worker sends each change it commits to the others' sockets."""

    def __init__(self, directory: str, index: int):
        self.directory = directory
        self.path = os.path.join(directory, f"{index}.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setblocking(False)

    def send(self, text: str) -> None:
        data = text.encode()
        for name in os.listdir(self.directory):
            peer = os.path.join(self.directory, name)
            if peer != self.path:
                try:
                    self.sock.sendto(data, peer)
                except OSError:          # a worker gone or its queue full: its watches re-check on their own
                    pass

    def attach(self, loop: asyncio.AbstractEventLoop, hub) -> None:

        def read() -> None:
            while True:
                try:
                    data = self.sock.recv(65536)
                except BlockingIOError:
                    return
                hub.publish(*parse(data.decode()))
        loop.add_reader(self.sock.fileno(), read)


def _run(url: str, hub, loop: asyncio.AbstractEventLoop) -> None:
    import psycopg


    def on_loop(fn, *args):
        loop.call_soon_threadsafe(fn, *args)

    while not loop.is_closed():
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f"LISTEN {CHANNEL}")
                row = conn.execute(_REVISION).fetchone()     # after LISTEN: every later commit is NOTIFYed
                on_loop(_connected, hub, True, row[0] if row else 0)
                for n in conn.notifies():
                    on_loop(hub.publish, *parse(n.payload))
        except (psycopg.Error, OSError) as e:
            LOG.warning("LISTEN %s lost (%s); reconnecting", CHANNEL, e)
        except RuntimeError:        # the loop closed under us: the server is stopping
            return
        try:
            on_loop(_connected, hub, False)
        except RuntimeError:
            return
        time.sleep(RECONNECT)


def _connected(hub, up: bool, revision: int = 0) -> None:
    """The LISTEN connection came up (from the database's `revision`: the hub hears every commit after it) or
    went down (watches read the revision themselves until it is back)."""
    hub.listening = hub.exact = up
    hub.reset(revision)
