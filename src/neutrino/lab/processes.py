"""The lab's long-lived processes: the server(s) (caller's namespace) and one agent per emulated host.

Each has a pid file in the state dir; a pid counts as ours only while its command line still names this lab's
state dir, so a recycled pid is never signalled. `down` ends exactly these pids.
"""
from __future__ import annotations

import os
import secrets
import socket
import sys
import time

import httpx

from neutrino.errors import NeutrinoError
from neutrino.lab.paths import Lab, LabSettings, underlay_ip
from neutrino.lib import ip, postgres, proc
from neutrino.lib import ovs as lib_ovs

ALL_ROLES = "l2,dhcp,l3,metadata"
DNS_DOMAIN = "lab.internal."      # not Neutron's openstacklocal.: instances are known by their names


class LabError(NeutrinoError):
    """The lab could not be brought up or reached."""


def neutrino_argv(*args: str) -> list[str]:
    """This installation's `neutrino` command (same interpreter, so a venv works without activation)."""
    return [sys.executable, "-m", "neutrino.cli.main", *args]


def owned_pid(pidfile: str, marker: str) -> int | None:
    """The pid in pidfile when that process is alive and its command line contains marker."""
    pid = proc.read_pidfile(pidfile)
    if pid is None:
        return None
    argv = proc.cmdline(pid)
    for _ in range(50):     # a process caught inside execve (`ip netns exec` execs again) shows no argv yet
        if argv or not proc.pid_alive(pid):
            break
        time.sleep(0.01)
        argv = proc.cmdline(pid)
    return pid if any(marker in a for a in argv) else None


def stop_pidfile(pidfile: str, marker: str) -> bool:
    """Stop the process of a pid file if it is ours; remove the file. True when a process was stopped."""
    pid = owned_pid(pidfile, marker)
    if pid is not None:
        proc.stop(pid)
    try:
        os.unlink(pidfile)
    except FileNotFoundError:
        pass
    return pid is not None


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pick_port(preferred: int) -> int:
    """preferred when nothing listens there, else a free ephemeral loopback port."""
    if preferred and port_free(preferred):
        return preferred
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _secret_file(path: str, value: str | None) -> str:
    """Read a 0600 secret file, creating it with value (or a generated secret) when missing."""
    if os.path.exists(path) and not value:
        with open(path) as f:
            return f.read().strip()
    value = value or secrets.token_hex(12)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value)
    return value


def admin_password(lab: Lab) -> str:
    """NEUTRINO_ADMIN_PASSWORD, else the one generated for this lab (kept 0600 in the state dir)."""
    os.makedirs(lab.state_dir, exist_ok=True)
    return _secret_file(lab.path("admin-password"), os.environ.get("NEUTRINO_ADMIN_PASSWORD"))


# --- server -------------------------------------------------------------------------------------------------------

def server_pid(lab: Lab, index: int = 1) -> int | None:
    return owned_pid(lab.server_file(index, "pid"), lab.state_dir)


def server_sockets(lab: Lab, settings: LabSettings) -> list[str]:
    return [lab.server_file(i, "sock") for i in range(1, settings.servers + 1)]


def start_server(lab: Lab, settings: LabSettings, index: int = 1) -> int:
    """Start the index-th `neutrino server` detached unless it runs; its pid."""
    pid = server_pid(lab, index)
    if pid is not None:
        return pid
    port = settings.server_port(index)
    argv = neutrino_argv("server", "--state-dir", lab.state_dir, "--bind", "127.0.0.1", "--port", str(port),
                         "--identity-port", str(settings.identity_port if index == 1 else port), "--auth",
                         "keystone", "--unix-socket", lab.server_file(index, "sock"), "--dns-domain", DNS_DOMAIN,
                         "--log-level", "warning")
    if settings.db == "postgresql":
        argv += ["--db", postgres.url(lab.postgres_dir)]
    return proc.spawn(argv, log=lab.server_file(index, "log"), pidfile=lab.server_file(index, "pid"),
                      env={"NEUTRINO_ADMIN_PASSWORD": admin_password(lab)})


def server_answers(lab: Lab, settings: LabSettings, index: int = 1) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{settings.server_port(index)}/", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def wait_server(lab: Lab, settings: LabSettings, index: int = 1, timeout: float = 30) -> None:
    """Return once the server answers on TCP and its agent socket exists; raise with its log tail if it died."""
    deadline = time.monotonic() + timeout
    log = lab.server_file(index, "log")
    while time.monotonic() < deadline:
        if server_pid(lab, index) is None:
            raise LabError(f"server {index} exited; last lines of {log}:\n{log_tail(log)}")
        if os.path.exists(lab.server_file(index, "sock")) and server_answers(lab, settings, index):
            return
        time.sleep(0.05)
    raise LabError(f"server {index} did not answer within {timeout:.0f} s (log: {log})")


def log_tail(path: str, lines: int = 15) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except FileNotFoundError:
        return ""


def agent_token(lab: Lab) -> str:
    """The token the server generated for agents (written before it serves)."""
    with open(lab.path("agent-token")) as f:
        return f.read().strip()


# --- agents -------------------------------------------------------------------------------------------------------

def agent_pid(lab: Lab, host: str) -> int | None:
    return owned_pid(os.path.join(lab.host_dir(host), "agent.pid"), lab.host_dir(host))


def start_agent(lab: Lab, settings: LabSettings, index: int) -> int:
    """Start `neutrino agent` inside the emulated host (detached); host1 carries every role, others only l2.

    With OVS the lab starts the host's daemons first, through `ip netns exec` so they see the host's own /sys."""
    host = lab.host_name(index)
    pid = agent_pid(lab, host)
    if pid is not None:
        return pid
    d = lab.host_dir(host)
    os.makedirs(d, exist_ok=True)
    sockets = server_sockets(lab, settings)
    first = (index - 1) % len(sockets)          # hosts spread over the servers, each failing over to the others
    servers = [arg for sock in sockets[first:] + sockets[:first] for arg in ("--server", f"unix:{sock}")]
    argv = neutrino_argv("agent", "--host", host, *servers, "--l2", settings.l2,
                         "--firewall", settings.firewall, "--roles", ALL_ROLES if index == 1 else "l2",
                         "--state-dir", d, "--bridge-mapping", "public:br-ex")
    if settings.l2 == "ovs":
        argv += ["--ovs-rundir", lab.ovs_rundir(host)]
    if settings.hosts > 1:
        argv += ["--tunnel-ip", underlay_ip(index)]
    if settings.l2 == "ovs":
        lib_ovs.start_daemons(lab.ovs_rundir(host), netns=lab.host_ns(host))
    # nsenter --net, not `ip netns exec`: the latter gives the agent a private mount namespace, and the qrouter-/
    # qdhcp- namespaces it mounts under /run/netns would be invisible to everyone else (`ip netns list`, `down`)
    enter = ["nsenter", f"--net={os.path.join(ip.NETNS_DIR, lab.host_ns(host))}", "--"]
    return proc.spawn(enter + argv, log=os.path.join(d, "agent.log"), pidfile=os.path.join(d, "agent.pid"),
                      env={"NEUTRINO_AGENT_TOKEN": agent_token(lab)})


def stop_agent(lab: Lab, host: str) -> bool:
    return stop_pidfile(os.path.join(lab.host_dir(host), "agent.pid"), lab.host_dir(host))


def stop_server(lab: Lab, index: int = 1) -> bool:
    return stop_pidfile(lab.server_file(index, "pid"), lab.state_dir)
