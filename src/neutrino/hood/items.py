"""The items of a hood report: a kernel object (wanted and/or present) with the API object it realizes, and an
object's rules with their counters, each in state ok, missing or extra."""
from __future__ import annotations

import ipaddress
from collections.abc import Callable

from neutrino.agent.firewall.ports import SgRule, proto_number
from neutrino.hood.ipt_eval import Table, parse

OK, MISSING, EXTRA = "ok", "missing", "extra"


def item(name: str, wanted: bool, present: bool, detail: str = "", realizes: dict | None = None,
         rules: list[dict] | None = None) -> dict:
    state = MISSING if wanted and not present else EXTRA if present and not wanted else OK
    out = {"name": name, "state": state, "detail": detail, "realizes": {k: v for k, v in (realizes or {}).items() if v}}
    if rules is not None:
        out["rules"] = rules
    return out


def section(title: str, items: list[dict]) -> dict:
    return {"title": title, "items": items}


def table(snap_tables: dict, name: str) -> Table:
    return parse(snap_tables.get(name, "")).get(name) or Table(name)


def compare_rules(live: list, wanted: list[str], origin: dict[str, dict] | None = None) -> list[dict]:
    """Live rules (with counters) in kernel order, then wanted rules the kernel lacks; each with its state."""
    origin = origin or {}
    out = []
    for r in live:
        out.append({"rule": r.line, "packets": r.packets, "bytes": r.bytes,
                    "state": OK if r.text in wanted else EXTRA, "realizes": origin.get(r.text, {})})
    have = {r.text for r in live}
    chain = live[0].chain if live else None
    for w in wanted:
        if w not in have:
            out.append({"rule": f"-A {chain} {w}" if chain else w, "packets": 0, "bytes": 0, "state": MISSING,
                        "realizes": origin.get(w, {})})
    return out


def rule_origins(view: dict, sg_ids: list[str], render: Callable[[SgRule], str]) -> dict[str, dict]:
    """Rendered rule (iptables spec or nft expression, as the firewall driver writes it) -> {security_group, rule}
    for the group rules of these groups (first group wins)."""
    out: dict[str, dict] = {}
    groups = view.get("security_groups", {})
    for sg in sg_ids:
        for r in groups.get(sg, {}).get("rules", []):
            prefix = r.get("remote_ip_prefix")
            if prefix:
                net = ipaddress.ip_network(prefix, strict=False)
                if (net.version == 4) != (r["ethertype"] == "IPv4"):
                    continue
                prefix = None if net.prefixlen == 0 else str(net)
            rendered = render(SgRule(r["direction"], r["ethertype"], proto_number(r.get("protocol"), r["ethertype"]),
                                     r.get("port_range_min"), r.get("port_range_max"), prefix,
                                     r.get("remote_group_id") or r.get("remote_address_group_id")))
            out.setdefault(rendered, {"security_group": sg, "rule": r["id"]})
    return out
