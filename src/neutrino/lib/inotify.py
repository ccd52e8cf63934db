"""Waiting for a file written by another process as an event (inotify), not a poll: the waiter wakes when a file in
the watched directory is closed after writing or renamed into it, so a write is seen at once, without a poll interval
added to the wait or a wake-up every few milliseconds while nothing happens.
"""
from __future__ import annotations

import ctypes
import os
import select

from neutrino.errors import KernelError

IN_CLOSE_WRITE = 0x00000008
IN_MOVED_TO = 0x00000080

_libc: ctypes.CDLL | None = None


def _lib() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        lib = ctypes.CDLL(None, use_errno=True)
        lib.inotify_init1.argtypes = [ctypes.c_int]
        lib.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        _libc = lib
    return _libc


class DirWatch:
    """Files closed after writing or moved into one directory, from when the watch is made (make it before starting
    what writes, so no write is missed). A context manager; `wait` returns once any such event happened."""

    def __init__(self, path: str):
        fd = _lib().inotify_init1(os.O_CLOEXEC | os.O_NONBLOCK)
        if fd < 0:
            raise KernelError(f"inotify_init1: {os.strerror(ctypes.get_errno())}", errno=ctypes.get_errno())
        if _lib().inotify_add_watch(fd, os.fsencode(path), IN_CLOSE_WRITE | IN_MOVED_TO) < 0:
            err = ctypes.get_errno()
            os.close(fd)
            raise KernelError(f"inotify_add_watch {path}: {os.strerror(err)}", errno=err)
        self.fd = fd

    def wait(self, timeout: float) -> bool:
        """Block until a file was written or moved in since the last wait (True) or timeout seconds passed (False)."""
        poller = select.poll()          # not select(): a busy process may hold fds above FD_SETSIZE
        poller.register(self.fd, select.POLLIN)
        if not poller.poll(max(0, int(timeout * 1000))):
            return False
        try:
            while os.read(self.fd, 4096):        # drain: one wake-up covers every event so far
                pass
        except BlockingIOError:
            pass
        return True

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> DirWatch:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
