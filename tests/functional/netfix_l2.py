"""Shared fixtures of the L2 functional tests: throwaway host namespaces (with their own OVS daemons), guests whose
eth0 is the veth peer of tap<id> in the host namespace, and a small builder for hand-made host views.

Everything created here is removed at teardown, also when a test fails.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass

import pytest

from neutrino import names
from neutrino.agent.driver import HostConfig
from neutrino.agent.l2.linuxbridge import LinuxBridgeL2Driver
from neutrino.agent.l2.ovs import OvsL2Driver
from neutrino.lib import ip, ovs
from neutrino.sync.schema import empty_view

BACKENDS = ("ovs", "linuxbridge")


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")


def rand_name(prefix: str = "nt-") -> str:
    return prefix + uuid.uuid4().hex[:8]


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Host:
    """An emulated host of one L2 backend, and what a test asks of whichever it is."""
    backend: str
    ns: str
    rundir: str | None           # the OVS daemons' (ovs only)

    @property
    def userspace_ovs(self) -> bool:
        """Whether namespace-side devices need tx checksum offload off (what HostConfig.userspace_ovs says)."""
        return self.backend == "ovs" and ovs.datapath_type() == "netdev"

    def driver(self, **kw):
        if self.backend == "ovs":
            cfg = HostConfig(host="host1", state_dir=self.rundir, ovs_db=ovs.db_url(self.rundir), **kw)
            return OvsL2Driver(cfg, netns=self.ns)
        kw.setdefault("tunnel_ip", "10.255.1.1")
        return LinuxBridgeL2Driver(HostConfig(host="host1", state_dir="/nonexistent", **kw), netns=self.ns)

    def plugged(self, port: dict) -> bool:
        """Whether the backend has the port's device wired into its network."""
        links = ip.links(self.ns)
        if self.backend == "ovs":
            ports = subprocess.run(["ovs-vsctl", f"--db={ovs.db_url(self.rundir)}", "list-ports", "br-int"],
                                   capture_output=True, text=True, check=True).stdout.split()
            if port["kind"] != "instance":
                return port["device"] in ports
            qbr = links.get(names.qbr(port["id"]))
            return names.qvo(port["id"]) in ports and bool(qbr) and links[port["device"]]["master"] == qbr["index"]
        dev, brq = links.get(port["device"]), links.get(names.brq(port["network_id"]))
        return bool(dev and brq and dev["master"] == brq["index"])

    def made(self, port: dict) -> list[str]:
        """The devices the backend made for this port alone (a Linux bridge is the network's, not the port's)."""
        pid = port["id"]
        return [names.qbr(pid), names.qvb(pid), names.qvo(pid)] if self.backend == "ovs" else []

    def made_for(self, port: dict) -> str:
        """A device the backend made for this port (deleting it behind the agent breaks the port)."""
        return names.qvb(port["id"]) if self.backend == "ovs" else names.brq(port["network_id"])


class Namespaces:
    """Namespaces (and OVS run dirs) made by one test or module; `close` removes them all."""

    def __init__(self):
        self.names: list[str] = []
        self.rundirs: list[str] = []

    def add(self, name: str | None = None) -> str:
        name = name or rand_name()
        ip.ensure_netns(name)
        self.names.append(name)
        return name

    def ovs_host(self) -> tuple[str, str]:
        """A host namespace with its own ovsdb-server and ovs-vswitchd; returns (netns, rundir)."""
        ns = self.add()
        rundir = os.path.join("/tmp", ns)     # short: unix socket paths are limited to 108 bytes
        self.rundirs.append(rundir)
        ovs.start_daemons(rundir, ns)
        return ns, rundir

    def l2_host(self, backend: str) -> Host:
        """A host namespace for an L2 backend: with its own OVS daemons for ovs, bare for linuxbridge."""
        return Host("ovs", *self.ovs_host()) if backend == "ovs" else Host(backend, self.add(), None)

    def guest(self, host_ns: str, port: dict, cidr: str) -> str:
        """A guest namespace whose eth0 (the port's MAC, address cidr) is the peer of tap<id> in host_ns."""
        g = self.add()
        ip.ensure_veth(port["device"], "eth0", host_ns, g, peer_mac=port["mac_address"])
        ip.ensure_addresses("eth0", [cidr], g)
        return g

    def close(self) -> None:
        for rundir in self.rundirs:
            ovs.stop_daemons(rundir)
            shutil.rmtree(rundir, ignore_errors=True)
        for name in reversed(self.names):
            ip.delete_netns(name)


@pytest.fixture(scope="module")
def l2_hosts():
    """Emulated hosts by L2 backend, made on first use and shared by a module's tests (OVS daemons take seconds to
    start and stop); each test removes what it made in them."""
    need_root()
    made, hosts = Namespaces(), {}

    def get(backend: str) -> Host:
        if backend not in hosts:
            hosts[backend] = made.l2_host(backend)
        return hosts[backend]
    try:
        yield get
    finally:
        made.close()


@pytest.fixture
def nets():
    need_root()
    made = Namespaces()
    try:
        yield made
    finally:
        made.close()


class ViewBuilder:
    """Builds a host view (sync/schema.py) by hand: networks, then ports on them."""

    def __init__(self, host: str = "host1"):
        self.view = empty_view(host, revision=1)

    def network(self, network_type: str = "vxlan", segmentation_id: int | None = None,
                physical_network: str | None = None, mtu: int = 1500, net_id: str | None = None) -> str:
        net_id = net_id or new_id()
        if network_type == "vxlan" and segmentation_id is None:
            segmentation_id = 1000 + len(self.view["networks"])
        self.view["networks"][net_id] = {
            "id": net_id, "name": net_id[:8], "mtu": mtu, "external": network_type == "flat", "subnets": [],
            "segment": {"network_type": network_type, "segmentation_id": segmentation_id,
                        "physical_network": physical_network}}
        return net_id

    def port(self, net_id: str, ip_address: str = "10.0.0.2", kind: str = "instance",
             port_id: str | None = None, admin_state_up: bool = True) -> dict:
        port_id = port_id or new_id()
        mac = "fa:16:3e:" + ":".join(port_id.replace("-", "")[i:i + 2] for i in (0, 2, 4))
        instance = kind == "instance"
        port = {"id": port_id, "network_id": net_id, "kind": kind,
                "device": names.tap(port_id) if instance else names.ns_peer(port_id),
                "ns_device": None if instance else names.tap(port_id), "mac_address": mac,
                "fixed_ips": [{"subnet_id": "", "ip_address": ip_address, "prefixlen": 24, "cidr": "",
                               "gateway_ip": None}],
                "admin_state_up": admin_state_up, "device_owner": "compute:nova" if instance else "network:dhcp",
                "device_id": "", "port_security_enabled": True, "security_groups": [],
                "allowed_address_pairs": [], "mtu": self.view["networks"][net_id]["mtu"]}
        self.view["ports"].append(port)
        return port

    def remove_port(self, port_id: str) -> None:
        self.view["ports"] = [p for p in self.view["ports"] if p["id"] != port_id]

    def bump(self) -> dict:
        self.view["revision"] += 1
        return self.view


def ping(ns: str, dst: str, count: int = 2, wait: float = 2) -> bool:
    return subprocess.run(["ip", "netns", "exec", ns, "ping", "-c", str(count), "-i", "0.2", "-W", str(wait), dst],
                          capture_output=True).returncode == 0


def tcp_transfer(server_ns: str, server_ip: str, client_ns: str, nbytes: int = 300_000, port: int = 5001) -> int:
    """Send nbytes over TCP with nc from client_ns to a listener in server_ns; returns the bytes received."""
    srv = subprocess.Popen(["ip", "netns", "exec", server_ns, "nc", "-l", "-p", str(port)],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):   # wait for the listener
            if _listening(server_ns, port):
                break
            time.sleep(0.05)
        subprocess.run(["ip", "netns", "exec", client_ns, "nc", "-N", "-w", "3", server_ip, str(port)],
                       input=b"x" * nbytes, capture_output=True, timeout=15)
        try:
            out, _ = srv.communicate(timeout=5)
        except subprocess.TimeoutExpired:   # nothing (or not all) arrived: count what did
            srv.kill()
            out, _ = srv.communicate()
        return len(out)
    finally:
        if srv.poll() is None:
            srv.kill()
            srv.wait()


def _listening(ns: str, port: int) -> bool:
    out = subprocess.run(["ip", "netns", "exec", ns, "ss", "-ltnH", f"sport = :{port}"],
                         capture_output=True, text=True).stdout
    return bool(out.strip())
