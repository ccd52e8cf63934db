"""A guest's DHCP client: ISC dhclient run inside the guest's namespace with neutrino's event script and settings.

dhclient keeps one packet socket from its DISCOVER to the ACK. busybox udhcpc, which the guests ran before, opens,
binds and closes a packet socket for every packet it sends and closes its listening one before the event script
runs; the kernel waits for an RCU grace period (10-16 ms) on each such bind and close, ~80 ms of every lease.
Every file dhclient keeps (pid file, lease database) is named on its command line, so guests that share the host's
filesystem never share one. The script (`neutrino/instances/dhclient.sh`, shipped as package data with the
settings file `dhclient.conf`) touches only the guest: its interface, routes and `/etc/netns/<ns>/resolv.conf`,
which `ip netns exec <ns>` bind-mounts over /etc/resolv.conf for every command run in the guest. That file is
created before the client starts so the mount exists from the first command on.
Two ways to run: `dhcp_client` gets a lease now and stops the client (the lease stays configured);
`start_dhcp_client` leaves a renewing client behind (pid file and lease database in a directory of the caller's),
which `renew` restarts without its stored lease, as a guest asking anew, and `stop_dhcp_client` stops. Whoever
waits for the client's lease waits on `lease_watch` (inotify on the lease file the script writes), not a poll.
"""
from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from importlib import resources

from neutrino.errors import KernelError
from neutrino.lib import inotify, proc

NETNS_ETC = "/etc/netns"
SCRIPT = "dhclient.sh"
SETTINGS = "dhclient.conf"


def resolv_conf(netns: str) -> str:
    """The guest's resolv.conf, created empty when missing (ip netns exec bind-mounts only files that exist)."""
    d = os.path.join(NETNS_ETC, netns)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "resolv.conf")
    if not os.path.exists(path):
        open(path, "w").close()
    return path


def remove_netns_etc(netns: str) -> None:
    """Remove /etc/netns/<ns> (call after the guest namespace is gone)."""
    shutil.rmtree(os.path.join(NETNS_ETC, netns), ignore_errors=True)


def _packaged(name: str, executable: bool = False) -> str:
    """A file of neutrino.instances as a path on disk (copied out when the package is no plain directory or keeps no
    mode bits)."""
    ref = resources.files("neutrino.instances").joinpath(name)
    path = str(ref)
    if os.path.isfile(path) and (not executable or os.access(path, os.X_OK)):
        return path
    copy = os.path.join("/run/neutrino", name)
    os.makedirs(os.path.dirname(copy), exist_ok=True)
    with open(copy, "w") as f:
        f.write(ref.read_text())
    os.chmod(copy, 0o755 if executable else 0o644)
    return copy


def _argv(netns: str, run_dir: str, dev: str) -> list[str]:
    """dhclient in the foreground (its pid is the one spawned), its files in run_dir, the event script's settings
    by -e (dhclient gives the script none of its own environment)."""
    return ["dhclient", "-4", "-d", "-cf", _packaged(SETTINGS), "-sf", _packaged(SCRIPT, executable=True),
            "-pf", _own_pid_file(run_dir, dev), "-lf", _lease_db(run_dir, dev),
            "-e", f"NEUTRINO_RESOLV_CONF={resolv_conf(netns)}",
            "-e", f"NEUTRINO_LEASE_FILE={_lease_file(run_dir, dev)}", dev]


def dhcp_client(netns: str, dev: str = "eth0", timeout: float = 5) -> bool:
    """Get a lease now and stop the client (the guest keeps the lease configured); True when the guest got one and
    is configured within timeout."""
    run_dir = tempfile.mkdtemp(prefix="neutrino-dhcp-")
    deadline = time.monotonic() + timeout
    try:
        with lease_watch(run_dir) as watch:
            start_dhcp_client(netns, run_dir, dev)
            while configured_address(run_dir, dev) is None:
                if not watch.wait(deadline - time.monotonic()):
                    return configured_address(run_dir, dev) is not None
        return True
    finally:
        stop_dhcp_client(run_dir, dev)
        shutil.rmtree(run_dir, ignore_errors=True)


def _pid_file(run_dir: str, dev: str) -> str:
    """Ours, written when the client is started; dhclient's own (-pf) is another, which only dhclient writes."""
    return os.path.join(run_dir, f"client-{dev}.pid")


def _own_pid_file(run_dir: str, dev: str) -> str:
    return os.path.join(run_dir, f"dhclient-{dev}.pid")


def _lease_file(run_dir: str, dev: str) -> str:
    return os.path.join(run_dir, f"dhclient-{dev}.lease")


def _lease_db(run_dir: str, dev: str) -> str:
    return os.path.join(run_dir, f"dhclient-{dev}.leases")


def configured_address(run_dir: str, dev: str = "eth0") -> str | None:
    """The address of the renewing client's last lease once the event script has applied all of it (address,
    routes, resolv.conf, ARP announcement); None before that or after the lease was lost."""
    try:
        with open(_lease_file(run_dir, dev)) as f:
            return f.read().strip() or None
    except FileNotFoundError:
        return None


def client_pid(run_dir: str, dev: str = "eth0") -> int | None:
    """The renewing client's pid when it is alive and really our dhclient (its lease database is run_dir's)."""
    pid = proc.read_pidfile(_pid_file(run_dir, dev))
    return pid if pid is not None and _ours(pid, run_dir, dev) else None


def _ours(pid: int, run_dir: str, dev: str) -> bool:
    argv = proc.cmdline(pid)
    return "dhclient" in argv and _lease_db(run_dir, dev) in argv


def start_dhcp_client(netns: str, run_dir: str, dev: str = "eth0") -> int:
    """A client that keeps renewing, as a guest OS's does: started detached, trying every second until it holds a
    lease (the caller waits for the address; a busy host may take a while to answer); its pid."""
    pid = client_pid(run_dir, dev)
    if pid:
        return pid
    os.makedirs(run_dir, exist_ok=True)
    pidfile = _pid_file(run_dir, dev)
    try:
        os.unlink(_lease_file(run_dir, dev))
    except FileNotFoundError:
        pass
    return proc.spawn(_argv(netns, run_dir, dev), netns=netns, log=os.path.join(run_dir, f"dhclient-{dev}.log"),
                      pidfile=pidfile)


def lease_watch(run_dir: str) -> inotify.DirWatch:
    """A watch that wakes whenever the event script writes or clears the lease file in run_dir (and on the client's
    pid file); make it before starting or restarting the client, then re-check `configured_address` on each wake."""
    os.makedirs(run_dir, exist_ok=True)
    return inotify.DirWatch(run_dir)


def renew(netns: str, run_dir: str, dev: str = "eth0") -> int:
    """Have the background client ask for a lease anew now, as `dhclient -r; dhclient` or a reboot without a stored
    lease does in a real guest: the client is restarted without its lease database, so it sends a DISCOVER and
    configures whatever address the port has now (the script drops the old one). The new client's pid."""
    if client_pid(run_dir, dev) is None:
        raise KernelError(f"no dhclient running for {dev} in {run_dir}")
    stop_dhcp_client(run_dir, dev)
    try:
        os.unlink(_lease_db(run_dir, dev))
    except FileNotFoundError:
        pass
    return start_dhcp_client(netns, run_dir, dev)


def stop_dhcp_client(run_dir: str, dev: str = "eth0") -> None:
    """Stop the background client by its pid and wait until it is gone, SIGKILL after 3 s (the lease stays
    configured on the guest: dhclient stopped by a signal releases nothing)."""
    pid = client_pid(run_dir, dev)
    if pid is not None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            proc.terminate(pid, sig)
            deadline = time.monotonic() + 3
            while not _gone(pid, run_dir, dev) and time.monotonic() < deadline:
                time.sleep(0.01)
            if _gone(pid, run_dir, dev) or not _ours(pid, run_dir, dev):
                break
    for path in (_pid_file(run_dir, dev), _own_pid_file(run_dir, dev)):
        try:       # dhclient's own too: a client started next would see the old pid there and exit, "already running"
            os.unlink(path)
        except FileNotFoundError:
            pass


def _gone(pid: int, run_dir: str, dev: str) -> bool:
    """Whether the client has exited: no such process, a zombie, or the pid now another program's. A dhclient that is
    exiting already shows no argv while the kernel closes its packet socket (an RCU grace period): not gone yet."""
    return not proc.pid_alive(pid) or bool(proc.cmdline(pid)) and not _ours(pid, run_dir, dev)
