"""Pure pieces of QoS and metering: what the agent wants on a tap and in a router's filter table, counters parsed
from iptables-save, and hood's items for both."""
from __future__ import annotations

from neutrino import names
from neutrino.agent import metering
from neutrino.agent import qos
from neutrino.hood import services

PORT = "0b0c3ad7-3b0f-4a85-9d19-0d4b1b0a3a11"
LABEL = "6e57b4c9-eda2-4ef6-8e13-c9cbcfccfb4c"


def view_with(rules: list[dict], kind: str = "instance") -> dict:
    return {"ports": [{"id": PORT, "kind": kind, "device": names.tap(PORT), "qos": rules}]}


def test_wanted_limits_default_burst_and_dscp():
    rules = [{"type": "bandwidth_limit", "direction": "egress", "max_kbps": 10000, "max_burst_kbps": 0},
             {"type": "bandwidth_limit", "direction": "ingress", "max_kbps": 2000, "max_burst_kbps": 400},
             {"type": "dscp_marking", "dscp_mark": 26}, {"type": "minimum_bandwidth", "direction": "egress",
                                                          "min_kbps": 1}]
    q = qos.wanted(view_with(rules))[names.tap(PORT)]
    assert q.egress == (10000, 8000 * 1000 // 8)          # 80 % of the rate, in bytes
    assert q.ingress == (2000, 400 * 1000 // 8) and q.dscp == 26
    assert qos.wanted(view_with(rules, kind="dhcp")) == {} and qos.wanted(view_with([])) == {}
    t = qos.mangle_table([q])
    chain = f"neutron-qos-o{names.sg_dev(PORT)}"
    assert t.chains == {"neutron-qos-POSTROUTING": [f"-m physdev --physdev-in {names.tap(PORT)} --physdev-is-bridged "
                                                    f"-j {chain}"], chain: ["-j DSCP --set-dscp 0x1a"]}
    assert qos.mangle_table([qos.PortQos(PORT, "tapx", (1, 1), None, None)]).chains == {}


def router(labels: list[dict], gateway: bool = True) -> dict:
    return {"id": "r1", "gateway": {"ns_device": "qg-1"} if gateway else None, "metering_labels": labels}


def label_rule(direction, remote=None, src=None, dst=None, excluded=False) -> dict:
    return {"direction": direction, "remote_ip_prefix": remote, "source_ip_prefix": src,
            "destination_ip_prefix": dst, "excluded": excluded}


def test_metering_tables_follow_neutrons_layout():
    lb = {"id": LABEL, "name": "l", "rules": [label_rule("ingress", remote="10.0.0.0/8"),
                                              label_rule("egress", src="10.1.0.0/16", dst="0.0.0.0/0"),
                                              label_rule("egress", remote="2001:db8::/32"),
                                              label_rule("egress", remote="10.2.0.0/16", excluded=True)]}
    t4, t6 = metering.tables(router([lb]))[4], metering.tables(router([lb]))[6]
    r, l_ = metering.chain("r", LABEL), metering.chain("l", LABEL)
    assert len(r) == 28 and t4.jumps == {"FORWARD": ["-j neutron-meter-FORWARD"]}
    assert t4.chains == {"neutron-meter-FORWARD": [f"-j {r}"], l_: [""],
                         r: ["-d 10.2.0.0/16 -o qg-1 -j RETURN", f"-s 10.0.0.0/8 -i qg-1 -j {l_}",
                             f"-s 10.1.0.0/16 -o qg-1 -j {l_}"]}
    assert t6.chains[r] == [f"-d 2001:db8::/32 -o qg-1 -j {l_}"]
    assert metering.tables(router([lb], gateway=False))[4].chains == {}
    assert metering.tables(router([]))[6].chains == {}


def test_counters_from_iptables_save():
    text = "\n".join(["*filter", ":FORWARD ACCEPT [0:0]", "[9:900] -A FORWARD -j neutron-meter-FORWARD",
                      f"[4:4112] -A {metering.chain('l', LABEL)}", f"[1:10] -A {metering.chain('r', LABEL)} -j x",
                      "COMMIT"])
    lb = {"id": LABEL, "name": "l", "rules": []}
    assert metering.counters(text, router([lb])) == {LABEL: {"packets": 4, "bytes": 4112}}


def test_hood_shows_qos_drift_and_metering_counters():
    rules = [{"type": "bandwidth_limit", "direction": "ingress", "max_kbps": 2000, "max_burst_kbps": 400,
              "qos_policy_id": "p1"}]
    v = view_with(rules)
    tap = names.tap(PORT)
    good = {"qdiscs": {tap: {"root": {"kind": "tbf", "options": {"rate": 250000, "burst": 50000}}}}}
    [it] = services.qos_items(v, good, v["ports"][0])
    assert it["state"] == "ok" and "2000 kbit/s" in it["detail"] and it["realizes"]["qos_policy"] == ["p1"]
    [gone] = services.qos_items(v, {"qdiscs": {}}, v["ports"][0])
    assert gone["state"] == "missing"
    [extra] = services.qos_items(view_with([]), good, v["ports"][0])
    assert extra["state"] == "extra"
    lb = {"id": LABEL, "name": "web", "rules": [label_rule("egress", remote="0.0.0.0/0")]}
    save = "\n".join(["*filter", f":{metering.chain('l', LABEL)} - [0:0]", f"[4:4112] -A {metering.chain('l', LABEL)}",
                      "COMMIT"])
    items = {i["name"]: i for i in services.metering_items(router([lb]), {"iptables": {"filter": save}})}
    assert items[metering.chain("l", LABEL)]["detail"] == "label web: 4 packets, 4112 bytes"
    assert items[metering.chain("l", LABEL)]["state"] == "ok" and items[metering.FORWARD]["state"] == "missing"


def test_hood_names_an_address_group_set_and_compares_its_cidrs():
    from neutrino.hood.collect import collect
    ag, sg = "7c98a5fa-01b4-4f5f-b3d8-eb66075eaf3c", "5f417d44-166e-4d04-82fb-59be7e62b447"
    port = {"id": PORT, "kind": "instance", "device": names.tap(PORT), "network_id": "n1", "mac_address":
            "fa:16:3e:00:00:01", "fixed_ips": [], "port_security_enabled": True, "security_groups": [sg],
            "allowed_address_pairs": []}
    rule = {"id": "r1", "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp", "port_range_min": 22,
            "port_range_max": 22, "remote_ip_prefix": None, "remote_group_id": None, "remote_address_group_id": ag}
    view = {"ports": [port], "security_groups": {sg: {"id": sg, "stateful": True, "rules": [rule]}},
            "remote_groups": {ag: {"IPv4": ["10.0.0.7/32", "10.1.0.0/16"], "IPv6": []}}}
    for members, state in ((["10.0.0.7", "10.1.0.0/16"], "ok"), (["10.0.0.8"], "extra")):
        report = collect(view, {"ipsets": {names.ipset_name(ag): members}}, "port", port)
        [it] = [i for s in report["sections"] for i in s["items"] if i["name"] == names.ipset_name(ag)]
        assert it["state"] == state and it["realizes"] == {"address_group": ag}
