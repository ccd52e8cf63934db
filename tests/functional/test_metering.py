"""Metering labels on the real kernel: counters in the qrouter namespace match the bytes a guest sent and got."""
from __future__ import annotations

import uuid

from neutrino import names
from neutrino.agent import metering
from neutrino.lib import iptables, proc
from netfix_l3 import l2_hosts, lab, router  # noqa: F401 - lab and l2_hosts are fixtures

COUNT, SIZE = 4, 1000
IP_BYTES = SIZE + 8 + 20        # ICMP payload + ICMP header + IPv4 header


def label(*rules) -> dict:
    return {"id": str(uuid.uuid4()), "name": "l", "rules": [
        {"id": str(uuid.uuid4()), "direction": d, "remote_ip_prefix": remote, "source_ip_prefix": src,
         "destination_ip_prefix": None, "excluded": excluded} for d, remote, src, excluded in rules]}


def test_counters_match_the_bytes_sent_and_received(lab):
    g1 = lab.guest("g1", "private", "10.0.0.3")
    r = router()
    inbound = label(("ingress", "0.0.0.0/0", None, False))
    from_g1 = label(("egress", None, "10.0.0.3/32", False))
    others = label(("egress", "0.0.0.0/0", None, False), ("egress", None, "10.0.0.3/32", True))
    r["metering_labels"] = [inbound, from_g1, others]
    assert lab.sync(r).changed
    assert not lab.sync(r).changed
    ns = names.qrouter(r["id"])
    rules = iptables.parse(iptables.save("filter", ns))
    assert rules["FORWARD"][0] == f"-j {metering.FORWARD}"
    qg = r["gateway"]["ns_device"]
    assert rules[metering.chain("r", others["id"])] == [f"-s 10.0.0.3/32 -o {qg} -j RETURN",
                                                        f"-o {qg} -j {metering.chain('l', others['id'])}"]
    proc.run(["ping", "-c", str(COUNT), "-i", "0.2", "-s", str(SIZE), "172.24.4.1"], netns=g1)
    got = lab.driver.metering_counters()[r["id"]]
    want = {"packets": COUNT, "bytes": COUNT * IP_BYTES}
    assert got == {inbound["id"]: want, from_g1["id"]: want, others["id"]: {"packets": 0, "bytes": 0}}
    r["metering_labels"] = [inbound]
    lab.sync(r)
    assert set(lab.driver.metering_counters()[r["id"]]) == {inbound["id"]}
    r["metering_labels"] = []
    lab.sync(r)
    assert "neutron-meter" not in iptables.save("filter", ns) and lab.driver.metering_counters() == {}
