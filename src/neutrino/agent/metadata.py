"""The metadata proxy: guests' requests to 169.254.169.254 are forwarded to the server with who-is-asking headers.

In each qrouter- namespace the nat REDIRECT sends guest port 80 to `view["metadata"]["port"]` (9697); in each qdhcp-
namespace of an isolated network the proxy listens on 169.254.169.254:80 itself. Listening sockets are opened
inside those namespaces from the agent process (lib.nsocket) and served by one acceptor thread here, so there is
no haproxy per router. The server learns the router or network and the guest's source address from headers the
proxy sets; the guest's own copies of those headers are dropped, so a guest cannot claim to be another one.
"""
from __future__ import annotations

import logging
import os
import selectors
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler

import httpx

from neutrino import names
from neutrino.agent.driver import HostConfig, SyncResult
from neutrino.errors import NeutrinoError
from neutrino.lib import nsocket
from neutrino.sync.client import ServerUnavailable, SyncClient
from neutrino.sync.schema import View

LOG = logging.getLogger(__name__)

METADATA_IP = "169.254.169.254"
ROUTER_HEADER = "X-Neutrino-Router-ID"
NETWORK_HEADER = "X-Neutrino-Network-ID"
# Headers a guest may not send on (ours, and hop-by-hop ones httpx sets itself).
DROPPED = {h.lower() for h in (ROUTER_HEADER, NETWORK_HEADER, "X-Forwarded-For", "X-Auth-Token", "Host",
                               "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding",
                               "Content-Length", "Upgrade", "TE", "Trailer")}


@dataclass(frozen=True)
class Target:
    """Where one listener lives and whom it speaks for."""
    kind: str          # "router" | "network"
    ident: str
    ns: str
    host: str
    port: int

    @property
    def header(self) -> str:
        return ROUTER_HEADER if self.kind == "router" else NETWORK_HEADER


def targets(view: View, port: int) -> dict[tuple[str, str], Target]:
    """The listeners a view asks for: one per admin-up router, one per isolated-metadata DHCP network."""
    out = {}
    for r in view.get("routers", []):
        if r.get("admin_state_up", True):
            out[("router", r["id"])] = Target("router", r["id"], names.qrouter(r["id"]), "0.0.0.0", port)
    for d in view.get("dhcp", []):
        if d.get("isolated_metadata"):
            net = d["network_id"]
            out[("network", net)] = Target("network", net, names.qdhcp(net), METADATA_IP, 80)
    return out


def forward_headers(guest: dict[str, str], target: Target, client_ip: str, token: str | None) -> dict[str, str]:
    """The guest's headers minus anything it must not set, plus who is asking."""
    out = {k: v for k, v in guest.items() if k.lower() not in DROPPED}
    out[target.header] = target.ident
    out["X-Forwarded-For"] = client_ip
    if token:
        out["X-Auth-Token"] = token
    return out


def _netns_inode(ns: str) -> int | None:
    """Identity of a named namespace: a namespace deleted and made again under the same name is a new one."""
    try:
        return os.stat(os.path.join(nsocket.NETNS_DIR, ns)).st_ino
    except FileNotFoundError:
        return None


class _Handler(BaseHTTPRequestHandler):
    """One guest connection; `proxy` and `target` are set on a per-listener subclass."""

    proxy: "MetadataProxy"
    target: Target
    protocol_version = "HTTP/1.0"
    timeout = 30

    def log_message(self, fmt, *args) -> None:  # noqa: D401 - BaseHTTPRequestHandler hook
        LOG.debug("metadata %s %s: " + fmt, self.target.kind, self.target.ident, *args)

    def _relay(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = forward_headers(dict(self.headers.items()), self.target, self.client_address[0],
                                  self.proxy.config.token)
        path = self.path.lstrip("/")
        try:
            resp = self.proxy.client.forward(self.command, f"/agent/v1/metadata/{path}", headers=headers,
                                             content=body)
            status, ctype, data = resp.status_code, resp.headers.get("content-type", "text/plain"), resp.content
        except (httpx.HTTPError, ServerUnavailable) as e:
            LOG.warning("metadata upstream %s: %s", self.proxy.client.server, e)
            status, ctype, data = 502, "text/plain", b"Metadata service unavailable\n"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_HEAD = _relay


class MetadataProxy:
    """Driver keeping one listener per router/isolated network of the view, all served from this process."""

    name = "metadata"

    def __init__(self, config: HostConfig):
        self.config = config
        self.client = SyncClient(config.servers or [config.server or "http://127.0.0.1:9696"], config.host,
                                 timeout=10.0)
        # key -> (target, listening socket, inode of the namespace it was opened in)
        self._listeners: dict[tuple[str, str], tuple[Target, socket.socket, int]] = {}
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="metadata")
        self._stop = False
        self._thread = threading.Thread(target=self._accept_loop, name="metadata-accept", daemon=True)
        self._thread.start()

    # --- driver interface ---------------------------------------------------------------------------------------

    def sync(self, view: View) -> SyncResult:
        result = SyncResult()
        port = view.get("metadata", {}).get("port", self.config.metadata_port)
        want = targets(view, port)
        for key, (target, _, ino) in list(self._listeners.items()):
            if want.get(key) != target or _netns_inode(target.ns) != ino:   # gone, changed or namespace recreated
                self._close(key)
                result.changed = True
        for key, target in want.items():
            ok = key in self._listeners
            ino = _netns_inode(target.ns)
            if not ok and ino is not None:
                try:
                    sock = nsocket.listen_tcp(target.ns, target.host, target.port, freebind=target.kind == "network")
                    sock.setblocking(False)
                    self._open(key, target, sock, ino)
                    ok = result.changed = True
                except NeutrinoError as e:
                    LOG.error("metadata listener for %s %s: %s", target.kind, target.ident, e)
            if target.kind == "router":
                result.routers[target.ident] = ok
        return result

    def restarted(self) -> bool:
        """For the agent's watcher: the acceptor thread died (started again here), or a listener's namespace was
        deleted or made anew (its socket serves nobody: the next sync, right away, opens one in the new one)."""
        if not self._stop and not self._thread.is_alive():
            self._thread = threading.Thread(target=self._accept_loop, name="metadata-accept", daemon=True)
            self._thread.start()
            return True
        return any(_netns_inode(t.ns) != ino for t, _, ino in self._listeners.values())

    def cleanup(self) -> None:
        for key in list(self._listeners):
            self._close(key)
        self._stop = True
        os.write(self._wake_w, b"x")
        self._thread.join(timeout=5)
        self._pool.shutdown(wait=False)
        self._sel.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
        self.client.close()

    def listening(self) -> dict[tuple[str, str], Target]:
        return {k: t for k, (t, _, _) in self._listeners.items()}

    # --- listeners ----------------------------------------------------------------------------------------------

    def _open(self, key, target: Target, sock: socket.socket, ino: int) -> None:
        handler = type("Handler", (_Handler,), {"proxy": self, "target": target})
        with self._lock:
            self._listeners[key] = (target, sock, ino)
            self._sel.register(sock, selectors.EVENT_READ, handler)
        os.write(self._wake_w, b"x")

    def _close(self, key) -> None:
        with self._lock:
            _, sock, _ = self._listeners.pop(key)
            self._sel.unregister(sock)
        sock.close()

    def _accept_loop(self) -> None:
        while not self._stop:
            for skey, _ in self._sel.select(timeout=1.0):
                if skey.data is None:
                    os.read(self._wake_r, 512)
                    continue
                try:
                    conn, addr = skey.fileobj.accept()
                except OSError:          # closed under us, or the client gave up
                    continue
                conn.setblocking(True)
                self._pool.submit(self._serve, skey.data, conn, addr)

    def _serve(self, handler, conn: socket.socket, addr) -> None:
        try:
            handler(conn, addr, None)
        except Exception:  # noqa: BLE001 - one broken guest request must not stop the proxy
            LOG.exception("metadata request from %s", addr)
        finally:
            conn.close()
