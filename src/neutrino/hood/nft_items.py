"""Hood items of the nftables backends: a port's security group chains in its shard table `inet neutrino-<k>`, its
remote-group sets, and (linuxbridge) its ARP/ND anti-spoof chains in its `bridge neutrino_l2-<k>`, live against what the
agent's own builders want. Pure, like hood.collect.

nft prints a rule back in its own words, not as neutrino wrote it, so rules are not compared one by one: a chain is
as wanted when it has as many rules as wanted and its last rule carries the digest of the wanted rules (the comment
lib/nft.py writes, `h:…`), the test the drivers themselves use. Then each live rule is shown with the wanted rule
(and security group rule) it realizes; otherwise the live rules are `extra` and the wanted ones `missing`.
"""
from __future__ import annotations

import ipaddress

from neutrino import names
from neutrino.agent.firewall import nft_rules
from neutrino.agent.firewall.ports import filtered_ports
from neutrino.agent.l2 import antispoof
from neutrino.hood.items import EXTRA, MISSING, OK, item, rule_origins
from neutrino.hood.nft_eval import Rule, Ruleset, parse
from neutrino.lib.nft import Chain


def ruleset(snap: dict) -> Ruleset:
    return parse(snap.get("nft") or [])


def same(live: list[Rule], wanted: list[str]) -> bool:
    """Whether a live chain holds exactly the wanted rules (count and digest comment, as lib.nft.plan decides)."""
    return len(live) == len(wanted) and bool(live) and live[-1].comment == Chain(list(wanted)).digest()


def chain_item(rs: Ruleset, family: str, table: str, chain: str, wanted: list[str] | None, detail: str,
               realizes: dict, origins: dict[str, dict] | None = None) -> dict:
    """One chain, live against wanted (None: the view wants no such chain), with its rules."""
    live = rs.chains.get((family, table, chain))
    origins = origins or {}
    rules = []
    ok = live is not None and wanted is not None and same(live, wanted)
    for i, r in enumerate(live or []):
        rules.append({"rule": r.line, "packets": 0, "bytes": 0, "state": OK if ok else EXTRA,
                      "realizes": origins.get(wanted[i], {}) if ok else {}})
    if wanted is not None and not ok:
        rules += [{"rule": f"{family} {table} {chain}: {w}", "packets": 0, "bytes": 0, "state": MISSING,
                   "realizes": origins.get(w, {})} for w in wanted]
    return item(chain, wanted is not None, live is not None, detail, realizes, rules)


def _member(el) -> str:
    if isinstance(el, dict) and "prefix" in el:
        return f"{el['prefix']['addr']}/{el['prefix']['len']}"
    if isinstance(el, dict) and "range" in el:
        return "-".join(map(str, el["range"]))
    return str(el)


def _host(m: str) -> str:
    net = ipaddress.ip_network(m, strict=False)
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


def sg_items(view: dict, snap: dict, port: dict, wanted: dict[str, list[str]], l2: str) -> list[dict]:
    """The port's chains i/o/s in its shard table `inet neutrino-<k>` and the sets of its remote groups there."""
    rs = ruleset(snap)
    fw = next((p for p in filtered_ports(view, "port" if l2 == "ovs" else "network") if p.id == port["id"]), None)
    re = {"port": port["id"], "security_groups": port.get("security_groups", [])}
    origins = rule_origins(view, port.get("security_groups", []), nft_rules.rule_expr)
    out = []
    dev = names.sg_dev(port["id"])
    held = {c: t for f, t, c in rs.chains if f == "inet" and nft_rules.is_shard(t) and c[1:] == dev}
    table = held.get(f"i{dev}") or next(iter(held.values()), nft_rules.shard(1))     # the port's shard
    for kind, what in (("i", "ingress"), ("o", "egress"), ("s", "anti-spoof")):
        chain = f"{kind}{dev}"
        if chain not in wanted and chain not in held:
            continue
        out.append(chain_item(rs, "inet", held.get(chain, table), chain, wanted.get(chain), f"{what} chain", re,
                              origins))
    if fw is None and not out:
        out.append(item("(no chains)", False, False, "port security off: nothing filters this port",
                        {"port": port["id"]}))
    address_groups = {r.get("remote_address_group_id") for g in view.get("security_groups", {}).values()
                      for r in g.get("rules", [])}
    for r in (fw.rules if fw else []):
        if not r.remote_group:
            continue
        name = names.ipset_name(r.remote_group, r.ethertype)
        key = ("inet", table, name)
        want_m = sorted(_host(m) for m in view.get("remote_groups", {}).get(r.remote_group, {}).get(r.ethertype, []))
        have_m = sorted(_host(_member(e)) for e in rs.sets.get(key, []))
        kind = "address_group" if r.remote_group in address_groups else "security_group"
        it = item(f"set {name}", True, key in rs.sets, "members " + (", ".join(have_m) or "none"),
                  {kind: r.remote_group})
        if key in rs.sets and have_m != want_m:
            it["state"] = EXTRA
            it["detail"] += f" (view: {', '.join(want_m) or 'none'})"
        if it not in out:
            out.append(it)
    return out


def antispoof_items(snap: dict, port: dict) -> list[dict]:
    """The tap's chains in its shard table `bridge neutrino_l2-<k>` (linuxbridge's ARP/ND anti-spoofing) and its
    dispatch."""
    rs = ruleset(snap)
    tap, want = port["device"], bool(port.get("port_security_enabled"))
    wanted = antispoof.nft_chains(antispoof.guard(port)) if want else {}
    re = {"port": port["id"], "fixed_ips": [f["ip_address"] for f in port["fixed_ips"]],
          "allowed_address_pairs": [p["ip_address"] for p in port.get("allowed_address_pairs") or []]}
    chains = [antispoof.nft_chain_name(k, tap) for k in ("s", "a")]
    table = antispoof.nft_table_of(rs.chains, tap) or antispoof.nft_shard(0)
    live = [c for c in chains if ("bridge", table, c) in rs.chains]
    if not want and not live:
        return [item("(no anti-spoof chains)", False, False, "port security off: this port may claim any address",
                     {"port": port["id"]})]
    dispatch = [e for e in rs.sets.get(("bridge", table, "ports"), [])
                if isinstance(e, list) and e[0] == tap]
    out = [item(f"{table} ports[{tap}]", want, bool(dispatch),
                f"iifname {tap} → jump {chains[0]}", re)]
    out[0]["state"] = (MISSING if want and not dispatch else EXTRA if dispatch and not want else
                       OK if not dispatch or dispatch[0][1] == {"jump": {"target": chains[0]}} else EXTRA)
    out += [chain_item(rs, "bridge", table, c, wanted.get(c) if want else None,
                       "MAC anti-spoof: only the port's MACs" if c == chains[0] else
                       "ARP/ND anti-spoof: only the port's fixed IPs and allowed address pairs", re) for c in chains]
    return out
