"""Hood sections of the service extensions: a port's QoS (its tap's TBF, the IFB that shapes what the tap
receives, the DSCP chain with counters) and a router's metering chains (with each label's counters). Pure, like
hood.collect: what is wanted comes from the agent's own builders."""
from __future__ import annotations

from neutrino import names
from neutrino.agent import metering
from neutrino.agent import qos as qos_agent
from neutrino.hood.items import compare_rules, item as _item, table as _table


def _rules(tables: dict, table: str, chain: str, wanted: list[str]) -> list[dict]:
    return compare_rules(_table(tables, table).chains.get(chain, []), wanted)


def _tbf(qdisc: dict | None) -> str:
    if not qdisc or qdisc.get("kind") != "tbf":
        return (qdisc or {}).get("kind") or "no qdisc"
    opts = qdisc.get("options", {})
    return f"TBF {opts.get('rate', 0) * 8 // 1000} kbit/s, burst {opts.get('burst')} bytes"


def qos_items(view: dict, snap: dict, port: dict) -> list[dict]:
    """The port's shaping and marking, wanted (its policy's rules in the view) against what the host has."""
    want = qos_agent.wanted(view).get(port["device"])
    qd = snap.get("qdiscs", {})
    tap, ifb = port["device"], names.ifb(port["id"])
    re = {"port": port["id"], "qos_policy": sorted({r["qos_policy_id"] for r in port.get("qos", [])
                                                    if r.get("qos_policy_id")})}
    root = qd.get(tap, {}).get("root")
    out = []
    ingress = want.ingress if want else None
    if ingress or (root or {}).get("kind") == "tbf":
        ok = bool(ingress) and qos_agent.tc.tbf_matches(root, *ingress)
        out.append(_item(f"{tap} root", bool(ingress), (root or {}).get("kind") == "tbf",
                         f"{_tbf(root)}: to the instance" + ("" if ok or not ingress else
                                                              f" (wanted {ingress[0]} kbit/s)"), re))
    egress = want.egress if want else None
    has_redirect = "ingress" in qd.get(tap, {})
    if egress or has_redirect or ifb in qd:
        ifb_root = qd.get(ifb, {}).get("root")
        out.append(_item(f"{tap} ingress", bool(egress), has_redirect, f"redirected to {ifb}", re))
        ok = bool(egress) and qos_agent.tc.tbf_matches(ifb_root, *egress)
        out.append(_item(ifb, bool(egress), ifb in qd, f"{_tbf(ifb_root)}: from the instance"
                         + ("" if ok or not egress else f" (wanted {egress[0]} kbit/s)"), re))
    table = qos_agent.mangle_table([want] if want else [])
    chain = f"{qos_agent.PREFIX}o{names.sg_dev(port['id'])}"
    tables = snap.get("iptables", {})
    live = _rules(tables, "mangle", chain, table.chains.get(chain, []))
    if live:
        out.append(_item(chain, chain in table.chains, any(r["state"] != "missing" for r in live),
                         "DSCP marking (mangle, bridged packets from the tap)", re, live))
    return out


def metering_items(router: dict, rs: dict) -> list[dict]:
    """The router's metering chains in its namespace's filter table, live (with counters) against wanted."""
    want = metering.tables(router)[4].chains
    tables = rs.get("iptables", {})
    live_chains = _table(tables, "filter").chains
    names_of = {metering.chain(k, lb["id"]): lb for lb in router.get("metering_labels", []) for k in "lr"}
    out = []
    for chain in sorted(set(want) | {c for c in live_chains if c.startswith(metering.PREFIX)}):
        rules = _rules(tables, "filter", chain, want.get(chain, []))
        lb = names_of.get(chain)
        re = {"router": router["id"], "metering_label": lb["id"] if lb else None}
        detail = "label rules" if chain.startswith(metering.PREFIX + "r-") else "all labels"
        if chain.startswith(metering.PREFIX + "l-"):
            count = live_chains.get(chain, [])
            detail = f"label {lb['name'] if lb else '?'}: {sum(r.packets for r in count)} packets, " \
                     f"{sum(r.bytes for r in count)} bytes"
        out.append(_item(chain, chain in want, chain in live_chains, detail, re, rules))
    return out
