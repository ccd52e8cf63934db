"""dnsmasq processes, one per DHCP network, found again after an agent restart.

Each network has a directory (`<state_dir>/dhcp/<network_id>/`) holding its config files and the pid file. A
process counts as ours only if its /proc cmdline is a dnsmasq whose `--pid-file=` is that directory's pid file, so a
stale pid file whose pid was reused, or a zombie, is never mistaken for a running server. dnsmasq daemonizes itself;
its parent exits only once the server is up (or with the startup error), so start returns with the pid file written.
Leases are dropped from dnsmasq's own database with `dhcp_release`/`dhcp_release6` (Debian's dnsmasq-utils), as
Neutron's agent does: dnsmasq then rewrites its leases file itself and can hand the address to another client.
"""
from __future__ import annotations

import os
import signal
import time

from dataclasses import dataclass

from neutrino.errors import KernelError
from neutrino.lib import proc

PID_FILE = "pid"
LEASES_FILE = "leases"


@dataclass(frozen=True)
class Lease:
    """One line of dnsmasq's leases file. IPv4: `mac` set, `iaid` empty; IPv6: `iaid` set, `mac` empty."""
    ip_address: str
    mac: str = ""
    client_id: str = ""
    iaid: str = ""


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


def leases_file(net_dir: str) -> str:
    return os.path.join(net_dir, LEASES_FILE)


def leases(net_dir: str) -> tuple[list[Lease], str]:
    """The leases dnsmasq has written, and its DHCPv6 server DUID ("" without IPv6 leases)."""
    out, duid = [], ""
    try:
        with open(leases_file(net_dir)) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return [], ""
    for line in lines:
        fields = line.split()
        if len(fields) == 2 and fields[0] == "duid":
            duid = fields[1]
        elif len(fields) >= 4:
            client_id = fields[4] if len(fields) > 4 and fields[4] != "*" else ""
            if ":" in fields[2]:
                out.append(Lease(ip_address=fields[2], iaid=fields[1], client_id=client_id))
            else:
                out.append(Lease(ip_address=fields[2], mac=fields[1].lower(), client_id=client_id))
    return out, duid


def release(lease: Lease, iface: str, server_duid: str = "", netns: str | None = None) -> None:
    """Ask the dnsmasq listening on iface to forget one lease (a lease it does not hold is no error)."""
    if lease.iaid:
        if not (server_duid and lease.client_id):
            raise KernelError(f"cannot release DHCPv6 lease {lease.ip_address}: no server DUID or client id")
        argv = ["dhcp_release6", "--ip", lease.ip_address, "--iface", iface, "--server-id", server_duid,
                "--client-id", lease.client_id, "--iaid", lease.iaid]
    else:
        argv = ["dhcp_release", iface, lease.ip_address, lease.mac] + ([lease.client_id] if lease.client_id else [])
    proc.run(argv, netns=netns)
