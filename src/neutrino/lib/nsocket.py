"""Sockets opened inside a named network namespace from this process.

A socket keeps the namespace it was created in, so the agent can serve (metadata) or send (gratuitous ARP) inside
qrouter-/qdhcp- namespaces without a helper process: a short-lived thread enters the namespace with setns(2)
(pyroute2's; Python 3.11 has no os.setns), creates the socket and ends. Only that thread ever changes namespace.
"""
from __future__ import annotations

import errno
import os
import socket
import threading
from typing import Callable, TypeVar

from pyroute2 import netns as _netns

from neutrino.errors import KernelError

NETNS_DIR = "/run/netns"
IP_FREEBIND = 15

T = TypeVar("T")


def _setns(fd: int) -> None:
    """Move the calling thread into the namespace of an open fd (flags=0: never create one)."""
    _netns.setns(fd, flags=0)


def in_netns(netns: str | None, fn: Callable[..., T], *args, **kw) -> T:
    """Run fn(*args, **kw) in a helper thread that is inside network namespace netns; its result or error comes back."""
    if netns is None:
        return fn(*args, **kw)
    box: dict = {}

    def runner() -> None:           # this thread ends right after fn: it never needs to step back out
        try:
            target = os.open(os.path.join(NETNS_DIR, netns), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            box["error"] = KernelError(f"network namespace {netns} does not exist", errno=errno.ENOENT)
            return
        try:
            _setns(target)
            box["result"] = fn(*args, **kw)
        except BaseException as e:  # noqa: BLE001 - handed back to the caller's thread
            box["error"] = e
        finally:
            os.close(target)

    t = threading.Thread(target=runner, name=f"netns-{netns}", daemon=True)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["result"]


def listen_tcp(netns: str | None, host: str, port: int, backlog: int = 128, freebind: bool = False) -> socket.socket:
    """A listening TCP socket bound inside netns; freebind lets it bind an address the namespace does not carry yet."""
    def make() -> socket.socket:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if freebind:
                s.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
            s.bind((host, port))
            s.listen(backlog)
        except OSError as e:
            s.close()
            raise KernelError(f"cannot listen on {host}:{port} in {netns or 'own ns'}: {e}", errno=e.errno) from e
        return s
    return in_netns(netns, make)


def packet_socket(netns: str | None, dev: str, ethertype: int) -> socket.socket:
    """A raw AF_PACKET socket bound to one device of netns, for sending whole Ethernet frames."""
    def make() -> socket.socket:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ethertype))
        try:
            s.bind((dev, ethertype))
        except OSError as e:
            s.close()
            raise KernelError(f"cannot open a packet socket on {dev} in {netns or 'own ns'}: {e}",
                              errno=e.errno) from e
        return s
    return in_netns(netns, make)
