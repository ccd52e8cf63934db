"""`neutrino hood`: what the kernel realizes for one port, router or network, next to what the view asks for.

A pure function of (view, kernel snapshot from lib.inspect), in the seed page's order: network devices, namespaces,
security group chains (live rules with packet counters), DHCP (dnsmasq and this port's host entry), routes and NAT,
the metadata rule. Every item names the API object it realizes and carries a state: `ok` (wanted and present),
`missing` (the view wants it, the kernel lacks it) or `extra` (the kernel has it, the view does not want it).
What "wanted" means is computed by the agent's own pure rule builders, so hood and the drivers cannot disagree.
The L2 and firewall parts follow the backends the snapshot was read from (hood.backends): OVS ports and flows or
Linux bridges and the nft anti-spoof table; iptables chains and ipsets or nft chains and sets.
"""
from __future__ import annotations

import ipaddress

from neutrino import names
from neutrino.agent import dhcp as dhcp_agent
from neutrino.agent import l3 as l3_agent
from neutrino.agent import l3_scopes
from neutrino.agent.firewall import rules as fw_rules
from neutrino.agent.firewall.ports import filtered_ports
from neutrino.agent.l2.ovs import BR_INT, BR_TUN
from neutrino.errors import NotFound
from neutrino.hood import backends, nft_items, services
from neutrino.hood.guard import guard_items
from neutrino.hood.items import EXTRA, MISSING, OK, compare_rules, item, rule_origins, section as _section, \
    table as _table


# --- finding the object -------------------------------------------------------------------------------------------

def find(view: dict, ref: str) -> tuple[str, dict]:
    """('port'|'router'|'network', object) for an id, id prefix or name found in the view."""
    hits = []
    for p in view.get("ports", []):
        if p["id"].startswith(ref):
            hits.append(("port", p))
    for r in view.get("routers", []):
        if r["id"].startswith(ref) or r.get("name") == ref:
            hits.append(("router", r))
    for n in view.get("networks", {}).values():
        if n["id"].startswith(ref) or n.get("name") == ref:
            hits.append(("network", n))
    if len(hits) != 1:
        raise NotFound(f"{'no' if not hits else 'more than one'} port, router or network {ref!r} on host "
                       f"{view.get('host')}")
    return hits[0]


def collect(view: dict, snap: dict, kind: str, obj: dict) -> dict:
    """The hood report of one object: {'object', 'host', 'sections': [{'title', 'items'}]}."""
    if kind == "port":
        sections = port_sections(view, snap, obj)
    elif kind == "router":
        sections = router_sections(view, snap, obj)
    else:
        sections = network_sections(view, snap, obj)
    return {"object": {"kind": kind, "id": obj["id"], "name": obj.get("name", "")}, "host": view.get("host"),
            "host_ns": snap.get("host_ns"), "revision": view.get("revision"), "sections": sections,
            "drift": sum(1 for s in sections for i in s["items"]
                         for x in [i, *i.get("rules", [])] if x["state"] != OK)}


# --- devices ------------------------------------------------------------------------------------------------------

def _br_int_port(snap: dict, name: str) -> dict | None:
    return snap.get("ovs", {}).get(BR_INT, {}).get("ports", {}).get(name)


def _bridges(view: dict, snap: dict, network_id: str | None = None) -> list[dict]:
    if backends.of(snap)[0] == "linuxbridge":
        return _lb_bridges(view, snap, network_id)
    ovs = snap.get("ovs", {})
    out = [item(BR_INT, True, BR_INT in ovs, f"{len(ovs.get(BR_INT, {}).get('ports', {}))} ports")]
    tunnels = bool((view.get("tunnels") or {}).get("local_ip"))
    if tunnels or BR_TUN in ovs:
        out.append(item(BR_TUN, tunnels, BR_TUN in ovs, "VXLAN to " + ", ".join(
            p["options"].get("remote_ip", "?") for p in ovs.get(BR_TUN, {}).get("ports", {}).values()
            if p.get("type") == "vxlan") if BR_TUN in ovs else ""))
    for br in sorted(set(ovs) - {BR_INT, BR_TUN}):
        out.append(item(br, True, True, "physical network bridge, ports: " + ", ".join(sorted(ovs[br]["ports"]))))
    return out


def _ovs_port_item(snap: dict, name: str, port_id: str, network_id: str) -> dict:
    p = _br_int_port(snap, name)
    if p is None:
        return item(name, True, False, f"not a port of {BR_INT}", {"port": port_id})
    detail = f"{BR_INT} port, local VLAN tag {p.get('tag')}"
    drift = []
    if p.get("external_ids", {}).get("iface-id") != port_id:
        drift.append(f"iface-id {p.get('external_ids', {}).get('iface-id')}")
    if (p.get("other_config") or {}).get("net_uuid") not in (None, network_id):
        drift.append(f"net_uuid {(p.get('other_config') or {}).get('net_uuid')}")
    if name not in snap.get("links", {}):
        return item(name, True, False, detail + ", but no such device in the kernel",
                    {"port": port_id, "network": network_id})
    it = item(name, True, True, detail + (f" (differs: {', '.join(drift)})" if drift else ""),
              {"port": port_id, "network": network_id})
    if drift:
        it["state"] = EXTRA
    return it


def _lb_bridges(view: dict, snap: dict, network_id: str | None) -> list[dict]:
    """The network's Linux bridge and, with tunnels, its VXLAN device and where its FDB sends frames."""
    net = view.get("networks", {}).get(network_id or "")
    if net is None:
        return []
    found = backends.l2_expected(view, snap, {"network_id": net["id"], "device": "", "kind": "network"})
    if not found:
        return [item("(no bridge)", False, False, f"{net['segment'].get('network_type')} networks are not realized "
                     "by linuxbridge", {"network": net["id"]})]
    bridge = found[0][1]
    links = snap.get("links", {})
    in_bridge = sorted(n for n, link in links.items() if link.get("master") == bridge)
    out = [item(bridge, True, bridge in links, "Linux bridge, ports: " + (", ".join(in_bridge) or "none"),
                {"network": net["id"]})]
    seg = net["segment"]
    if seg.get("network_type") == "vxlan" and (view.get("tunnels") or {}).get("local_ip"):
        vx = names.vxlan(seg["segmentation_id"])
        peers = sorted({dst for _, dst in snap.get("fdb", {}).get(vx, [])})
        it = item(vx, True, vx in links, f"VXLAN {seg['segmentation_id']} to " + (", ".join(peers) or "no peer"),
                  {"network": net["id"]})
        if vx in links and links[vx].get("master") != bridge:
            it["state"] = EXTRA
            it["detail"] += f" (not in {bridge})"
        out.append(it)
    return out


def _wired_items(view: dict, snap: dict, port: dict, kind: str) -> list[dict]:
    """Linuxbridge: each device of the port in the bridge its L2 backend wants it in."""
    re = {"port": port["id"], "network": port["network_id"]}
    out = []
    for dev, bridge in backends.l2_expected(view, snap, port):
        it = _link_item(snap, dev, re, kind=kind)
        link = snap.get("links", {}).get(dev)
        if link is not None and link.get("master") != bridge:
            it["state"] = EXTRA
            it["detail"] += f" (wanted in {bridge})"
        out.append(it)
    return out


def _link_item(snap: dict, name: str, realizes: dict, ns_links: dict | None = None, kind: str = "") -> dict:
    links = snap.get("links", {}) if ns_links is None else ns_links
    link = links.get(name)
    if link is None:
        return item(name, True, False, kind, realizes)
    bits = [kind or link.get("kind") or "device", "up" if link.get("up") else "DOWN"]
    if link.get("master"):
        bits.append(f"in {link['master']}")
    if link.get("addresses"):
        bits.append(" ".join(link["addresses"]))
    it = item(name, True, True, ", ".join(bits), realizes)
    if not link.get("up"):
        it["state"] = MISSING
    return it


def _port_devices(view: dict, snap: dict, port: dict) -> list[dict]:
    pid, net = port["id"], port["network_id"]
    re = {"port": pid}
    if backends.of(snap)[0] == "linuxbridge":
        return _wired_items(view, snap, port, "tap (instance NIC)" if port["kind"] == "instance" else
                            "veth (host end)")
    if port["kind"] != "instance":
        return [_link_item(snap, port["device"], re, kind="veth (host end)"),
                _ovs_port_item(snap, port["device"], pid, net)]
    return [_link_item(snap, port["device"], re, kind="tap (instance NIC)"),
            _link_item(snap, names.qbr(pid), re, kind="Linux bridge (iptables applies here)"),
            _link_item(snap, names.qvb(pid), re, kind="veth to br-int"),
            _ovs_port_item(snap, names.qvo(pid), pid, net)]


def _namespace_items(view: dict, snap: dict, network_id: str) -> list[dict]:
    present = set(snap.get("namespaces", []))
    out = []
    for d in view.get("dhcp", []):
        if d["network_id"] == network_id:
            ns = names.qdhcp(network_id)
            out.append(item(ns, True, ns in present, "DHCP server namespace", {"network": network_id}))
    for r in _routers_on(view, network_id):
        ns = names.qrouter(r["id"])
        out.append(item(ns, True, ns in present, f"router {r.get('name') or ''}", {"router": r["id"]}))
    return out


def _routers_on(view: dict, network_id: str) -> list[dict]:
    return [r for r in view.get("routers", []) if any(p["network_id"] == network_id for p in
                                                      [*r.get("interfaces", []), *([r["gateway"]] if r.get("gateway")
                                                                                   else [])])]


# --- security groups ----------------------------------------------------------------------------------------------

def _sg_items(view: dict, snap: dict, port: dict) -> list[dict]:
    l2, firewall = backends.of(snap)
    wanted = backends.firewall_expected(view, snap, port)
    if firewall == "nftables":
        return nft_items.sg_items(view, snap, port, wanted, l2)
    prefix = names.IPT_PREFIX if l2 == "ovs" else names.IPT_LB_PREFIX
    filtered = {p.id: p for p in filtered_ports(view, "port" if l2 == "ovs" else "network")}
    fw = filtered.get(port["id"])
    live = _table(snap.get("iptables", {}), "filter").chains
    origins = rule_origins(view, port.get("security_groups", []), fw_rules.rule_spec)
    out = []
    for d, what in (("i", "ingress"), ("o", "egress"), ("s", "anti-spoof")):
        chain = names.sg_chain(d, port["id"], prefix)
        want = chain in wanted
        have = chain in live
        if not want and not have:
            continue
        rules = compare_rules(live.get(chain, []), wanted.get(chain, []), origins)
        if not have:
            for r in rules:
                r["rule"] = f"-A {chain} {r['rule']}"
        out.append(item(chain, want, have, f"{what} chain" + ("" if port.get("port_security_enabled") else
                                                             " (port security is off)"),
                        {"port": port["id"], "security_groups": port.get("security_groups", [])}, rules))
    if fw is None and not out:
        out.append(item("(no chains)", False, False, "port security off: nothing filters this port",
                        {"port": port["id"]}))
    ipsets = snap.get("ipsets", {})
    address_groups = {r.get("remote_address_group_id") for g in view.get("security_groups", {}).values()
                      for r in g.get("rules", [])}
    for r in (fw.rules if fw else []):
        if r.remote_group:
            name = names.ipset_name(r.remote_group, r.ethertype)
            want_m = sorted(_member(m) for m in view.get("remote_groups", {}).get(r.remote_group, {})
                            .get(r.ethertype, []))
            have_m = sorted(_member(m) for m in ipsets.get(name, []))
            kind = "address_group" if r.remote_group in address_groups else "security_group"
            it = item(name, True, name in ipsets, "members " + (", ".join(have_m) or "none"), {kind: r.remote_group})
            if name in ipsets and have_m != want_m:
                it["state"] = EXTRA
                it["detail"] += f" (view: {', '.join(want_m) or 'none'})"
            if it not in out:
                out.append(it)
    return out


def _member(m: str) -> str:
    """A set member as written in a view or by `ipset save`, host routes without their /32 (/128)."""
    net = ipaddress.ip_network(m, strict=False)
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


# --- DHCP ---------------------------------------------------------------------------------------------------------

def _arg(argv: list[str], opt: str) -> str | None:
    for a in argv:
        if a.startswith(opt + "="):
            return a.split("=", 1)[1]
    return None


def _dhcp_items(view: dict, snap: dict, network_id: str, port: dict | None) -> list[dict]:
    net = next((d for d in view.get("dhcp", []) if d["network_id"] == network_id), None)
    live = snap.get("dhcp", {}).get(network_id, {})
    if net is None and not live.get("exists"):
        return []
    re = {"network": network_id, "port": net["port_id"] if net else None}
    procs = live.get("dnsmasq", [])
    out = []
    ns_links = live.get("links", {})
    if net is not None:
        out.append(_link_item(snap, net["ns_device"], re, ns_links if live.get("exists") else {}, "DHCP port"))
    if not procs:
        out.append(item("dnsmasq", net is not None, False, "not running", re))
        return out
    for p in procs:
        iface = _arg(p["argv"], "--interface")
        it = item(f"dnsmasq pid {p['pid']}", net is not None, True, f"--interface={iface}", re)
        if net is not None and iface != net["ns_device"]:
            it["state"] = EXTRA
            it["detail"] += f" (view: {net['ns_device']})"
        out.append(it)
        if port is not None:
            mac = port["mac_address"].lower()
            have = [ln for ln in p["hosts"].splitlines() if ln.lower().startswith(mac)]
            want = [ln for ln in (dhcp_agent.hosts_file(net) if net else "").splitlines()
                    if ln.lower().startswith(mac)]
            for ln in sorted(set(have) | set(want)):
                out.append(item("host entry", ln in want, ln in have, ln, {"port": port["id"]}))
    return out


# --- routers ------------------------------------------------------------------------------------------------------

def _router_snap(snap: dict, rid: str) -> dict:
    return snap.get("routers", {}).get(rid) or {"exists": False}


def _route_items(router: dict, rs: dict) -> list[dict]:
    wanted = l3_agent.wanted_routes(router)
    out = []
    seen = set()
    for r in rs.get("routes", []):
        dst = "0.0.0.0/0" if r["dst"] == "default" else r["dst"]
        text = f"{r['dst']}" + (f" via {r['gateway']}" if r.get("gateway") else "") + f" dev {r.get('dev')}"
        if r.get("gateway"):
            seen.add(dst)
            out.append(item(text, wanted.get(dst) == r["gateway"], True, "route", {"router": router["id"]}))
        else:
            out.append(item(text, True, True, "connected", {"router": router["id"]}))
    for dst, gw in wanted.items():
        if dst not in seen:
            out.append(item(f"{dst} via {gw}", True, False, "route", {"router": router["id"]}))
    return out


def _nat_items(view: dict, router: dict, rs: dict, only: set[str] | None = None) -> list[dict]:
    """The router's owned nat chains (or only the rules mentioning `only` addresses), live vs wanted."""
    port = view.get("metadata", {}).get("port", 9697)
    wanted = l3_agent.nat_table(router, port).chains
    live = _table(rs.get("iptables", {}), "nat").chains

    def keep(rule_text: str) -> bool:
        return only is None or any(f"{a}/32" in rule_text.split() or a in rule_text.split() for a in only)

    out = []
    for chain in wanted:
        lv = [r for r in live.get(chain, []) if keep(r.text)]
        wt = [w for w in wanted[chain] if keep(w)]
        if not lv and not wt:
            continue
        rules = compare_rules(lv, wt)
        for r in rules:
            if not r["rule"].startswith("-A "):
                r["rule"] = f"-A {chain} {r['rule']}"
            if "REDIRECT" not in r["rule"]:
                for f in router.get("floating_ips", []):
                    if f["floating_ip_address"] in r["rule"]:
                        r["realizes"] = {"floatingip": f["id"], "port": f["port_id"]}
        out.append(item(chain, True, chain in live, "nat", {"router": router["id"]}, rules))
    return out


def _metadata_item(view: dict, router: dict, rs: dict) -> dict:
    port = view.get("metadata", {}).get("port", 9697)
    want = l3_agent.nat_table(router, port).chains[names.L3_PREFIX + "PREROUTING"][0]
    live = _table(rs.get("iptables", {}), "nat").chains.get(names.L3_PREFIX + "PREROUTING", [])
    hit = next((r for r in live if r.text == want), None)
    return item(f"-A {names.L3_PREFIX}PREROUTING {want}", True, hit is not None,
                f"metadata REDIRECT ({hit.packets} packets)" if hit else "metadata REDIRECT",
                {"router": router["id"]})


def _scope_items(router: dict, rs: dict) -> list[dict]:
    """Each port's address scope and mark, and the mangle/filter chains that keep routing inside a scope."""
    if not l3_scopes.scoped(router):
        return []
    marks = l3_scopes.marks(router)
    ports = [*router.get("interfaces", []), *([router["gateway"]] if router.get("gateway") else [])]
    out = [item(p["ns_device"], True, True, f"address scope {l3_scopes.port_scope(p) or '(none)'}, mark "
                f"{marks[p['ns_device']]}", {"port": p["port_id"], "address_scope": l3_scopes.port_scope(p)})
           for p in ports if p["ns_device"] in marks]
    for table, wanted in (("mangle", l3_scopes.mangle_table(router).chains),
                          ("filter", l3_scopes.filter_chains(router)[0])):
        live = _table(rs.get("iptables", {}), table).chains
        for chain, rules in wanted.items():
            out.append(item(chain, True, chain in live, table, {"router": router["id"]},
                            compare_rules(live.get(chain, []), rules)))
    return out


def _router_port_items(view: dict, snap: dict, router: dict, rs: dict) -> list[dict]:
    out = []
    ports = [*router.get("interfaces", []), *([router["gateway"]] if router.get("gateway") else [])]
    for p in ports:
        re = {"port": p["port_id"], "network": p["network_id"]}
        out.append(_link_item(snap, p["ns_device"], re, rs.get("links", {}) if rs.get("exists") else {},
                              "router port"))
        if backends.of(snap)[0] == "linuxbridge":
            out += _wired_items(view, snap, {"id": p["port_id"], "network_id": p["network_id"],
                                             "device": p["device"], "kind": "router"}, "veth (host end)")
        else:
            out.append(_ovs_port_item(snap, p["device"], p["port_id"], p["network_id"]))
    for dev in sorted(rs.get("links", {}) if rs.get("exists") else {}):
        if dev.startswith(("qr-", "qg-")) and dev not in {p["ns_device"] for p in ports}:
            out.append(item(dev, False, True, "router port the view does not have", {"router": router["id"]}))
    return out


# --- the three kinds ----------------------------------------------------------------------------------------------

def port_sections(view: dict, snap: dict, port: dict) -> list[dict]:
    net = port["network_id"]
    sections = [_section("Network devices", _port_devices(view, snap, port) + _bridges(view, snap, net)),
                _section("Namespaces", _namespace_items(view, snap, net))]
    if port["kind"] == "instance":
        sections.append(_section("Security group chains", _sg_items(view, snap, port)))
        sections.append(_section("ARP/ND anti-spoofing", nft_items.antispoof_items(snap, port)
                                 if backends.of(snap)[0] == "linuxbridge" else guard_items(snap, port)))
        qos = services.qos_items(view, snap, port)
        if qos:
            sections.append(_section("QoS", qos))
    sections.append(_section("DHCP", _dhcp_items(view, snap, net, port)))
    fips = [f for r in view.get("routers", []) for f in r.get("floating_ips", []) if f["port_id"] == port["id"]]
    routing = []
    for r in _routers_on(view, net):
        rs = _router_snap(snap, r["id"])
        routing += _route_items(r, rs)
        addrs = {f["floating_ip_address"] for f in r.get("floating_ips", []) if f["port_id"] == port["id"]}
        addrs |= {f["fixed_ip_address"] for f in r.get("floating_ips", []) if f["port_id"] == port["id"]}
        if addrs:
            routing += _nat_items(view, r, rs, addrs)
        routing.append(_metadata_item(view, r, rs))
    if not fips:
        routing.append({"name": "floating IP", "state": OK, "detail": "none: this port leaves by the router's SNAT",
                        "realizes": {"port": port["id"]}})
    sections.append(_section("Routing, floating IPs and metadata", routing))
    return sections


def router_sections(view: dict, snap: dict, router: dict) -> list[dict]:
    rs = _router_snap(snap, router["id"])
    ns = names.qrouter(router["id"])
    return [_section("Network devices", _router_port_items(view, snap, router, rs)),
            _section("Namespaces", [item(ns, True, bool(rs.get("exists")), f"router {router.get('name') or ''}",
                                         {"router": router["id"]})]),
            _section("Routes", _route_items(router, rs)),
            *([_section("Address scopes", _scope_items(router, rs))] if l3_scopes.scoped(router) else []),
            _section("NAT and metadata", _nat_items(view, router, rs) + [_metadata_item(view, router, rs)]),
            _section("Metering", services.metering_items(router, rs))]


def network_sections(view: dict, snap: dict, net: dict) -> list[dict]:
    nid = net["id"]
    ports = [p for p in view.get("ports", []) if p["network_id"] == nid]
    if backends.of(snap)[0] == "linuxbridge":
        seg = net.get("segment", {})
        head = item(net.get("name") or nid, True, True, f"{seg.get('network_type')} "
                    f"{seg.get('segmentation_id') or ''} {seg.get('physical_network') or ''}".strip(), {"network": nid})
        devices = [it for p in ports for it in _wired_items(view, snap, p, "tap (instance NIC)" if p["kind"] ==
                                                              "instance" else "veth (host end)")]
        return [_section("Network devices", [head, *devices, *_bridges(view, snap, nid)]),
                _section("Namespaces", _namespace_items(view, snap, nid)),
                _section("DHCP", _dhcp_items(view, snap, nid, None))]
    devices = []
    for p in ports:
        name = names.qvo(p["id"]) if p["kind"] == "instance" else p["device"]
        devices.append(_ovs_port_item(snap, name, p["id"], nid))
    wanted = {names.qvo(p["id"]) if p["kind"] == "instance" else p["device"] for p in ports}
    for name, p in sorted(_br_int_ports(snap).items()):
        if (p.get("other_config") or {}).get("net_uuid") == nid and name not in wanted:
            devices.append(item(name, False, True, f"{BR_INT} port, tag {p.get('tag')}",
                                {"port": p.get("external_ids", {}).get("iface-id")}))
    seg = net.get("segment", {})
    head = item(net.get("name") or nid, True, True, f"{seg.get('network_type')} {seg.get('segmentation_id') or ''}"
                f" {seg.get('physical_network') or ''}".strip() + f", local VLAN {_local_vlan(snap, nid)}",
                {"network": nid})
    return [_section("Network devices", [head, *devices, *_bridges(view, snap, nid)]),
            _section("Namespaces", _namespace_items(view, snap, nid)),
            _section("DHCP", _dhcp_items(view, snap, nid, None))]


def _br_int_ports(snap: dict) -> dict:
    return snap.get("ovs", {}).get(BR_INT, {}).get("ports", {})


def _local_vlan(snap: dict, network_id: str) -> int | None:
    for p in _br_int_ports(snap).values():
        if (p.get("other_config") or {}).get("net_uuid") == network_id:
            return p.get("tag")
    return None
