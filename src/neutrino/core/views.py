"""Compile the host view (sync/schema.py): everything one agent must realize, from a handful of bulk queries."""
from __future__ import annotations

import ipaddress
from collections import defaultdict

from sqlalchemy import select

from neutrino import names
from neutrino.core import addressgroups, addressscopes, agents, common, dns, metering, qos
from neutrino.db import models as m
from neutrino.sync.schema import empty_view

T_PORT = m.Port.__table__
T_IP = m.IPAllocation.__table__
T_SUB = m.Subnet.__table__
T_NET = m.Network.__table__
T_SG = m.PortSecurityGroup.__table__
T_SGR = m.SecurityGroupRule.__table__
T_GRP = m.SecurityGroup.__table__
T_ROUTER = m.Router.__table__
T_FIP = m.FloatingIP.__table__
T_PF = m.PortForwarding.__table__
T_DHCP = m.DhcpBinding.__table__
T_AGENT = m.Agent.__table__
KINDS = {"network:dhcp": "dhcp", "network:router_interface": "router_interface",
         "network:router_gateway": "router_gateway"}
# what a view says of a port: reading the whole row also decoded its JSON columns and timestamps, a third of a view
PORT_COLUMNS = tuple(T_PORT.c[k] for k in ("id", "network_id", "device_owner", "mac_address", "admin_state_up",
                                           "device_id", "port_security_enabled", "allowed_address_pairs"))
NS_DEV = {"dhcp": names.tap, "router_interface": names.qr, "router_gateway": names.qg}


class _Loader:
    """Bulk lookups shared by the sections of one view."""

    def __init__(self, s):
        self.s = s
        self._subnets: dict[str, object] = {}
        self._prefixlen: dict[str, int] = {}     # subnet id -> its prefix length, parsed once per view

    def subnets_of(self, net_ids) -> dict[str, list]:
        out: dict[str, list] = defaultdict(list)
        for row in common.in_chunks(self.s, lambda c: select(T_SUB).where(T_SUB.c.network_id.in_(c))
                                    .order_by(T_SUB.c.created_at, T_SUB.c.id), list(net_ids)):
            out[row.network_id].append(row)
            self._subnets[row.id] = row
        return out

    def subnet(self, sid: str):
        if sid not in self._subnets:
            self._subnets[sid] = self.s.execute(select(T_SUB).where(T_SUB.c.id == sid)).first()
        return self._subnets[sid]

    def ips_of(self, port_ids) -> dict[str, list[dict]]:
        return self._fixed_ips(common.in_chunks(self.s, lambda c: select(T_IP.c.port_id, T_IP.c.subnet_id,
                                                                         T_IP.c.ip_address)
                                                .where(T_IP.c.port_id.in_(c)), list(port_ids)))

    def ips_in(self, port_ids) -> dict[str, list[dict]]:
        """ips_of the ports a select of port ids names: one statement, where binding thousands of ids in chunks
        cost more than reading their rows."""
        return self._fixed_ips(self.s.execute(select(T_IP.c.port_id, T_IP.c.subnet_id, T_IP.c.ip_address)
                                              .where(T_IP.c.port_id.in_(port_ids))))

    def _fixed_ips(self, rows) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = defaultdict(list)
        for pid, sid, ip in rows:
            out[pid].append(self.fixed_ip(sid, ip))
        for v in out.values():
            v.sort(key=lambda x: (":" in x["ip_address"], x["ip_address"]))
        return out

    def fixed_ip(self, sid: str, ip: str) -> dict:
        sub = self.subnet(sid)
        prefixlen = self._prefixlen.get(sid)
        if prefixlen is None:
            prefixlen = self._prefixlen[sid] = ipaddress.ip_network(sub.cidr).prefixlen
        return {"subnet_id": sid, "ip_address": ip, "prefixlen": prefixlen, "cidr": sub.cidr,
                "gateway_ip": sub.gateway_ip}


def _subnet(row) -> dict:
    return {"id": row.id, "network_id": row.network_id, "cidr": row.cidr, "ip_version": row.ip_version,
            "gateway_ip": row.gateway_ip, "enable_dhcp": row.enable_dhcp, "dns_nameservers": row.dns_nameservers or [],
            "host_routes": row.host_routes or [], "allocation_pools": row.allocation_pools or [],
            "ipv6_ra_mode": row.ipv6_ra_mode, "ipv6_address_mode": row.ipv6_address_mode}


def _network(row, subnets) -> dict:
    return {"id": row.id, "name": row.name, "mtu": row.mtu, "external": row.external,
            "segment": {"network_type": row.network_type, "segmentation_id": row.segmentation_id,
                        "physical_network": row.physical_network},
            "subnets": [_subnet(x) for x in subnets]}


def _groups_in(s, port_ids: list[str], select_ids) -> dict[str, list[str]]:
    """port id -> its sorted security group ids, for port_ids, read through select_ids (the select that found them:
    one statement, not thousands of bound ids)."""
    out: dict[str, list[str]] = {i: [] for i in port_ids}
    for pid, gid in s.execute(select(T_SG.c.port_id, T_SG.c.security_group_id).where(T_SG.c.port_id.in_(select_ids))):
        if pid in out:
            out[pid].append(gid)
    for v in out.values():
        v.sort()
    return out


def _kind(owner: str) -> str:
    return KINDS.get(owner, "instance")


def _security(s, port_groups) -> tuple[dict, dict]:
    """Groups used by the host's ports with their rules, and the members of groups used as remote groups (and the
    addresses of address groups used as remote address groups: ids are unique across both)."""
    group_ids = {g for pid in port_groups for g in port_groups[pid]}
    groups: dict[str, dict] = {}
    for row in common.in_chunks(s, lambda c: select(T_GRP.c.id, T_GRP.c.stateful).where(T_GRP.c.id.in_(c)),
                                group_ids):
        groups[row.id] = {"id": row.id, "stateful": row.stateful, "rules": []}
    remote_ids: set[str] = set()
    address_group_ids: set[str] = set()
    for r in common.in_chunks(s, lambda c: select(T_SGR).where(T_SGR.c.security_group_id.in_(c))
                              .order_by(T_SGR.c.created_at, T_SGR.c.id), group_ids):
        groups[r.security_group_id]["rules"].append({
            "id": r.id, "direction": r.direction, "ethertype": r.ethertype, "protocol": r.protocol,
            "port_range_min": r.port_range_min, "port_range_max": r.port_range_max,
            "remote_ip_prefix": r.remote_ip_prefix, "remote_group_id": r.remote_group_id,
            "remote_address_group_id": r.remote_address_group_id})
        if r.remote_group_id:
            remote_ids.add(r.remote_group_id)
        if r.remote_address_group_id:
            address_group_ids.add(r.remote_address_group_id)
    members: dict[str, dict[str, list[str]]] = {g: {"IPv4": [], "IPv6": []} for g in remote_ids}
    if remote_ids:
        rows = common.in_chunks(s, lambda c: select(T_SG.c.security_group_id, T_IP.c.ip_address)
                                .join(T_IP, T_IP.c.port_id == T_SG.c.port_id)
                                .where(T_SG.c.security_group_id.in_(c)), remote_ids)
        for gid, ip in rows:
            members[gid]["IPv6" if ":" in ip else "IPv4"].append(ip)
        pair_rows = common.in_chunks(s, lambda c: select(T_SG.c.security_group_id, T_PORT.c.allowed_address_pairs)
                                     .join(T_PORT, T_PORT.c.id == T_SG.c.port_id)
                                     .where(T_SG.c.security_group_id.in_(c)), remote_ids)
        for gid, pairs in pair_rows:
            for p in pairs or []:
                members[gid]["IPv6" if ":" in p["ip_address"] else "IPv4"].append(p["ip_address"])
        for v in members.values():
            v["IPv4"] = sorted(set(v["IPv4"]))
            v["IPv6"] = sorted(set(v["IPv6"]))
    members.update(addressgroups.members(s, address_group_ids))
    return groups, members


def _router_port(row, ips, mtu, scopes: dict[str, str]) -> dict:
    kind = _kind(row.device_owner)
    by_version = {"4": None, "6": None}
    for ip in ips:
        by_version[str(ipaddress.ip_address(ip["ip_address"]).version)] = scopes.get(ip["subnet_id"])
    return {"port_id": row.id, "network_id": row.network_id, "mac_address": row.mac_address,
            "ns_device": NS_DEV[kind](row.id), "device": names.ns_peer(row.id), "fixed_ips": ips, "mtu": mtu,
            "address_scopes": by_version}


def _routers(s, routers: list, load: _Loader, mtus: dict[str, int]) -> list[dict]:
    if not routers:
        return []
    rids = [r.id for r in routers]
    rports = common.in_chunks(s, lambda c: select(T_PORT).where(T_PORT.c.device_id.in_(c), T_PORT.c.device_owner.in_(
        ["network:router_interface", "network:router_gateway"])), rids)
    ips = load.ips_of([p.id for p in rports])
    scopes = addressscopes.of_subnets(s, {f["subnet_id"] for v in ips.values() for f in v})
    fips = common.in_chunks(s, lambda c: select(T_FIP).where(T_FIP.c.router_id.in_(c)), rids)
    labels = metering.labels_for_routers(s, routers)
    pfs = common.in_chunks(s, lambda c: select(T_PF, T_FIP.c.floating_ip_address, T_FIP.c.router_id)
                           .join(T_FIP, T_FIP.c.id == T_PF.c.floatingip_id).where(T_FIP.c.router_id.in_(c)), rids)
    out = []
    for r in routers:
        mine = [p for p in rports if p.device_id == r.id]
        gw = next((p for p in mine if p.id == r.gw_port_id), None)
        gateway = None
        if gw is not None:
            gateway = {**_router_port(gw, ips.get(gw.id, []), mtus.get(gw.network_id, 1500), scopes),
                       "enable_snat": r.enable_snat}
        out.append({
            "id": r.id, "name": r.name, "admin_state_up": r.admin_state_up,
            "interfaces": [_router_port(p, ips.get(p.id, []), mtus.get(p.network_id, 1500), scopes)
                           for p in sorted(mine, key=lambda p: p.id)
                           if p.device_owner == "network:router_interface"],
            "gateway": gateway, "routes": r.routes or [],
            "floating_ips": [{"id": f.id, "floating_ip_address": f.floating_ip_address,
                              "fixed_ip_address": f.fixed_ip_address, "port_id": f.fixed_port_id}
                             for f in sorted(fips, key=lambda f: f.id) if f.router_id == r.id and f.fixed_port_id],
            "port_forwardings": [{"id": pf.id, "floating_ip_address": pf.floating_ip_address,
                                  "protocol": pf.protocol, "internal_ip_address": pf.internal_ip_address,
                                  "internal_port": pf.internal_port, "external_port": pf.external_port}
                                 for pf in sorted(pfs, key=lambda x: x.id) if pf.router_id == r.id],
            "metering_labels": labels[r.id],
        })
    return out


def _dhcp(s, net_ids: list[str], load: _Loader, nets: dict, settings) -> list[dict]:
    if not net_ids:
        return []
    all_ports = common.in_chunks(s, lambda c: select(T_PORT).where(T_PORT.c.network_id.in_(c)), net_ids)
    ips = load.ips_of([p.id for p in all_ports])
    routed = {sid for (sid,) in common.in_chunks(
        s, lambda c: select(T_IP.c.subnet_id).join(T_PORT, T_PORT.c.id == T_IP.c.port_id)
        .where(T_IP.c.network_id.in_(c), T_PORT.c.device_owner == "network:router_interface"), net_ids)}
    out = []
    for nid in sorted(net_ids):
        dport = next((p for p in all_ports if p.network_id == nid and p.device_owner == "network:dhcp"), None)
        if dport is None or nid not in nets:
            continue
        subnets = [x for x in nets[nid]["subnets"] if x["enable_dhcp"]]
        dhcp_subnets = {x["id"] for x in subnets}
        hosts = []
        for p in sorted((p for p in all_ports if p.network_id == nid and p.id != dport.id), key=lambda p: p.id):
            for ip in ips.get(p.id, []):
                if ip["subnet_id"] in dhcp_subnets:
                    hosts.append({"port_id": p.id, "mac_address": p.mac_address, "ip_address": ip["ip_address"],
                                  "subnet_id": ip["subnet_id"],
                                  "hostname": dns.hostname(p.dns_name, ip["ip_address"], settings.dns_domain),
                                  "extra_dhcp_opts": p.extra_dhcp_opts or []})
        out.append({"network_id": nid, "port_id": dport.id, "ns_device": names.tap(dport.id),
                    "device": names.ns_peer(dport.id), "mac_address": dport.mac_address,
                    "fixed_ips": ips.get(dport.id, []), "mtu": nets[nid]["mtu"],
                    "domain": settings.dns_domain.rstrip("."), "subnets": subnets, "hosts": hosts,
                    "isolated_metadata": not (dhcp_subnets & routed)})
    return out


def _tunnels(s, host: str, settings, local_nets: set[str], load: _Loader) -> tuple[dict, list[dict]]:
    """The host's tunnel endpoint, its peers and the l2pop entries; a host without one (VLAN/flat only) needs
    neither, and is not made to read every agent of the cloud."""
    l2 = T_AGENT.c.agent_type.in_(list(agents.L2_TYPES.values()))
    if not any((row.configurations or {}).get("tunnel_ip") and agents.alive(row, settings.agent_down_time)
               for row in s.execute(select(T_AGENT).where(l2, T_AGENT.c.host == host))):
        return {"local_ip": None, "peers": []}, []
    ips = {}
    for row in s.execute(select(T_AGENT).where(l2)):
        tip = (row.configurations or {}).get("tunnel_ip")
        if tip and agents.alive(row, settings.agent_down_time):
            ips[row.host] = tip
    local = ips.pop(host, None)
    fdb = []
    if local and local_nets:
        vx = {r.id: r.segmentation_id for r in common.in_chunks(
            s, lambda c: select(T_NET.c.id, T_NET.c.segmentation_id).where(T_NET.c.id.in_(c),
                                                                           T_NET.c.network_type == "vxlan"),
            local_nets)}
        remote = common.in_chunks(s, lambda c: select(T_PORT.c.id, T_PORT.c.network_id, T_PORT.c.mac_address,
                                                      T_PORT.c.host_id)
                                  .where(T_PORT.c.network_id.in_(c), T_PORT.c.host_id != host,
                                         T_PORT.c.host_id != ""), list(vx))
        rips = load.ips_of([p.id for p in remote])
        for p in sorted(remote, key=lambda p: p.id):
            if p.host_id in ips:
                for ip in rips.get(p.id, []) or [{"ip_address": None}]:
                    fdb.append({"network_id": p.network_id, "vni": vx[p.network_id], "mac_address": p.mac_address,
                                "ip_address": ip["ip_address"], "host_ip": ips[p.host_id]})
    peers = [{"host": h, "ip": ip} for h, ip in sorted(ips.items())]
    return {"local_ip": local, "peers": peers if local else []}, fdb


def compile_view(s, host: str, settings) -> dict:
    """The view, labelled with the revision read before anything else: under READ COMMITTED (PostgreSQL) a later
    read could carry a revision whose change the view's earlier reads missed, and the agent would never ask again."""
    revision = common.revision(s)
    load = _Loader(s)
    mine = (T_PORT.c.host_id == host, T_PORT.c.vif_type.notin_(["unbound", "binding_failed"]),
            T_PORT.c.device_owner != "network:floatingip")
    port_rows = s.execute(select(*PORT_COLUMNS).where(*mine).order_by(T_PORT.c.id)).all()
    routers = s.execute(select(T_ROUTER).where(T_ROUTER.c.host == host).order_by(T_ROUTER.c.id)).all()
    routers_here = [r.id for r in routers]
    dhcp_here = [nid for (nid,) in s.execute(select(T_DHCP.c.network_id).where(T_DHCP.c.host == host))]
    net_ids = {p.network_id for p in port_rows} | set(dhcp_here)
    if routers_here:
        net_ids |= {nid for (nid,) in common.in_chunks(
            s, lambda c: select(T_PORT.c.network_id).where(T_PORT.c.device_id.in_(c)), routers_here)}
    net_rows = common.in_chunks(s, lambda c: select(T_NET).where(T_NET.c.id.in_(c)), net_ids)
    subnets = load.subnets_of(net_ids)
    nets = {n.id: _network(n, subnets.get(n.id, [])) for n in net_rows}
    mtus = {n.id: n.mtu for n in net_rows}
    ips = load.ips_in(select(T_PORT.c.id).where(*mine))
    port_groups = _groups_in(s, [p.id for p in port_rows], select(T_PORT.c.id).where(*mine))
    port_qos = qos.effective(s, port_rows)
    ports = []
    for p in port_rows:
        kind = _kind(p.device_owner)
        ports.append({
            "id": p.id, "network_id": p.network_id, "kind": kind,
            "device": names.tap(p.id) if kind == "instance" else names.ns_peer(p.id),
            "ns_device": None if kind == "instance" else NS_DEV[kind](p.id),
            "mac_address": p.mac_address, "fixed_ips": ips.get(p.id, []), "admin_state_up": p.admin_state_up,
            "device_owner": p.device_owner, "device_id": p.device_id,
            "port_security_enabled": p.port_security_enabled and kind == "instance",
            "security_groups": port_groups[p.id],
            "allowed_address_pairs": p.allowed_address_pairs or [], "mtu": mtus.get(p.network_id, 1500),
            "qos": port_qos.get(p.id, [])})
    groups, members = _security(s, {p["id"]: p["security_groups"] for p in ports
                                               if p["port_security_enabled"]})
    tunnels, fdb = _tunnels(s, host, settings, net_ids, load)
    view = empty_view(host, revision)
    view.update(networks=nets, ports=ports, security_groups=groups, remote_groups=members, tunnels=tunnels, fdb=fdb,
                routers=_routers(s, routers, load, mtus), dhcp=_dhcp(s, dhcp_here, load, nets, settings))
    return view
