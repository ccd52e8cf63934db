"""dnsmasq processes, one per DHCP network, found again after an agent restart.

Each network has a directory (`<state_dir>/dhcp/<network_id>/`) holding its config files and the pid file. A
process counts as ours only if its /proc cmdline is a dnsmasq whose `--pid-file=` is that directory's pid file, so a
stale pid file whose pid was reused, or a zombie, is never mistaken for a running server. dnsmasq daemonizes itself;
its parent exits only once the server is up (or with the startup error), so start returns with the pid file written.
"""
from __future__ import annotations

import os
import signal
import time

from neutrino.errors import KernelError
from neutrino.lib import proc

PID_FILE = "pid"


def pid_file(net_dir: str) -> str:
    return os.path.join(net_dir, PID_FILE)


def _is_ours(pid: int, net_dir: str) -> bool:
    argv = proc.cmdline(pid)
    return bool(argv) and os.path.basename(argv[0]) == "dnsmasq" and f"--pid-file={pid_file(net_dir)}" in argv


def running(net_dir: str) -> int | None:
    """The pid of this network's live dnsmasq, or None."""
    pid = proc.read_pidfile(pid_file(net_dir))
    return pid if pid and _is_ours(pid, net_dir) else None


def ensure_running(net_dir: str, argv: list[str], netns: str | None = None) -> tuple[int, bool]:
    """Make this network's dnsmasq run with exactly argv; (pid, True) when it was (re)started.

    A live process with other arguments (subnets changed) is stopped first: dnsmasq reads its ranges only at start.
    """
    if f"--pid-file={pid_file(net_dir)}" not in argv:
        raise KernelError(f"dnsmasq argv must carry --pid-file={pid_file(net_dir)}")
    pid = running(net_dir)
    if pid and proc.cmdline(pid) == argv:
        return pid, False
    if pid:
        stop(net_dir)
    proc.run(argv, netns=netns)
    pid = running(net_dir)
    if pid is None:
        raise KernelError(f"dnsmasq for {net_dir} did not stay up")
    return pid, True


def reload(net_dir: str) -> bool:
    """SIGHUP: dnsmasq re-reads its hosts, opts and addn-hosts files. False when it is not running."""
    pid = running(net_dir)
    if pid is None:
        return False
    proc.terminate(pid, signal.SIGHUP)
    return True


def stop(net_dir: str, timeout: float = 5.0) -> None:
    """Stop this network's dnsmasq (by its pid only) and wait until it is gone."""
    pid = running(net_dir)
    if pid is not None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            proc.terminate(pid, sig)
            deadline = time.monotonic() + timeout
            while _is_ours(pid, net_dir) and time.monotonic() < deadline:
                time.sleep(0.01)
            if not _is_ours(pid, net_dir):
                break
        else:
            raise KernelError(f"dnsmasq {pid} of {net_dir} does not die")
    try:
        os.unlink(pid_file(net_dir))
    except FileNotFoundError:
        pass
