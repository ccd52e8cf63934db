"""Fullstack fixtures: a real `neutrino server` process and real `neutrino agent` processes, each inside a throwaway
network namespace, talking over the server's Unix socket (a file, so it crosses namespaces); guests whose eth0 is
the veth peer of tap<id> in the agent's host namespace.

Nothing listens in the caller's namespace: the test reaches the API through the same Unix socket. Teardown (also
after a failure) stops the processes by pid, removes what the agent made outside its host namespace (qdhcp-/qrouter-
namespaces and dnsmasq of the networks and routers this test created, through the drivers' own cleanup, then a
backstop), stops the OVS daemons by pidfile and deletes every namespace and directory made here.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from neutrino import names
from neutrino.agent.dhcp import DhcpDriver
from neutrino.agent.driver import HostConfig
from neutrino.agent.l3 import L3Driver
from neutrino.lib import dnsmasq, ip, ovs, proc

TOKEN = "agent-secret"
RESYNC = 2          # seconds between the agent's periodic full syncs in these tests
BIN = os.path.join(os.path.dirname(sys.executable), "neutrino")


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")


def rand_name(prefix: str = "nt-") -> str:
    return prefix + uuid.uuid4().hex[:8]


def neutrino_argv(*args: str) -> list[str]:
    return [BIN, *args] if os.path.exists(BIN) else [sys.executable, "-m", "neutrino.cli.main", *args]


def in_netns(ns: str, argv: list[str]) -> list[str]:
    """Run argv in a network namespace only. Not `ip netns exec`: that also gives the program a private mount
    namespace, so the qdhcp-/qrouter- namespaces an agent creates (bind mounts under /run/netns) would be visible
    to nobody else, not even to the same agent after a restart."""
    return ["nsenter", f"--net={os.path.join(ip.NETNS_DIR, ns)}", *argv]


def wait_for(what: str, fn, timeout: float = 30.0, interval: float = 0.1):
    """Poll fn() until it returns something truthy; fail with `what` after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class Process:
    """A program we started (log in a file); stopped only by its own pid."""

    def __init__(self, argv: list[str], log: str):
        self.argv, self.log = argv, log
        self._log_file = open(log, "ab")
        self.popen = subprocess.Popen(argv, stdout=self._log_file, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        """Signal it and wait; SIGKILL when it does not end in time. Returns the exit code."""
        if self.alive():
            proc.terminate(self.pid, sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.terminate(self.pid, signal.SIGKILL)
                self.popen.wait(5)
        self._log_file.close()
        return self.popen.returncode

    def output(self) -> str:
        with open(self.log, errors="replace") as f:
            return f.read()


class Agent:
    """`neutrino agent` run inside its host namespace (nsenter execs it: the pid is the agent's)."""

    def __init__(self, lab: Lab, host_ns: str, host: str, l2: str, firewall: str, tunnel_ip: str | None):
        self.lab, self.host_ns, self.host, self.l2, self.firewall = lab, host_ns, host, l2, firewall
        self.tunnel_ip = tunnel_ip
        self.state_dir = lab.mkdir(f"agent-{host}")
        self.ovs_rundir = os.path.join(self.state_dir, "ovs") if l2 == "ovs" else None
        self.process: Process | None = None
        self.starts = 0

    def argv(self) -> list[str]:
        """Some settings through a config file (and a short resync, so drift repair shows fast), the rest as flags."""
        conf = os.path.join(self.state_dir, "agent.yaml")
        with open(conf, "w") as f:
            f.write(f"agent:\n  server: unix:{self.lab.socket}\n  token: {TOKEN}\n  resync_interval: {RESYNC}\n")
        args = ["agent", "--config", conf, "--host", self.host, "--l2", self.l2, "--firewall", self.firewall,
                "--state-dir", self.state_dir]
        if self.ovs_rundir:
            args += ["--ovs-rundir", self.ovs_rundir]
        if self.tunnel_ip:
            args += ["--tunnel-ip", self.tunnel_ip]
        return in_netns(self.host_ns, neutrino_argv(*args))

    def start(self) -> Agent:
        self.starts += 1
        self.process = Process(self.argv(), os.path.join(self.state_dir, f"agent-{self.starts}.log"))
        return self

    def host_config(self) -> HostConfig:
        return HostConfig(host=self.host, state_dir=self.state_dir, server=f"unix:{self.lab.socket}", token=TOKEN)

    def teardown(self, network_ids: set[str], router_ids: set[str]) -> None:
        if self.process:
            self.process.stop()
        config = self.host_config()
        for driver in (L3Driver(config, host_ns=self.host_ns), DhcpDriver(config, host_ns=self.host_ns)):
            try:
                driver.cleanup()
            except Exception as e:  # noqa: BLE001 - the backstop below still runs
                print(f"cleanup of {driver.name} failed: {e}")
        dhcp_root = os.path.join(self.state_dir, "dhcp")
        for net_id in network_ids:
            dnsmasq.stop(os.path.join(dhcp_root, net_id))
            ip.delete_netns(names.qdhcp(net_id))
        for router_id in router_ids:
            ip.delete_netns(names.qrouter(router_id))
        if self.ovs_rundir:
            ovs.stop_daemons(self.ovs_rundir)


class Lab:
    """One server, its host namespaces and agents, guests; `close` removes all of it."""

    def __init__(self):
        self.root = f"/tmp/{rand_name()}"          # short: Unix socket paths are limited to 108 bytes
        os.makedirs(self.root)
        self.namespaces: list[str] = []
        self.agents: list[Agent] = []
        self.network_ids: set[str] = set()
        self.router_ids: set[str] = set()
        self.socket = os.path.join(self.root, "s.sock")
        self.server: Process | None = None
        self.api: httpx.Client | None = None

    def mkdir(self, name: str) -> str:
        path = os.path.join(self.root, name)
        os.makedirs(path, exist_ok=True)
        return path

    def netns(self) -> str:
        name = rand_name()
        self.namespaces.append(name)
        ip.ensure_netns(name)
        return name

    # --- processes ----------------------------------------------------------------------------------------------

    def start_server(self) -> httpx.Client:
        """`neutrino server` (noauth, SQLite) inside its own namespace; the API client goes through the socket."""
        ns = self.netns()
        state = self.mkdir("server")
        argv = in_netns(ns, neutrino_argv(
            "server", "--auth", "noauth", "--state-dir", state, "--port", "9696", "--unix-socket", self.socket,
            "--agent-token", TOKEN, "--log-level", "warning"))
        self.server = Process(argv, os.path.join(self.root, "server.log"))
        self.api = httpx.Client(transport=httpx.HTTPTransport(uds=self.socket), base_url="http://neutrino",
                                timeout=30)

        def ready():
            if not self.server.alive():
                pytest.fail(f"server exited:\n{self.server.output()}")
            try:
                return self.api.get("/").status_code == 200
            except httpx.TransportError:
                return False
        wait_for("the server to answer", ready, timeout=60)
        return self.api

    def agent(self, l2: str, firewall: str, host: str | None = None, tunnel_ip: str | None = None) -> Agent:
        """An agent in a new host namespace; a tunnel IP is put on the host's lo (the linuxbridge backend realizes
        vxlan networks, the server's default, only with a tunnel IP)."""
        ns = self.netns()
        if tunnel_ip:
            ip.ensure_addresses("lo", [f"{tunnel_ip}/32"], ns, exclusive=False)
        a = Agent(self, ns, host or rand_name("host-"), l2, firewall, tunnel_ip)
        self.agents.append(a)
        return a

    # --- API helpers (admin, noauth) ----------------------------------------------------------------------------

    def post(self, path: str, body: dict) -> dict:
        r = self.api.post(path, json=body)
        assert r.status_code == 201, r.text
        return next(iter(r.json().values()))

    def network(self, cidr: str) -> tuple[dict, dict]:
        net = self.post("/v2.0/networks", {"network": {"name": rand_name("net-")}})
        self.network_ids.add(net["id"])
        subnet = self.post("/v2.0/subnets", {"subnet": {"network_id": net["id"], "cidr": cidr, "ip_version": 4}})
        return net, subnet

    def port(self, net_id: str, host: str) -> dict:
        return self.post("/v2.0/ports", {"port": {"network_id": net_id, "binding:host_id": host,
                                                  "device_owner": "compute:nova", "device_id": str(uuid.uuid4())}})

    def port_status(self, port_id: str) -> str | None:
        r = self.api.get(f"/v2.0/ports/{port_id}")
        return r.json()["port"]["status"] if r.status_code == 200 else None

    def agents_alive(self, host: str) -> list[dict]:
        r = self.api.get("/v2.0/agents", params={"host": host})
        return [a for a in r.json()["agents"] if a["alive"]]

    # --- guests -------------------------------------------------------------------------------------------------

    def guest(self, host_ns: str, port: dict, prefixlen: int = 24) -> str:
        """A guest namespace whose eth0 (the port's MAC and first fixed IP) is the peer of tap<id> in host_ns."""
        g = self.netns()
        ip.ensure_veth(names.tap(port["id"]), "eth0", host_ns, g, peer_mac=port["mac_address"])
        ip.ensure_addresses("eth0", [f"{port['fixed_ips'][0]['ip_address']}/{prefixlen}"], g)
        return g

    def close(self) -> None:
        for a in self.agents:          # shown by pytest only when the test failed
            for n in range(1, a.starts + 1):
                log = os.path.join(a.state_dir, f"agent-{n}.log")
                print(f"--- {log} (last 40 lines)\n" + "".join(open(log, errors="replace").readlines()[-40:]))
            a.teardown(self.network_ids, self.router_ids)
        if self.api:
            self.api.close()
        if self.server:
            self.server.stop()
        for name in reversed(self.namespaces):
            ip.delete_netns(name)
        shutil.rmtree(self.root, ignore_errors=True)


def ping(ns: str, address: str, count: int = 1, timeout: int = 2) -> bool:
    return proc.run(["ping", "-c", str(count), "-W", str(timeout), address], netns=ns, check=False).returncode == 0


@pytest.fixture
def lab():
    need_root()
    made = Lab()
    try:
        yield made
    finally:
        made.close()
