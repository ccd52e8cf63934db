"""The agent's side of the server↔agent protocol: long-poll the host view, post reports.

One `SyncClient` per agent, over one or more servers, each `http://HOST:PORT` or `unix:/path/to/socket` (a Unix
socket crosses network namespaces, so an agent inside an emulated host reaches the lab's servers). Every failure to
talk to a server (refused, reset, timeout, 5xx: a server restarting or dead) raises `ServerUnavailable` and moves to
the next server; a whole round of failures counts on the client's capped exponential back-off, which the agent sleeps
before the next try; the first success resets it. The agent never crashes on a server outage, it keeps its last view
and retries.
"""
from __future__ import annotations

import math

import httpx
import orjson

from neutrino.errors import NeutrinoError
from neutrino.sync.schema import SCHEMA_VERSION, View

BASE = "/agent/v1/hosts"
UDS_BASE_URL = "http://neutrino"
CONNECT_TIMEOUT = 5.0
SLACK = 10.0            # seconds the read timeout exceeds the long-poll wait


class ServerUnavailable(NeutrinoError):
    """The server could not be reached or answered with a server error; retry after the back-off."""
    code = 503


class ProtocolError(NeutrinoError):
    """The server refused the request (bad token, unknown schema, ...): a configuration problem, retried slowly."""
    code = 400


class Backoff:
    """Exponential back-off: 0.5 s, 1 s, 2 s, ... capped at 30 s; `reset` after a success."""

    def __init__(self, initial: float = 0.5, cap: float = 30.0):
        self.initial, self.cap = initial, cap
        self.delay = 0.0

    def fail(self) -> float:
        """Record one more failure and return how long to wait before the next try."""
        self.delay = self.initial if not self.delay else min(self.delay * 2, self.cap)
        return self.delay

    def reset(self) -> None:
        self.delay = 0.0


def transport_for(server: str) -> tuple[httpx.HTTPTransport | None, str]:
    """(transport, base URL) for `http(s)://host:port` or `unix:/path/to/socket`."""
    if server.startswith("unix:"):
        return httpx.HTTPTransport(uds=server[len("unix:"):]), UDS_BASE_URL
    return None, server.rstrip("/")


class SyncClient:
    """`view(since, wait)` and `report(body)` for one host, against a list of servers that share one database.

    It talks to one server at a time (`server`); when that one fails (refused, reset, timed out, 5xx) the next call
    goes to the next server at once, and only a whole round of failed servers counts on the back-off. The watch
    resumes on the new server from the agent's last revision (servers share the revision), so nothing is lost and
    nothing is applied again."""

    def __init__(self, servers: str | list[str], host: str, token: str | None = None,
                 transport: httpx.BaseTransport | None = None, timeout: float = SLACK):
        self.servers = [servers] if isinstance(servers, str) else list(servers)
        self.host = host
        self.index = 0
        self.failed_in_row = 0           # consecutive failures, across servers
        headers = {"X-Auth-Token": token} if token else {}
        self.clients = []
        for server in self.servers:
            default_transport, base_url = transport_for(server)
            self.clients.append(httpx.Client(base_url=base_url, transport=transport or default_transport,
                                             headers=headers, timeout=httpx.Timeout(timeout, connect=CONNECT_TIMEOUT)))
        self.backoff = Backoff()

    @property
    def server(self) -> str:
        return self.servers[self.index]

    def close(self) -> None:
        for c in self.clients:
            c.close()

    def retry_delay(self) -> float:
        """How long to wait before the next call: nothing while a server of this round is still untried."""
        if self.failed_in_row and self.failed_in_row % len(self.servers):
            return 0.0
        return self.backoff.delay or self.backoff.fail()

    def _unavailable(self, message: str) -> ServerUnavailable:
        """Count a failure of the current server and move to the next one."""
        self.failed_in_row += 1
        if self.failed_in_row % len(self.servers) == 0:
            self.backoff.fail()
        self.index = (self.index + 1) % len(self.servers)
        return ServerUnavailable(message)

    def forward(self, method: str, path: str, **kw) -> httpx.Response:
        """A request relayed as it is (the metadata proxy's), answered by the first server that is up."""
        for _ in self.servers:
            server = self.server
            try:
                return self.clients[self.index].request(method, path, **kw)
            except httpx.TransportError as e:
                self.index = (self.index + 1) % len(self.servers)
                last = f"server {server} unreachable: {e.__class__.__name__}: {e}"
        raise ServerUnavailable(last)

    def _call(self, method: str, path: str, read_timeout: float, **kw) -> dict:
        server = self.server
        try:
            url = path if path.startswith("/") else f"{BASE}/{self.host}/{path}"
            resp = self.clients[self.index].request(method, url,
                                                    timeout=httpx.Timeout(read_timeout, connect=CONNECT_TIMEOUT),
                                                    **kw)
        except httpx.TransportError as e:          # refused, reset, timed out, socket file missing
            raise self._unavailable(f"server {server} unreachable: {e.__class__.__name__}: {e}") from e
        if resp.status_code >= 500 or resp.status_code == 429:
            raise self._unavailable(f"server {server} answered {resp.status_code} to {method} {path}")
        if resp.status_code >= 400:
            self.backoff.fail()
            raise ProtocolError(f"server {server} refused {method} {path}: {resp.status_code} {resp.text[:200]}")
        try:
            body = orjson.loads(resp.content)     # a view of 5000 ports: 10 ms, where json.loads took 15-70
        except orjson.JSONDecodeError as e:
            self.backoff.fail()
            raise ProtocolError(f"server {server} sent no JSON for {method} {path}") from e
        self.backoff.reset()
        self.failed_in_row = 0
        return body

    def view(self, since: int, wait: float) -> View:
        """The host's view once a change after `since` touches it; after `wait` seconds without one, a short
        {"unchanged": true, "revision": REV} (the view held stands for REV)."""
        wait = max(0, math.ceil(wait))     # whole seconds; never shorter than asked (no busy polling)
        view = self._call("GET", "view", wait + SLACK, params={"since": since, "wait": wait})
        if view.get("schema") != SCHEMA_VERSION:
            self.backoff.fail()
            raise ProtocolError(f"view schema {view.get('schema')!r}, this agent speaks {SCHEMA_VERSION}")
        return view

    def metering(self) -> list[dict]:
        """The metering counters every agent last reported (core.metering.counters)."""
        return self._call("GET", "/agent/v1/metering", SLACK)["metering"]

    def report(self, body: dict) -> int:
        """Post the agent's state; returns the server's current revision."""
        return int(self._call("POST", "report", SLACK, json=body).get("revision", 0))
