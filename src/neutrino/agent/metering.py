"""Metering labels as iptables counters in a router's namespace, laid out as Neutron's iptables metering driver does.

filter FORWARD -> neutron-meter-FORWARD -> neutron-meter-r-<label> (the label's rules: excluded ones `-j RETURN`
first, the others jump to) -> neutron-meter-l-<label>, which holds one empty rule: its packet and byte counters are
the label's. Rules match on the gateway device: ingress is traffic coming in on qg- (from the remote prefix),
egress traffic going out of it (to the remote prefix); with source/destination prefixes, both are matched as given.
A router without a gateway meters nothing (there is no outside to count).
"""
from __future__ import annotations

import ipaddress

from neutrino.lib.iptables import TableState

PREFIX = "neutron-meter-"
FORWARD = PREFIX + "FORWARD"
MAX_CHAIN = 28        # iptables chain names


def chain(kind: str, label_id: str) -> str:
    """neutron-meter-l-<label> (counting) or neutron-meter-r-<label> (rules), cut to iptables' 28 characters."""
    return f"{PREFIX}{kind}-{label_id}"[:MAX_CHAIN]


def _version(prefix: str | None) -> int | None:
    return ipaddress.ip_network(prefix).version if prefix else None


def _matches(prefix: str | None) -> bool:
    return bool(prefix) and ipaddress.ip_network(prefix).prefixlen > 0


def rule_spec(rule: dict, qg: str, label_id: str) -> tuple[int, str]:
    """(IP version, the rule as iptables-save prints it)."""
    inbound = rule["direction"] == "ingress"
    if rule.get("remote_ip_prefix"):
        src, dst = (rule["remote_ip_prefix"], None) if inbound else (None, rule["remote_ip_prefix"])
    else:
        src, dst = rule.get("source_ip_prefix"), rule.get("destination_ip_prefix")
    version = _version(src) or _version(dst) or 4
    parts = [f"-s {src}"] if _matches(src) else []      # iptables-save leaves out a /0 match
    parts += [f"-d {dst}"] if _matches(dst) else []
    parts.append(f"-i {qg}" if inbound else f"-o {qg}")
    parts.append("-j RETURN" if rule.get("excluded") else f"-j {chain('l', label_id)}")
    return version, " ".join(parts)


def tables(router: dict) -> dict[int, TableState]:
    """IP version -> the owned part of the router namespace's filter table."""
    out = {v: TableState("filter", {FORWARD: []}, {"FORWARD": [f"-j {FORWARD}"]}) for v in (4, 6)}
    gw = router.get("gateway")
    labels = router.get("metering_labels", []) if gw else []
    for label in labels:
        per_version: dict[int, list[tuple[bool, str]]] = {4: [], 6: []}
        for r in label["rules"]:
            version, spec = rule_spec(r, gw["ns_device"], label["id"])
            per_version[version].append((not r.get("excluded"), spec))
        for version, t in out.items():
            rules = [spec for _, spec in sorted(per_version[version], key=lambda x: x[0])]   # excluded first
            t.chains[FORWARD].append(f"-j {chain('r', label['id'])}")
            t.chains[chain("r", label["id"])] = rules
            t.chains[chain("l", label["id"])] = [""]
    if not labels:
        return {v: TableState("filter") for v in (4, 6)}
    return out


def counters(save_text: str, router: dict) -> dict[str, dict[str, int]]:
    """label id -> {"packets", "bytes"} from `iptables-save -c -t filter` text (one IP version)."""
    by_chain = {chain("l", label["id"]): label["id"] for label in router.get("metering_labels", [])}
    out: dict[str, dict[str, int]] = {}
    for line in save_text.splitlines():
        if not line.startswith("["):
            continue
        count, _, rule = line.partition("] ")
        words = rule.split()
        if len(words) >= 2 and words[0] == "-A" and words[1] in by_chain:
            packets, _, nbytes = count[1:].partition(":")
            c = out.setdefault(by_chain[words[1]], {"packets": 0, "bytes": 0})
            c["packets"] += int(packets)
            c["bytes"] += int(nbytes)
    return out
