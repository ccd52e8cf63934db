"""OpenFlow tables as `ovs-ofctl dump-flows` prints them, parsed and evaluated for one packet (pure; unit-tested).

Enough of OpenFlow for what neutrino puts on br-int (antispoof.py): matches on in_port, dl_src, the protocol
keywords, ARP sender IP/MAC (with masks), L4 ports, ICMP type/code, ND target and link-layer options; actions
resubmit(,N), NORMAL and drop. A flow matching on anything else is reported as not evaluated, never guessed.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

PROTOS = {"arp": {"dl_type": "arp"}, "ip": {"dl_type": "ip"}, "ipv6": {"dl_type": "ipv6"},
          "icmp": {"dl_type": "ip", "nw_proto": 1}, "tcp": {"dl_type": "ip", "nw_proto": 6},
          "udp": {"dl_type": "ip", "nw_proto": 17}, "icmp6": {"dl_type": "ipv6", "nw_proto": 58},
          "tcp6": {"dl_type": "ipv6", "nw_proto": 6}, "udp6": {"dl_type": "ipv6", "nw_proto": 17}}
STATS = ("cookie", "duration", "idle_age", "hard_age", "idle_timeout", "hard_timeout", "reset_counts")
ADDR = ("arp_spa", "arp_tpa", "nw_src", "nw_dst", "nd_target", "ipv6_src", "ipv6_dst")
INTS = ("in_port", "tp_src", "tp_dst", "icmp_type", "icmp_code", "nw_proto")
MACS = ("dl_src", "dl_dst", "arp_sha", "arp_tha", "nd_sll", "nd_tll")


@dataclass
class Flow:
    table: int
    priority: int
    match: dict[str, object]
    actions: str
    line: str                   # the flow without its statistics, as ovs-ofctl takes it
    packets: int = 0
    bytes: int = 0
    unknown: list[str] = field(default_factory=list)


def parse_flow(line: str) -> Flow | None:
    """One dump-flows line (stats included) or one flow as given to ovs-ofctl; None for headers."""
    text = line.strip()
    if "actions=" not in text:
        return None
    head, actions = text.rsplit("actions=", 1)
    table, prio, pk, by = 0, 32768, 0, 0
    match: dict[str, object] = {}
    unknown, kept = [], []
    for part in (p.strip() for p in head.replace(", ", ",").replace(" ", ",").split(",")):
        if not part:
            continue
        key, _, val = part.partition("=")
        if key == "n_packets":
            pk = int(val)
        elif key == "n_bytes":
            by = int(val)
        if key in STATS or key in ("n_packets", "n_bytes"):
            continue
        kept.append(part)
        if key == "table":
            table = int(val)
        elif key == "priority":
            prio = int(val)
        elif key in PROTOS and not val:
            match.update(PROTOS[key])
        elif key in INTS:
            match[key] = int(val, 0)
        elif key in MACS:
            match[key] = val.lower()
        elif key in ADDR:
            match[key] = ipaddress.ip_network(val, strict=False)
        else:
            unknown.append(part)
    return Flow(table, prio, match, actions.strip(), f"{','.join(kept)} actions={actions.strip()}", pk, by, unknown)


def parse(text: str) -> list[Flow]:
    return [f for f in map(parse_flow, text.splitlines()) if f is not None]


def _matches(flow: Flow, pkt: dict) -> bool:
    for key, want in flow.match.items():
        have = pkt.get(key)
        if have is None:
            return False
        if isinstance(want, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
            try:
                if ipaddress.ip_address(have) not in want:
                    return False
            except ValueError:
                return False
        elif have != want:
            return False
    return True


@dataclass
class Verdict:
    action: str                 # "NORMAL" | "drop"
    path: list[Flow]            # the flows that matched, table by table
    unknown: list[str]


def evaluate(flows: list[Flow], pkt: dict) -> Verdict:
    """Follow pkt (field -> value, as in PROTOS/INTS/MACS/ADDR) from table 0 through resubmits."""
    path, unknown, table = [], [], 0
    for _ in range(16):
        cands = sorted((f for f in flows if f.table == table), key=lambda f: -f.priority)
        hit = None
        for f in cands:
            if f.unknown:
                unknown.append(f"{f.line} (fields {', '.join(f.unknown)})")
                continue
            if _matches(f, pkt):
                hit = f
                break
        if hit is None:
            return Verdict("drop", path, unknown)          # table miss on a secure bridge
        path.append(hit)
        act = hit.actions
        if act.startswith("resubmit(,") and act.endswith(")"):
            table = int(act[len("resubmit(,"):-1])
            continue
        return Verdict("NORMAL" if act == "NORMAL" else "drop", path, unknown)
    return Verdict("drop", path, unknown + ["resubmit loop"])


def same(a: Flow, b: Flow) -> bool:
    """Whether two flows are the same rule (as given vs as dumped: field order and stats differ)."""
    return (a.table, a.priority, a.match, a.actions) == (b.table, b.priority, b.match, b.actions)
