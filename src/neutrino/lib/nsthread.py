"""A thread that stays inside a named network namespace while calls keep coming.

nsocket.in_netns starts a thread per call (it enters the namespace, runs one function, ends): 5-25 ms a call on a
loaded host, several times per sync for lib.nft. Here the thread stays for the next call and ends after IDLE
seconds without one, so a namespace deleted meanwhile is not held for long. Before every call the namespace's file
is compared with the one the thread entered: a namespace deleted, or deleted and made again under the same name,
gets a new thread (or ENOENT), never the old namespace.
"""
from __future__ import annotations

import errno
import os
import queue
import threading
from typing import Callable, TypeVar

from pyroute2 import netns as _netns

from neutrino.errors import KernelError
from neutrino.lib import nsocket

T = TypeVar("T")
IDLE = 1.0                          # seconds a thread waits for another call before it ends


class _Worker:
    def __init__(self, netns: str, fd: int):
        self.netns, self.fd = netns, fd
        st = os.fstat(fd)
        self.ident = (st.st_dev, st.st_ino)
        self.calls: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name=f"netns-{netns}", daemon=True)

    def _run(self) -> None:
        try:
            _netns.setns(self.fd, flags=0)          # flags=0: never create one
        except BaseException as e:  # noqa: BLE001 - every call waiting gets the error
            self._fail(e)
            return
        finally:
            os.close(self.fd)
        while True:
            try:
                item = self.calls.get(timeout=IDLE)
            except queue.Empty:
                with _lock:
                    if not self.calls.empty():
                        continue
                    if _workers.get(self.netns) is self:
                        del _workers[self.netns]
                    return
            if item is None:                                # retired: its namespace is gone or was replaced
                return
            fn, args, box, done = item
            try:
                box["result"] = fn(*args)
            except BaseException as e:  # noqa: BLE001 - handed back to the caller's thread
                box["error"] = e
            done.set()

    def _fail(self, error: BaseException) -> None:
        with _lock:
            if _workers.get(self.netns) is self:
                del _workers[self.netns]
        while not self.calls.empty():
            item = self.calls.get()
            if item is not None:
                item[2]["error"] = error
                item[3].set()


_lock = threading.Lock()
_workers: dict[str, _Worker] = {}


def run(netns: str | None, fn: Callable[..., T], *args) -> T:
    """fn(*args) inside network namespace netns (None: in this thread); its result or error comes back."""
    if netns is None:
        return fn(*args)
    path = os.path.join(nsocket.NETNS_DIR, netns)
    box: dict = {}
    done = threading.Event()
    with _lock:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise KernelError(f"network namespace {netns} does not exist", errno=errno.ENOENT) from None
        worker = _workers.get(netns)
        if worker is not None and worker.ident != (st.st_dev, st.st_ino):
            worker.calls.put(None)
            worker = None
        if worker is None:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                raise KernelError(f"network namespace {netns} does not exist", errno=errno.ENOENT) from None
            worker = _workers[netns] = _Worker(netns, fd)
            worker.thread.start()
        worker.calls.put((fn, args, box, done))
    done.wait()
    if "error" in box:
        raise box["error"]
    return box["result"]
