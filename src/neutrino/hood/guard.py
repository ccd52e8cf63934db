"""Hood's ARP/ND anti-spoofing section: a port's flows on br-int (matched by its qvo's OpenFlow number) with their
counters, each linked to the fixed IP or allowed address pair that makes it legal, against what the agent's own
builder (agent/l2/antispoof.py) wants. Pure, like hood.collect."""
from __future__ import annotations

import ipaddress

from neutrino import names
from neutrino.agent.l2 import antispoof
from neutrino.agent.l2.ovs import BR_INT
from neutrino.hood import flow_eval
from neutrino.hood.items import EXTRA, MISSING, OK, item


def _claims(port: dict) -> dict:
    """Address (network) -> the API field that makes it legal for this port to announce."""
    out = {}
    for f in port["fixed_ips"]:
        out[ipaddress.ip_network(f["ip_address"])] = {"fixed_ip": f["ip_address"]}
    for pair in port.get("allowed_address_pairs") or []:
        out.setdefault(ipaddress.ip_network(pair["ip_address"], strict=False),
                       {"allowed_address_pair": pair["ip_address"] + (f" {pair['mac_address']}"
                                                                      if pair.get("mac_address") else "")})
    return out


def _flow_origin(flow: flow_eval.Flow, claims: dict) -> dict:
    """What makes a flow's address legal: a fixed IP, an allowed address pair or a MAC's own link-local."""
    for key in ("arp_spa", "nd_target"):
        net = flow.match.get(key)
        if net is not None and net in claims:
            return claims[net]
        if net is not None and net.network_address.is_link_local:
            return {"link_local": str(net.network_address)}
    return {}


def guard_items(snap: dict, port: dict) -> list[dict]:
    """The port's anti-spoof flows on br-int (matched by its qvo's OpenFlow number), live with counters."""
    pid, qvo = port["id"], names.qvo(port["id"])
    ofport = snap.get("ovs", {}).get(BR_INT, {}).get("ports", {}).get(qvo, {}).get("ofport")
    want = bool(port.get("port_security_enabled"))
    live = [f for f in flow_eval.parse(snap.get("ovs", {}).get(BR_INT, {}).get("flows", ""))
            if ofport and f.match.get("in_port") == ofport]
    if not want and not live:
        return [item("(no anti-spoof flows)", False, False, "port security off: this port may claim any address",
                     {"port": pid})]
    if ofport is None:
        return [item(f"{BR_INT} in_port={qvo}", want, False, "the port has no OpenFlow number", {"port": pid})]
    wanted = [flow_eval.parse_flow(f) for f in antispoof.ovs_flows(antispoof.guard(port), ofport)] if want else []
    claims = _claims(port)
    rules = [{"rule": f.line, "packets": f.packets, "bytes": f.bytes,
              "state": OK if any(flow_eval.same(f, w) for w in wanted) else EXTRA,
              "realizes": _flow_origin(f, claims)} for f in live]
    rules += [{"rule": w.line, "packets": 0, "bytes": 0, "state": MISSING, "realizes": _flow_origin(w, claims)}
              for w in wanted if not any(flow_eval.same(f, w) for f in live)]
    return [item(f"{BR_INT} in_port={ofport} ({qvo})", want, bool(live),
                 "ARP/ND/MAC anti-spoof flows: only the port's fixed IPs and allowed address pairs",
                 {"port": pid, "fixed_ips": [f["ip_address"] for f in port["fixed_ips"]],
                  "allowed_address_pairs": [p["ip_address"] for p in port.get("allowed_address_pairs") or []]},
                 rules)]
