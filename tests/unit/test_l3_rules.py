"""Pure logic of the L3 driver: the NAT/filter tables and routes a router view asks for."""
from __future__ import annotations

from neutrino.agent import l3
from neutrino.lib import iptables


def port(dev: str, address: str, plen: int, gw: str | None) -> dict:
    return {"port_id": dev, "network_id": "n", "mac_address": "fa:16:3e:00:00:01", "ns_device": dev,
            "device": "ns-" + dev[3:], "mtu": 1500,
            "fixed_ips": [{"subnet_id": "s", "ip_address": address, "prefixlen": plen, "cidr": "x", "gateway_ip": gw}]}


def router(**kw) -> dict:
    gw = port("qg-1", "172.24.4.10", 24, "172.24.4.1")
    gw["enable_snat"] = True
    r = {"id": "r1", "name": "r", "admin_state_up": True, "interfaces": [port("qr-1", "10.0.0.1", 24, "10.0.0.1")],
         "gateway": gw, "routes": [], "floating_ips": [], "port_forwardings": []}
    r.update(kw)
    return r


FIP = {"id": "f1", "floating_ip_address": "172.24.4.227", "fixed_ip_address": "10.0.0.3", "port_id": "p"}
PF = {"id": "pf", "floating_ip_address": "172.24.4.30", "protocol": "tcp", "internal_ip_address": "10.0.0.5",
      "internal_port": 22, "external_port": 2222}


def test_nat_table_has_the_seed_rules():
    t = l3.nat_table(router(floating_ips=[FIP]), 9697)
    assert t.chains["neutron-l3-agent-PREROUTING"] == [
        "-d 169.254.169.254/32 -i qr-+ -p tcp -m tcp --dport 80 -j REDIRECT --to-ports 9697",
        "-d 172.24.4.227/32 -j DNAT --to-destination 10.0.0.3"]
    assert t.chains["neutron-l3-agent-OUTPUT"] == ["-d 172.24.4.227/32 -j DNAT --to-destination 10.0.0.3"]
    assert t.chains["neutron-l3-agent-float-snat"] == ["-s 10.0.0.3/32 -j SNAT --to-source 172.24.4.227"]
    assert t.chains["neutron-l3-agent-snat"] == ["-j neutron-l3-agent-float-snat",
                                                 "-o qg-1 -j SNAT --to-source 172.24.4.10"]
    assert t.chains["neutron-l3-agent-POSTROUTING"] == ["! -o qg-1 -m conntrack ! --ctstate DNAT -j ACCEPT"]
    assert t.jumps["POSTROUTING"] == ["-j neutron-l3-agent-POSTROUTING", "-j neutron-l3-agent-snat"]


def test_no_default_snat_when_disabled_or_without_gateway():
    r = router()
    r["gateway"]["enable_snat"] = False
    assert l3.nat_table(r, 9697).chains["neutron-l3-agent-snat"] == ["-j neutron-l3-agent-float-snat"]
    t = l3.nat_table(router(gateway=None), 9697)
    assert t.chains["neutron-l3-agent-POSTROUTING"] == []
    assert t.chains["neutron-l3-agent-snat"] == ["-j neutron-l3-agent-float-snat"]


def test_port_forwarding_rules_and_addresses():
    r = router(port_forwardings=[PF, dict(PF, id="pf2", external_port=2223, internal_port=23)])
    t = l3.nat_table(r, 9697)
    rule = "-d 172.24.4.30/32 -p tcp -m tcp --dport 2222 -j DNAT --to-destination 10.0.0.5:22"
    assert rule in t.chains["neutron-l3-agent-PREROUTING"] and rule in t.chains["neutron-l3-agent-OUTPUT"]
    assert l3.fip_addresses(r) == ["172.24.4.30"]


def test_unchanged_router_plans_nothing():
    want = l3.nat_table(router(floating_ips=[FIP]), 9697)
    saved = [f":{c} - [0:0]" for c in want.chains]
    saved += [f"-A {c} {r}" for c, rules in want.jumps.items() for r in rules]
    saved += [f"-A {c} {r}" for c, rules in want.chains.items() for r in rules]
    assert iptables.plan(iptables.parse("\n".join(saved)), want, l3.PREFIX) == []
    assert iptables.plan(iptables.parse("\n".join(saved)), l3.nat_table(router(), 9697), l3.PREFIX) != []


def test_filter_lets_only_redirected_traffic_reach_the_proxy():
    rules = l3.filter_table(9697).chains["neutron-l3-agent-INPUT"]
    assert rules == ["-p tcp -m tcp --dport 9697 -m conntrack --ctstate DNAT -j ACCEPT",
                     "-p tcp -m tcp --dport 9697 -j DROP"]


def test_routes_default_and_extra():
    r = router(routes=[{"destination": "192.168.7.1/24", "nexthop": "10.0.0.254"}])
    assert l3.wanted_routes(r) == {"0.0.0.0/0": "172.24.4.1", "192.168.7.0/24": "10.0.0.254"}
    assert l3.wanted_routes(router(gateway=None)) == {}
