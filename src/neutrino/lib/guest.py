"""A guest's DHCP client: busybox udhcpc run inside the guest's namespace with neutrino's event script.

The script (`neutrino/instances/udhcpc.sh`, shipped as package data) touches only the guest: its interface, routes
and `/etc/netns/<ns>/resolv.conf`, which `ip netns exec <ns>` bind-mounts over /etc/resolv.conf for every command
run in the guest. That file is created before the client starts so the mount exists from the first command on.
Two ways to run: `dhcp_client` gets a lease now and exits; `start_dhcp_client` leaves a renewing client behind (pid
file in a directory of the caller's), which `renew` asks for a renewal and `stop_dhcp_client` stops. Whoever waits
for the renewing client's lease waits on `lease_watch` (inotify on the lease file the script writes), not a poll.
"""
from __future__ import annotations

import os
import shutil
import signal
import time
from importlib import resources

from neutrino.errors import KernelError
from neutrino.lib import inotify, proc

NETNS_ETC = "/etc/netns"
SCRIPT = "udhcpc.sh"


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


def script_path() -> str:
    """The packaged event script as an executable file (copied out when the package keeps no mode bits)."""
    ref = resources.files("neutrino.instances").joinpath(SCRIPT)
    path = str(ref)
    if os.path.isfile(path) and os.access(path, os.X_OK):
        return path
    copy = os.path.join("/run/neutrino", SCRIPT)
    os.makedirs(os.path.dirname(copy), exist_ok=True)
    with open(copy, "w") as f:
        f.write(ref.read_text())
    os.chmod(copy, 0o755)
    return copy


def _argv(dev: str, tries: int) -> list[str]:
    return ["busybox", "udhcpc", "-i", dev, "-s", script_path(),
            "-t", str(tries), "-T", "1", "-A", "1", "-O", "mtu", "-O", "staticroutes"]


def _env(netns: str, lease_file: str = "") -> dict[str, str]:
    """The event script's settings, in the client's environment (which `ip netns exec` and udhcpc pass on)."""
    return {"NEUTRINO_RESOLV_CONF": resolv_conf(netns), "NEUTRINO_LEASE_FILE": lease_file}


def dhcp_client(netns: str, dev: str = "eth0", timeout: float = 5) -> bool:
    """Get a lease now and exit (udhcpc -n -q -f); True when the guest got one and is configured."""
    tries = max(1, int(timeout))
    res = proc.run(_argv(dev, tries) + ["-n", "-q", "-f"], netns=netns, check=False, timeout=timeout + 10,
                   env=_env(netns))
    return res.returncode == 0


def _pid_file(run_dir: str, dev: str) -> str:
    return os.path.join(run_dir, f"udhcpc-{dev}.pid")


def _lease_file(run_dir: str, dev: str) -> str:
    return os.path.join(run_dir, f"udhcpc-{dev}.lease")


def configured_address(run_dir: str, dev: str = "eth0") -> str | None:
    """The address of the renewing client's last lease once the event script has applied all of it (address,
    routes, resolv.conf, ARP announcement); None before that or after the lease was lost."""
    try:
        with open(_lease_file(run_dir, dev)) as f:
            return f.read().strip() or None
    except FileNotFoundError:
        return None


def client_pid(run_dir: str, dev: str = "eth0") -> int | None:
    """The renewing client's pid when it is alive and really our udhcpc."""
    pid = proc.read_pidfile(_pid_file(run_dir, dev))
    if pid is None:
        return None
    argv = proc.cmdline(pid)
    return pid if "udhcpc" in argv and _pid_file(run_dir, dev) in argv else None


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
    return proc.spawn(_argv(dev, 10) + ["-f", "-p", pidfile], netns=netns,
                      log=os.path.join(run_dir, f"udhcpc-{dev}.log"), pidfile=pidfile,
                      env=_env(netns, _lease_file(run_dir, dev)))


def lease_watch(run_dir: str) -> inotify.DirWatch:
    """A watch that wakes whenever the event script writes or clears the lease file in run_dir (and on the client's
    pid file); make it before starting or signalling the client, then re-check `configured_address` on each wake."""
    os.makedirs(run_dir, exist_ok=True)
    return inotify.DirWatch(run_dir)


def renew(run_dir: str, dev: str = "eth0") -> None:
    """Ask the background client to renew its lease now (SIGUSR1)."""
    pid = client_pid(run_dir, dev)
    if pid is None:
        raise KernelError(f"no udhcpc running for {dev} in {run_dir}")
    proc.terminate(pid, signal.SIGUSR1)


def stop_dhcp_client(run_dir: str, dev: str = "eth0") -> None:
    """Stop the background client by its pid (the lease stays configured on the guest)."""
    pid = client_pid(run_dir, dev)
    if pid is not None:
        proc.terminate(pid)
        deadline = time.monotonic() + 3
        while client_pid(run_dir, dev) == pid and time.monotonic() < deadline:
            time.sleep(0.02)
    try:
        os.unlink(_pid_file(run_dir, dev))
    except FileNotFoundError:
        pass
