"""A real server and a real agent process: ports bound through the API turn ACTIVE and their guests ping each other;
the agent killed with -9 and restarted converges without recreating or duplicating anything and without cutting
traffic; a deleted port's devices go; SIGTERM ends the agent and leaves the wiring in place."""
from __future__ import annotations

import os
import signal
import time
from collections import Counter

import pytest

from neutrino import names
from neutrino.lib import ip, proc
from fullfix import RESYNC, lab, ping, wait_for  # noqa: F401 - lab is a fixture

BACKENDS = [("ovs", "iptables"), ("linuxbridge", "nftables")]


def firewall_rules(host_ns: str, firewall: str) -> list[str]:
    if firewall == "iptables":
        text = proc.output(["iptables-save", "-t", "filter"], netns=host_ns)
        return [line for line in text.splitlines() if "neutron-" in line]
    return [line.strip() for line in proc.output(["nft", "list", "ruleset"], netns=host_ns).splitlines()
            if line.strip() and not line.strip().startswith(("#", "handle"))]


def chains(rules: list[str]) -> set[str]:
    """Chain names in iptables-save lines (`:NAME ...`) or an nft listing (`chain NAME {`)."""
    out = set()
    for line in rules:
        words = line.split()
        if line.startswith(":"):
            out.add(words[0][1:])
        elif words[0] == "chain":
            out.add(words[1])
    return out


def dnsmasq_pids(state_dir: str, net_id: str) -> list[int]:
    """Every live dnsmasq serving this network (by its config dir on the command line)."""
    net_dir = os.path.join(state_dir, "dhcp", net_id)
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            argv = proc.cmdline(int(entry))
            if argv and os.path.basename(argv[0]) == "dnsmasq" and any(net_dir in a for a in argv):
                out.append(int(entry))
    return out


def snapshot(agent, net_id: str) -> dict:
    """What the agent made, with identities (ifindex, pid) so a re-creation shows."""
    links = {n: l["index"] for n, l in ip.links(agent.host_ns).items()}
    qdhcp = {n: l["index"] for n, l in ip.links(names.qdhcp(net_id)).items()}
    return {"links": links, "qdhcp": qdhcp, "dnsmasq": dnsmasq_pids(agent.state_dir, net_id),
            "rules": firewall_rules(agent.host_ns, agent.firewall)}


def port_devices(l2: str, port_id: str) -> list[str]:
    if l2 == "ovs":
        return [names.qbr(port_id), names.qvb(port_id), names.qvo(port_id)]
    return []


@pytest.mark.parametrize("l2,firewall", BACKENDS)
def test_agent_wires_ports_survives_kill_9_and_unplugs_deleted_ports(lab, l2, firewall):  # noqa: F811
    lab.start_server()
    agent = lab.agent(l2, firewall, tunnel_ip="192.0.2.10" if l2 == "linuxbridge" else None).start()
    wait_for("the agent to register", lambda: lab.agents_alive(agent.host))
    net, _ = lab.network("10.0.0.0/24")
    p1, p2 = lab.port(net["id"], agent.host), lab.port(net["id"], agent.host)
    assert p1["binding:vif_type"] == ("ovs" if l2 == "ovs" else "bridge")
    g1, g2 = lab.guest(agent.host_ns, p1), lab.guest(agent.host_ns, p2)
    ip1, ip2 = (p["fixed_ips"][0]["ip_address"] for p in (p1, p2))
    t0 = time.monotonic()
    wait_for("both ports ACTIVE", lambda: all(lab.port_status(p["id"]) == "ACTIVE" for p in (p1, p2)))
    active_after = time.monotonic() - t0
    assert ping(g1, ip2) and ping(g2, ip1)
    assert len(dnsmasq_pids(agent.state_dir, net["id"])) == 1

    # kill -9 while a new port is being wired, then restart: converges, nothing recreated or duplicated
    before = snapshot(agent, net["id"])
    p3 = lab.port(net["id"], agent.host)
    g3 = lab.guest(agent.host_ns, p3)
    time.sleep(0.3)
    agent.process.stop(signal.SIGKILL)
    assert ping(g1, ip2), "traffic flows while the agent is down"
    agent.start()
    ip3 = p3["fixed_ips"][0]["ip_address"]
    wait_for("the new port ACTIVE after the restart", lambda: lab.port_status(p3["id"]) == "ACTIVE")
    wait_for("the restarted agent to apply", lambda: "applied" in agent.process.output(), timeout=30)
    assert ping(g3, ip1) and ping(g1, ip2)
    after = snapshot(agent, net["id"])
    for name, index in before["links"].items():
        assert after["links"].get(name) == index, f"{name} was recreated or removed by the restart"
    assert after["qdhcp"] == before["qdhcp"]
    assert after["dnsmasq"] == before["dnsmasq"], "dnsmasq was restarted or duplicated"
    dup = [r for r, n in Counter(after["rules"]).items() if n > 1 and not r.startswith(("}", "chain", "table"))]
    assert not [r for r in dup if "neutron-" in r or "tap" in r], f"duplicated rules: {dup}"
    assert chains(before["rules"]) <= chains(after["rules"])

    # drift is repaired by the periodic resync: a tap unplugged behind the agent's back, a dead dnsmasq
    ip.detach(names.tap(p1["id"]), agent.host_ns)
    old_dnsmasq = dnsmasq_pids(agent.state_dir, net["id"])
    for pid in old_dnsmasq:
        proc.terminate(pid, signal.SIGKILL)
    assert not ping(g1, ip3, timeout=1)
    wait_for("the device repaired", lambda: ping(g1, ip3, timeout=1), timeout=3 * RESYNC + 5)
    wait_for("dnsmasq restarted", lambda: (lambda p: len(p) == 1 and p != old_dnsmasq)(
        dnsmasq_pids(agent.state_dir, net["id"])), timeout=3 * RESYNC + 5)

    # a deleted port's devices go (the instance's tap stays with its owner, unplugged)
    assert lab.api.delete(f"/v2.0/ports/{p2['id']}").status_code == 204
    tap2 = names.tap(p2["id"])

    def unplugged():
        links = ip.links(agent.host_ns)
        if any(d in links for d in port_devices(l2, p2["id"])):
            return False
        rules = firewall_rules(agent.host_ns, firewall)
        return links[tap2]["master"] is None and not any(names.sg_dev(p2["id"]) in r or tap2 in r for r in rules)
    wait_for("the deleted port's devices and rules to go", unplugged, timeout=30)
    assert not ping(g2, ip1)
    assert ping(g1, ip3)

    # SIGTERM: a clean exit that removes nothing
    left = snapshot(agent, net["id"])
    assert agent.process.stop(signal.SIGTERM) == 0
    assert snapshot(agent, net["id"]) == left
    assert ping(g1, ip3)
    print(f"{l2}+{firewall}: two new ports ACTIVE {active_after:.2f} s after creation")
