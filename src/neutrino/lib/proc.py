"""Running helper programs, optionally inside a named network namespace.

Every external program neutrino uses is started from here, so that the argument lists, the namespace entry and
the error reporting are in one place.
"""
from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import time

from neutrino.errors import KernelError

LOG = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1


def netns_argv(argv: list[str], netns: str | None) -> list[str]:
    """Prefix argv with `ip netns exec NS` when a namespace is given."""
    return ["ip", "netns", "exec", netns, *argv] if netns else list(argv)


def run(argv: list[str], netns: str | None = None, input: str | None = None, check: bool = True,
        ok_codes: tuple[int, ...] = (0,), timeout: float = 60,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run a program to completion (env: variables added to ours); raise KernelError unless its exit code is in
    ok_codes."""
    full = netns_argv(argv, netns)
    proc = subprocess.run(full, input=input, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **env} if env else None)
    if check and proc.returncode not in ok_codes:
        raise KernelError(f"{' '.join(full)} exited {proc.returncode}: {proc.stderr.strip() or proc.stdout.strip()}",
                          returncode=proc.returncode, stderr=proc.stderr)
    return proc


def output(argv: list[str], netns: str | None = None, **kw) -> str:
    return run(argv, netns=netns, **kw).stdout


def pid_alive(pid: int) -> bool:
    """Whether pid runs; a zombie (exited, waiting for a parent that is not us to collect it) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in (b"Z", b"X")


def cmdline(pid: int) -> list[str]:
    """The argv of a live process, [] when it is gone."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode() for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def read_pidfile(path: str) -> int | None:
    """The live pid on the first line of a pid file (PostgreSQL's has more lines after it)."""
    try:
        with open(path) as f:
            pid = int(f.readline().strip() or 0)
    except (OSError, ValueError):
        return None
    return pid if pid and pid_alive(pid) else None


def terminate(pid: int, sig: int = signal.SIGTERM) -> None:
    """Signal one process we started; a process already gone is success."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def die_with_parent(parent: int) -> None:
    """This (forked) process gets SIGKILL when its parent ends, however it ends; it exits now if that happened
    already."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


def spawn(argv: list[str], netns: str | None = None, log: str | None = None, pidfile: str | None = None,
          env: dict[str, str] | None = None) -> int:
    """Start a long-lived program detached (own session, no stdin, output appended to log); write its pid file.

    `ip netns exec` execs the program in place, so the returned pid is the program's own even with a namespace.
    """
    out = open(log, "ab") if log else subprocess.DEVNULL
    try:
        child = subprocess.Popen(netns_argv(argv, netns), stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
                                 env={**os.environ, **env} if env else None)
    except OSError as e:
        raise KernelError(f"cannot start {argv[0]}: {e}", errno=e.errno) from e
    finally:
        if log:
            out.close()
    if pidfile:
        with open(pidfile, "w") as f:
            f.write(f"{child.pid}\n")
    return child.pid


def _reap(pid: int) -> None:
    """Collect a child of ours that has exited, so it does not linger as a zombie that looks alive."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def stop(pid: int, timeout: float = 5) -> None:
    """SIGTERM one process we started, SIGKILL it after timeout; returns once it is gone."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        terminate(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _reap(pid)
            if not pid_alive(pid):
                return
            time.sleep(0.02)
    raise KernelError(f"process {pid} survived SIGKILL")


def exec_in(argv: list[str], netns: str | None = None, env: dict[str, str] | None = None) -> None:
    """Replace this process with argv (inside netns): for interactive shells and pass-through commands."""
    full = netns_argv(argv, netns)
    os.execvpe(full[0], full, {**os.environ, **(env or {})})
