"""How the server meets its connections and writes its logs: uvicorn with a header deadline (a connection that sends
no request, or sends its headers a byte at a time, is closed after `header_timeout`; idle keep-alive ones after
`keepalive_timeout`), and log lines as text or, with `--log-format json`, one JSON object per line."""
from __future__ import annotations

import gc
import logging
import sys

import orjson
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

ACCESS_FIELDS = ("method", "path", "status", "ms", "project", "request_id")


class OneWrite:
    """A response's transport that sends its head with the first part of its body, in one system call: uvicorn
    writes them apart, so every response cost two sends and two packets (a third of a small GET's server time). A
    head with no body part right behind it (a 100 Continue, an early close) goes out at the loop's next turn."""

    __slots__ = ("_transport", "_loop", "_head")
    BIG = 65536         # bodies this large go in their own write, not copied behind the head

    def __init__(self, transport, loop):
        self._transport, self._loop, self._head = transport, loop, None

    def write(self, data) -> None:
        if self._head is not None:
            head, self._head = self._head, None
            if len(data) < self.BIG:
                self._transport.write(head + data)
            else:
                self._transport.write(head)
                self._transport.write(data)
        elif data.startswith(b"HTTP/"):
            self._head = data
            self._loop.call_soon(self.flush)
        else:
            self._transport.write(data)

    def flush(self) -> None:
        if self._head is not None:
            head, self._head = self._head, None
            if not self._transport.is_closing():
                self._transport.write(head)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name):
        return getattr(self._transport, name)


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol plus one timer: armed when the connection opens and when a request begins,
    disarmed when its headers are complete. (uvicorn alone keeps a silent connection forever.)"""

    header_timeout = 10.0
    _header_timer = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_timer is None:
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()
        if self.cycle is not None:
            self.cycle.transport = OneWrite(self.transport, self.loop)

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout, self._expire)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expire(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def settle() -> None:
    """Once the app is built: what exists now (modules, routes, statements, schemas) lives as long as the process.
    Frozen, the collector no longer walks it on each full collection (which cost more than building a 1000-port
    list), and young objects are collected less often (a list response makes tens of thousands)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


# On SIGTERM agents' long-polls and the page's event streams are cut after this, not waited for (they reconnect).
GRACE = 1


def uvicorn_config(app, settings, **where) -> uvicorn.Config:
    """where: host= and port=, or uds=."""
    protocol = type("HeaderDeadline", (HeaderDeadlineProtocol,), {"header_timeout": settings.header_timeout})
    return uvicorn.Config(app, http=protocol, log_level="warning", access_log=False,
                          timeout_keep_alive=max(1, int(settings.keepalive_timeout)),
                          timeout_graceful_shutdown=GRACE, **where)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the access fields when present, the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"time": self.formatTime(record), "level": record.levelname, "logger": record.name,
               "message": record.getMessage()}
        out.update({k: getattr(record, k) for k in ACCESS_FIELDS if hasattr(record, k)})
        if record.exc_info:
            out["traceback"] = self.formatException(record.exc_info)
        return orjson.dumps(out).decode()


def setup_logging(level: str, fmt: str) -> None:
    if fmt not in ("text", "json"):
        raise ValueError("--log-format must be text or json")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else
                         logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
