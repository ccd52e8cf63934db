"""What the acceptance tests share: a lab brought up in a throwaway state dir, the `neutrino` command run against it,
and the check that `neutrino down` leaves nothing behind."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile

import pytest

from neutrino import names
from neutrino.agent.firewall.nft_rules import is_shard
from neutrino.lab.clouds import connect
from neutrino.lab.paths import Lab
from neutrino.lib import ip


def need(programs: tuple[str, ...]) -> None:
    """Skip the module unless root and every program is installed."""
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)", allow_module_level=True)
    if missing := [p for p in programs if shutil.which(p) is None]:
        pytest.skip(f"missing programs: {', '.join(missing)}", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def neutrino(*args: str, state_dir: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "NEUTRINO_STATE_DIR": state_dir, "COLUMNS": "200"}
    res = subprocess.run([sys.executable, "-m", "neutrino.cli.main", *args], env=env, capture_output=True,
                         text=True, timeout=timeout)
    if check and res.returncode != 0:
        raise AssertionError(f"neutrino {' '.join(args)} exited {res.returncode}:\n{res.stdout}\n{res.stderr}")
    return res


def our_pids(marker: str) -> set[int]:
    """Processes whose command line names marker (a lab's state dir), this one excepted."""
    out = set()
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        out.add(int(d))
            except OSError:
                pass
    return out - {os.getpid()}


class World:
    """A running lab and the ids its checks need."""

    def __init__(self, state_dir: str, up_output: str):
        self.state_dir = state_dir
        self.lab = Lab(state_dir)
        self.up_output = up_output
        self.demo, self.admin = connect(self.lab, "demo"), connect(self.lab, "admin")
        self.router = self.demo.network.find_router("router1", ignore_missing=False)
        self.private = self.demo.network.find_network("private", ignore_missing=False)
        self.vm_port = next(iter(self.demo.network.ports(name="vm1", device_owner="compute:nova")))
        self.dhcp_port = next(iter(self.admin.network.ports(network_id=self.private.id, device_owner="network:dhcp")))
        self.fip = next(iter(self.demo.network.ips(port_id=self.vm_port.id))).floating_ip_address

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        """A command inside the emulated host (`neutrino shell -- CMD`)."""
        return neutrino("shell", "--", *cmd, state_dir=self.state_dir, check=check)

    def shell(self, *cmd: str) -> str:
        return self.run(*cmd).stdout


def running_lab(prefix: str, *up_args: str):
    """`neutrino up` in a throwaway state dir on free ports; yields the World, always ends with `neutrino down`."""
    state_dir = tempfile.mkdtemp(prefix=prefix)
    try:
        up = neutrino("up", *up_args, "--port", str(free_port()), "--identity-port", str(free_port()),
                      state_dir=state_dir, timeout=120)
        yield World(state_dir, up.stdout)
    finally:
        neutrino("down", state_dir=state_dir, check=False)
        shutil.rmtree(state_dir, ignore_errors=True)


def down_leaves_nothing(world: World, links_before: set[str]) -> None:
    """`neutrino down`, then: none of the lab's namespaces, root-namespace devices, processes or files remain."""
    lab_ns = {world.lab.host_ns("host1"), world.lab.guest_ns("vm1"), names.qrouter(world.router.id),
              names.qdhcp(world.private.id)}
    assert lab_ns <= set(ip.list_netns())
    neutrino("down", state_dir=world.state_dir)
    assert not lab_ns & set(ip.list_netns())
    assert not [ns for ns in ip.list_netns() if world.lab.owns_ns(ns)]
    assert set(ip.links()) - links_before == set()
    assert our_pids(world.state_dir) == set()
    assert not os.path.exists(world.state_dir)


def ingress_chain(world: World) -> str:
    """vm1's ingress chain under the lab's backends (the chain that allows tcp/22 and drops the rest)."""
    settings, pid = world.lab.load(), world.vm_port.id
    if settings.firewall == "nftables":
        return f"i{names.sg_dev(pid)}"
    return names.sg_chain("i", pid, names.IPT_PREFIX if settings.l2 == "ovs" else names.IPT_LB_PREFIX)


def hood_and_trace_agree_with_traffic(world: World) -> None:
    """`hood vm1` finds no drift; `trace external FIP` delivers tcp/22 and drops tcp/2323 at vm1's ingress chain
    (the seed's group allows 22 only); a real connection from the outside (the host namespace, 172.24.4.1) is
    answered exactly when the trace delivers: the SSH banner on 22, no answer at all (not even a reset) on 2323."""
    hood = neutrino("hood", "vm1", "--json", state_dir=world.state_dir, check=False)
    assert hood.returncode == 0, hood.stdout + hood.stderr
    report = json.loads(hood.stdout)
    assert report["drift"] == 0 and report["object"]["id"] == world.vm_port.id
    for port, status in ((22, 0), (2323, 2)):
        res = neutrino("trace", "external", world.fip, "--proto", "tcp", "--port", str(port), "--json",
                       state_dir=world.state_dir, check=False)
        assert res.returncode == status, res.stdout + res.stderr
        trace = json.loads(res.stdout)
        assert trace["unknown"] == [], trace["unknown"]
        real = world.run("nc", "-z", "-v", "-w", "1", world.fip, str(port), check=False)
        answered = real.returncode == 0 or "refused" in real.stdout + real.stderr
        assert answered == (trace["verdict"] == "delivered"), (port, trace["verdict"], real.stdout + real.stderr)
        if status == 2:
            assert trace["at"] == ingress_chain(world), trace


def _delete_ssh_rule(world: World) -> None:
    chain = ingress_chain(world)
    if world.lab.load().firewall == "iptables":
        world.run("iptables", "-D", chain, "-p", "tcp", "-m", "tcp", "--dport", "22", "-j", "RETURN")
        return
    tables = [line.split()[2] for line in world.shell("nft", "list", "tables", "inet").splitlines()]
    table = next(t for t in tables if is_shard(t) and f"chain {chain} " in world.shell("nft", "list", "table", "inet", t))
    listing = world.shell("nft", "-a", "list", "chain", "inet", table, chain)
    handle = next(line.rsplit("handle ", 1)[1] for line in listing.splitlines() if "tcp dport 22" in line)
    world.run("nft", "delete", "rule", "inet", table, chain, "handle", handle.strip())


def deleted_rule_is_drift(world: World) -> None:
    """vm1's tcp/22 rule deleted behind the agent's back: `hood vm1` exits 1 with the chain in drift. (The agent's
    resync puts the rule back within its interval; should it win the race, the rule is deleted again.)"""
    for _ in range(3):
        _delete_ssh_rule(world)
        res = neutrino("hood", "vm1", "--json", state_dir=world.state_dir, check=False)
        if res.returncode != 0:
            break
    assert res.returncode == 1, res.stdout + res.stderr
    report = json.loads(res.stdout)
    drifted = {i["name"] for s in report["sections"] for i in s["items"]
               if any(r["state"] != "ok" for r in i.get("rules", []))}
    assert drifted == {ingress_chain(world)}, report
