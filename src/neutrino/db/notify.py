"""PostgreSQL LISTEN/NOTIFY between server processes: a change committed by any server reaches every other at once.

A write transaction sends `pg_notify(CHANNEL, payload)`; PostgreSQL delivers it at commit, in commit order, to every
connection LISTENing on the channel. Each server keeps one such connection in a thread (started by the first agent
watch) that hands each payload to its hub on the event loop. When the connection is lost the hub is reset (changes
may have been missed: every watch re-checks) and the thread reconnects; until then watches poll the revision.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time

from sqlalchemy import text

LOG = logging.getLogger(__name__)
CHANNEL = "neutrino_changes"
RECONNECT = 0.5         # seconds between attempts to reconnect the LISTEN connection
_NOTIFY = text("SELECT pg_notify(:channel, :payload)")


def is_postgres(s) -> bool:
    return s.get_bind().dialect.name == "postgresql"


def send(s, payload: str) -> None:
    s.execute(_NOTIFY, {"channel": CHANNEL, "payload": payload})


def listen(db, hub) -> None:
    """Start this process's LISTEN thread for the hub once (PostgreSQL only); call from the event loop."""
    if db.engine.dialect.name != "postgresql" or getattr(hub, "listener", None) is not None:
        return
    url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    hub.listener = threading.Thread(target=_run, args=(url, hub, asyncio.get_running_loop()),
                                    name="pg-listen", daemon=True)
    hub.listener.start()


def _run(url: str, hub, loop: asyncio.AbstractEventLoop) -> None:
    import psycopg

    from neutrino.sync.changes import parse

    def on_loop(fn, *args):
        loop.call_soon_threadsafe(fn, *args)

    while not loop.is_closed():
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f"LISTEN {CHANNEL}")
                on_loop(_connected, hub, True)
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


def _connected(hub, up: bool) -> None:
    hub.listening = up
    hub.reset()
