"""Two servers on the lab's PostgreSQL, two emulated hosts: kill -9 the server host1's agent watches; the agent moves
to the other server without touching its wiring, an instance made through the surviving server becomes ACTIVE with a
DHCP lease (served by host1's DHCP, so host1's agent heard of it through the other server), and nothing is lost."""
from __future__ import annotations

import json
import os
import signal
import time

import pytest

from neutrino.instances.manager import Clouds
from neutrino.lab import processes
from neutrino.seed.lifecycle import wait_reachable
from neutrino.lib import ip, postgres
from labfix import down_leaves_nothing, need, neutrino, running_lab

need(("ovs-vsctl", "dnsmasq", "busybox", "dhclient", "runuser"))
try:
    postgres.bindir()
except postgres.PostgresError as e:
    pytest.skip(str(e), allow_module_level=True)


@pytest.fixture(scope="module")
def world():
    yield from running_lab("nt-servers-", "--servers", "2", "--db", "postgresql", "--hosts", "2")


def watched(clouds: Clouds, host: str) -> set[str]:
    """The server(s) the host's agents last said they watch."""
    return {(a.configuration or {}).get("server") for a in clouds.admin.network.agents(host=host)}


def test_agent_fails_over_to_the_surviving_server_and_an_instance_made_there_gets_its_lease(world, before):
    lab, settings = world.lab, world.lab.load()
    sock1, sock2 = (f"unix:{s}" for s in processes.server_sockets(lab, settings))
    survivor = Clouds.of(lab, server=2)
    assert watched(survivor, "host1") == {sock1} and watched(survivor, "host2") == {sock2}   # spread over both
    links = {n: link["index"] for n, link in ip.links(lab.host_ns("host1")).items()}
    ports = {p.id: p.status for p in survivor.admin.network.ports()}

    os.kill(processes.server_pid(lab, 1), signal.SIGKILL)
    deadline = time.monotonic() + 30
    while watched(survivor, "host1") != {sock2}:
        assert time.monotonic() < deadline, "host1's agents still do not watch server 2"
        time.sleep(0.1)
    status = neutrino("status", state_dir=world.state_dir, check=False).stdout
    assert "not running" in status and "server 2" in status

    made = neutrino("instance", "create", "vm2", "--network", "private", "--host", "host2", "--json",
                    state_dir=world.state_dir, timeout=90)
    vm2 = json.loads(made.stdout)
    assert vm2["guest_address"] == vm2["fixed_ips"][0]
    assert survivor.admin.network.get_port(vm2["port_id"]).status == "ACTIVE"

    after = {n: link["index"] for n, link in ip.links(lab.host_ns("host1")).items()}
    assert {n: after.get(n) for n in links} == links, "host1's devices were re-created after the fail-over"
    assert {p.id: p.status for p in survivor.admin.network.ports() if p.id in ports} == ports
    assert wait_reachable(lab, "host1", world.fip) == (True, True)
    assert processes.agent_pid(lab, "host1") and processes.agent_pid(lab, "host2")
    down_leaves_nothing(world, before)
