"""Address scopes on the real kernel: a router routes a subnet of the external network's scope out without NAT,
SNATs a subnet of another scope, keeps east-west traffic inside a scope, and a floating IP still crosses scopes."""
from __future__ import annotations

import pytest

from netfix_l3 import GW_IP, fip, l2_hosts, lab, router  # noqa: F401 - lab and l2_hosts are fixtures
from neutrino import names
from neutrino.lib import iptables, nsocket, proc
from test_l3 import peer_seen

pytestmark = pytest.mark.kernel
OUTSIDE = "172.24.4.1"          # br-ex in the host namespace: the upstream router of the external network


def scope(r: dict, private: str | None, private2: str | None, public: str | None) -> None:
    by_net = {"private": private, "private2": private2, "public": public}
    for p in r["interfaces"] + [r["gateway"]]:
        p["address_scopes"] = {"4": by_net[p["network_id"]], "6": None}


def reaches(lab, client: str, server: str, address: str, port: int) -> bool:
    srv = nsocket.listen_tcp(lab.guests[server], address, port)
    try:
        return proc.run(["nc", "-z", "-w", "2", address, str(port)], netns=lab.guests[client],
                        check=False).returncode == 0
    finally:
        srv.close()


def test_same_scope_is_routed_other_scope_is_nated(lab):
    r = router()
    scope(r, "scope-a", "scope-b", "scope-a")
    r["floating_ips"] = [fip("172.24.4.50", "10.0.1.3")]
    lab.sync(r)
    lab.guest("vm1", "private", "10.0.0.3")
    lab.guest("vm2", "private2", "10.0.1.3")
    lab.guest("vm3", "private2", "10.0.1.4")
    lab.sh(lab.host, "ip", "route", "replace", "10.0.0.0/24", "via", GW_IP)     # the upstream learns scope-a
    ns = names.qrouter(r["id"])
    assert not lab.sync(r).changed                                              # rules as iptables-save prints them
    # out to the external network: scope-a keeps its address, scope-b is SNATed (to the gateway, or to its FIP)
    assert peer_seen(lab.host, OUTSIDE, 8001, lab.guests["vm1"], OUTSIDE) == "10.0.0.3"
    assert peer_seen(lab.host, OUTSIDE, 8002, lab.guests["vm3"], OUTSIDE) == GW_IP
    assert peer_seen(lab.host, OUTSIDE, 8010, lab.guests["vm2"], OUTSIDE) == "172.24.4.50"
    # from outside: scope-a's address is reachable as it is; scope-b only through its floating IP
    assert peer_seen(lab.guests["vm1"], "10.0.0.3", 8003, lab.host, "10.0.0.3") == OUTSIDE
    assert peer_seen(lab.guests["vm2"], "10.0.1.3", 8004, lab.host, "172.24.4.50") == OUTSIDE
    # east-west between scopes is dropped by the scope marks
    assert not reaches(lab, "vm1", "vm2", "10.0.1.3", 8005)
    assert not reaches(lab, "vm2", "vm1", "10.0.0.3", 8006)
    qr2 = r["interfaces"][1]["ns_device"]
    drops = iptables.parse(iptables.save("filter", ns))
    assert f"-o {qr2} -m mark ! --mark 0x4010000/0xffff0000 -j DROP" in drops["neutron-l3-agent-scope"]
    nat = iptables.parse(iptables.save("nat", ns))["neutron-l3-agent-snat"]
    assert nat[1] == f"-o {r['gateway']['ns_device']} -m connmark --mark 0x4000000/0xffff0000 -j ACCEPT"

    # private2 joins scope-a: east-west flows and it leaves un-NATed too
    scope(r, "scope-a", "scope-a", "scope-a")
    lab.sh(lab.host, "ip", "route", "replace", "10.0.1.0/24", "via", GW_IP)
    assert lab.sync(r).changed
    assert reaches(lab, "vm1", "vm2", "10.0.1.3", 8007)
    assert peer_seen(lab.host, OUTSIDE, 8008, lab.guests["vm3"], OUTSIDE) == "10.0.1.4"

    # no scopes at all: no scope rules are left, and everything is SNATed again as before
    scope(r, None, None, None)
    assert lab.sync(r).changed
    assert not [c for c in iptables.parse(iptables.save("mangle", ns)) if c.startswith(names.L3_PREFIX)]
    assert "neutron-l3-agent-scope" not in iptables.parse(iptables.save("filter", ns))
    assert peer_seen(lab.host, OUTSIDE, 8009, lab.guests["vm1"], OUTSIDE) == GW_IP
    assert not lab.sync(r).changed
