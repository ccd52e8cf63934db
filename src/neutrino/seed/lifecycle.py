"""`neutrino up` and `neutrino down`: bring the seed's machine to life in emulated hosts, and remove all of it.

`up` is idempotent: on a running lab every step finds its object and changes nothing. `down` ends only the
processes this lab's pid files name and deletes only namespaces carrying this lab's prefix (plus the qrouter-/
qdhcp- namespaces its agents recorded in their state dirs).
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Callable

from neutrino import names
from neutrino.config import ensure_state_dir
from neutrino.core import common
from neutrino.agent.dhcp import DhcpDriver
from neutrino.agent.driver import HostConfig
from neutrino.agent.l3 import L3Driver
from neutrino.errors import NeutrinoError
from neutrino.instances import manager
from neutrino.lab import hosts as lab_hosts
from neutrino.lab import processes
from neutrino.lab.clouds import write_clouds_yaml
from neutrino.lab.paths import Lab, LabSettings
from neutrino.lib import guest as lib_guest
from neutrino.lib import ip, postgres
from neutrino.lib import ovs as lib_ovs
from neutrino.seed import topology

Say = Callable[[str], None]


@dataclass
class UpResult:
    """What `up` made or found, with the values the "look around" text shows."""
    settings: LabSettings
    seconds: float = 0.0
    server_pid: int = 0
    router_id: str = ""
    private_network_id: str = ""
    vm: dict = field(default_factory=dict)
    reachable: tuple[bool, bool] = (False, False)


def _settings(lab: Lab, hosts: int, l2: str, firewall: str, port: int | None, identity_port: int | None,
              say: Say, servers: int = 1, db: str = "sqlite") -> LabSettings:
    """The saved settings of an existing lab (its shape never changes under it), else new ones with free ports."""
    if lab.exists():
        settings = lab.load()
        if (hosts, l2, firewall, servers, db) != (settings.hosts, settings.l2, settings.firewall, settings.servers,
                                                  settings.db):
            say(f"this lab exists with {settings.hosts} host(s), {settings.l2} + {settings.firewall}, "
                f"{settings.servers} server(s) on {settings.db}; keeping that (`neutrino down` first to change it)")
        if processes.server_pid(lab) is None:
            settings.port = processes.pick_port(settings.port)
            settings.identity_port = processes.pick_port(settings.identity_port)
        for i in range(2, settings.servers + 1):
            if processes.server_pid(lab, i) is None:
                settings.server_ports[i - 2] = processes.pick_port(settings.server_ports[i - 2])
        return settings
    settings = LabSettings(hosts=hosts, l2=l2, firewall=firewall, servers=servers, db=db)
    settings.port = processes.pick_port(port or settings.port)
    settings.identity_port = processes.pick_port(identity_port or settings.identity_port)
    if settings.identity_port == settings.port:
        settings.identity_port = processes.pick_port(0)
    taken = {settings.port, settings.identity_port}
    while len(settings.server_ports) < servers - 1:
        p = processes.pick_port(0)
        if p not in taken:
            taken.add(p)
            settings.server_ports.append(p)
    return settings


def _start_servers(lab: Lab, settings: LabSettings, step: Callable[[str], None]) -> int:
    """The lab's PostgreSQL (when it runs on one) and its servers, all started at once (they migrate in turn);
    the first server's pid."""
    if settings.db == "postgresql":
        step(f"PostgreSQL pid {postgres.start(lab.postgres_dir)}, socket in {lab.postgres_dir}/run")
    pids = []
    for i in range(1, settings.servers + 1):
        running = processes.server_pid(lab, i)
        pids.append(processes.start_server(lab, settings, i))
        step(f"server {i} pid {pids[-1]} " + ("already running" if running else "started") +
             f" on http://127.0.0.1:{settings.server_port(i)}")
    return pids[0]


def _wait_agents(clouds: manager.Clouds, hosts: list[str], timeout: float = 30, since: str = "") -> None:
    """Until every host's agents are alive (and, with since, have reported at or after that server timestamp)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = {a.host for a in clouds.admin.network.agents()
                 if a.is_alive and (a.last_heartbeat_at or "") >= since}
        if set(hosts) <= alive:
            return
        time.sleep(0.1)
    raise processes.LabError(f"agents did not report within {timeout:.0f} s: {sorted(set(hosts) - alive)}")


def wait_reachable(lab: Lab, host: str, address: str, timeout: float = 30) -> tuple[bool, bool]:
    """Poll until address answers icmp and tcp/22 from host (or timeout); the last (icmp, ssh) seen."""
    deadline = time.monotonic() + timeout
    while True:
        seen = lab_hosts.reachable(lab, host, address)
        if all(seen) or time.monotonic() > deadline:
            return seen
        time.sleep(0.1)


def up(lab: Lab, hosts: int = 1, l2: str = "ovs", firewall: str = "iptables", port: int | None = None,
       identity_port: int | None = None, say: Say = print, servers: int = 1, db: str = "sqlite",
       vm_kind: str = "namespace") -> UpResult:
    start = time.monotonic()

    def step(msg: str) -> None:
        say(f"[{time.monotonic() - start:5.1f}s] {msg}")

    ensure_state_dir(lab.state_dir)
    settings = _settings(lab, hosts, l2, firewall, port, identity_port, say, servers, db)
    lab.save(settings)
    result = UpResult(settings=settings)
    result.server_pid = _start_servers(lab, settings, step)
    host_names = lab_hosts.ensure_hosts(lab, settings.hosts, settings.l2)
    step(f"emulated host(s): {', '.join(lab.host_ns(h) for h in host_names)}")
    for i in range(1, settings.servers + 1):
        processes.wait_server(lab, settings, i)
    for i, host in enumerate(host_names, start=1):
        was = processes.agent_pid(lab, host)
        pid = processes.start_agent(lab, settings, i)
        step(f"agent on {host}: pid {pid}" + (" (already running)" if was else ""))
    write_clouds_yaml(lab, settings)
    clouds = manager.Clouds.of(lab)
    ids = topology.networks(clouds, step)
    result.private_network_id = ids["private"]
    _wait_agents(clouds, host_names)
    step("agents alive")
    result.router_id = topology.router(clouds, ids, step)
    topology.security_group(clouds, step)
    lab_hosts.wait_br_ex(lab, host_names[0])
    step("br-ex in host1 carries 172.24.4.1/24")
    result.vm = topology.instance(lab, clouds, step, kind=vm_kind)
    fip = result.vm["floating_ips"][0]
    result.reachable = wait_reachable(lab, host_names[0], fip)
    result.seconds = time.monotonic() - start
    step(f"{topology.VM} on {fip}: icmp {'ok' if result.reachable[0] else 'NO'}, "
         f"ssh {'ok' if result.reachable[1] else 'NO'}")
    return result


# --- restart ------------------------------------------------------------------------------------------------------

COMPONENTS = ("server", "agent", "all")


def restart(lab: Lab, component: str = "all", host: str | None = None, say: Say = print) -> None:
    """Stop and start one component of a running lab in place, by its pid file: the server (same ports, database
    and agent socket), or the agent of one host (all hosts without `host`); returns once it serves again. The
    kernel state stays: a restarted agent reconciles, it does not rebuild."""
    if component not in COMPONENTS:
        raise processes.LabError(f"no component {component!r}: restart one of {', '.join(COMPONENTS)}")
    settings = lab.require().load()
    all_hosts = [lab.host_name(i) for i in range(1, settings.hosts + 1)]
    if host is not None and host not in all_hosts:
        raise processes.LabError(f"no emulated host {host!r} in lab {lab.id} (hosts: {', '.join(all_hosts)})")
    if component in ("server", "all"):
        old = processes.server_pid(lab)
        processes.stop_server(lab)
        pid = processes.start_server(lab, settings)
        processes.wait_server(lab, settings)
        say(f"server restarted: pid {old or '-'} -> {pid}, {lab.url(settings)}")
    if component in ("agent", "all"):
        since = common.fmt(common.now())
        hosts = [host] if host else all_hosts
        for h in hosts:
            old = processes.agent_pid(lab, h)
            processes.stop_agent(lab, h)
            pid = processes.start_agent(lab, settings, all_hosts.index(h) + 1)
            say(f"agent on {h} restarted: pid {old or '-'} -> {pid}")
        _wait_agents(manager.Clouds.of(lab), hosts, since=since)
        say("agents reported")


# --- down ---------------------------------------------------------------------------------------------------------

def _known_hosts(lab: Lab) -> list[str]:
    try:
        found = set(os.listdir(lab.path("hosts")))
    except FileNotFoundError:
        found = set()
    return sorted(found | {lab.host_name(i) for i in range(1, lab.load().hosts + 1)})


def _known_instances(lab: Lab) -> list[str]:
    try:
        found = set(os.listdir(lab.path("instances")))
    except FileNotFoundError:
        found = set()
    return sorted(found | set(lab.load().instances))


def _recorded_namespaces(lab: Lab, host: str) -> list[str]:
    """qrouter-/qdhcp- namespaces the host's agent recorded in its state dir."""
    d = lab.host_dir(host)
    try:
        with open(os.path.join(d, "l3", "routers.json")) as f:
            routers = json.load(f)
    except (FileNotFoundError, ValueError):
        routers = []
    try:
        networks = os.listdir(os.path.join(d, "dhcp"))
    except FileNotFoundError:
        networks = []
    return [names.qrouter(r) for r in routers] + [names.qdhcp(n) for n in networks]


def _cleanup_host(lab: Lab, host: str, errors: list[str], say: Say) -> None:
    """dnsmasq and the namespaces the host's agent made (found in its state dir), then its OVS daemons."""
    ns = lab.host_ns(host)
    recorded = _recorded_namespaces(lab, host)
    config = HostConfig(host=host, state_dir=lab.host_dir(host))
    for step in (DhcpDriver(config, host_ns=ns).cleanup, L3Driver(config, host_ns=ns).cleanup,
                 lambda: lib_ovs.stop_daemons(lab.ovs_rundir(host)), *(partial(ip.delete_netns, n) for n in recorded)):
        try:
            step()
        except (NeutrinoError, OSError) as e:
            errors.append(f"{host}: {e}")
            say(f"[red]cleanup of {host} failed:[/red] {e}")


def down(lab: Lab, keep_data: bool = False, say: Say = print) -> list[str]:
    """Stop guests, agents, OVS daemons and the server by their pid files; delete the lab's namespaces.

    Each step runs even when an earlier one failed; the failures are returned (and said)."""
    errors: list[str] = []

    def attempt(what: str, fn, *args) -> bool:
        try:
            fn(*args)
            return True
        except (NeutrinoError, OSError) as e:
            errors.append(f"{what}: {e}")
            say(f"[red]{what} failed:[/red] {e}")
            return False

    for name in _known_instances(lab):
        if attempt(f"instance {name}", manager.remove_guest, lab, name):
            say(f"instance {name}: guest removed")
    hosts = _known_hosts(lab)
    for host in hosts:
        if processes.agent_pid(lab, host) and attempt(f"agent on {host}", processes.stop_agent, lab, host):
            say(f"agent on {host} stopped")
    for host in hosts:
        _cleanup_host(lab, host, errors, say)
    for ns in lab_hosts.lab_namespaces(lab):
        if attempt(f"namespace {ns}", ip.delete_netns, ns):
            lib_guest.remove_netns_etc(ns)
            say(f"namespace {ns} deleted")
    settings = lab.load()
    for i in range(1, settings.servers + 1):
        if processes.server_pid(lab, i) and attempt(f"server {i}", processes.stop_server, lab, i):
            say(f"server {i} stopped" if settings.servers > 1 else "server stopped")
    if os.path.isdir(lab.postgres_dir) and attempt("PostgreSQL", postgres.stop, lab.postgres_dir):
        say("PostgreSQL stopped")
    if not keep_data and not errors and os.path.isdir(lab.state_dir):
        shutil.rmtree(lab.state_dir)
        say(f"state dir {lab.state_dir} removed")
    return errors
