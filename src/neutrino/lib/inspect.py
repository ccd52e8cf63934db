"""Read-only looks at a host's kernel for `neutrino hood` and `neutrino trace`: one JSON-able snapshot of what is
realized (links, routes, router and DHCP namespaces, dnsmasq, qdiscs), the readers the L2 and firewall drivers'
`held` answers use (OVS ports and flows, iptables with counters, ipsets, the nftables ruleset, VXLAN FDBs), plus
the kernel's own routing decision (`ip route get`). Nothing here changes the kernel.

The snapshot is plain data so that hood and trace are pure functions of (view, snapshot) and unit tests can feed
them captured snapshots.
"""
from __future__ import annotations

import json
import os

from neutrino import names
from neutrino.errors import KernelError
from neutrino.lib import ip, proc, tc


def _links(ns: str | None) -> dict[str, dict]:
    """name -> {kind, master (name), up, mac, mtu, addresses} of every link of a namespace."""
    raw = ip.links(ns)
    by_index = {v["index"]: k for k, v in raw.items()}
    return {name: {"kind": v["kind"], "master": by_index.get(v["master"]), "up": v["up"], "mac": v["mac"],
                   "mtu": v["mtu"], "addresses": sorted(ip.addresses(name, ns))}
            for name, v in raw.items()}


def _routes(ns: str | None) -> list[dict]:
    return [{k: r[k] for k in ("dst", "gateway", "dev")} for r in ip.routes(ns, 4)]


def _save(table: str, ns: str | None) -> str:
    return proc.output(["iptables-save", "-c", "-t", table], netns=ns)


def iptables(ns: str | None, tables: tuple[str, ...]) -> dict[str, str]:
    """table -> `iptables-save -c` text, for these tables of the namespace."""
    return {t: _save(t, ns) for t in tables}


def nft_ruleset(ns: str | None) -> list[dict]:
    """The namespace's whole nftables ruleset as `nft -j list ruleset` objects."""
    return json.loads(proc.output(["nft", "-j", "list", "ruleset"], netns=ns) or '{"nftables": []}')["nftables"]


def vxlan_fdb(ns: str | None) -> dict[str, list[list[str]]]:
    """vxlan-* device -> its FDB's [mac, remote ip] entries (where l2population sends each MAC and the floods)."""
    out: dict[str, list[list[str]]] = {}
    for dev in sorted(d for d in ip.links(ns) if d.startswith("vxlan-")):
        out[dev] = sorted([mac, dst] for mac, dst in ip.fdb_entries(dev, ns))
    return out


def ipsets(ns: str | None) -> dict[str, list[str]]:
    """Every ipset of the namespace with its members, as `ipset save` prints them."""
    sets: dict[str, list[str]] = {}
    for line in proc.output(["ipset", "save"], netns=ns).splitlines():
        w = line.split()
        if len(w) >= 2 and w[0] == "create":
            sets[w[1]] = []
        elif len(w) >= 3 and w[0] == "add":
            sets.setdefault(w[1], []).append(w[2])
    return sets


def _cell(v):
    """One ovs-vsctl JSON cell as plain data: maps as dicts, sets as lists, uuids as strings."""
    if isinstance(v, list) and len(v) == 2 and v[0] in ("map", "set", "uuid"):
        kind, data = v
        if kind == "map":
            return {k: _cell(x) for k, x in data}
        if kind == "set":
            return [_cell(x) for x in data]
        return data
    return v


def _many(v) -> list:
    """A set column that ovs-vsctl prints as a bare atom when it has one element."""
    v = _cell(v)
    return v if isinstance(v, list) else [v]


def ovs_bridges(rundir: str | None) -> dict[str, dict]:
    """bridge -> {datapath_type, ports: name -> {tag, other_config, external_ids, type, options, ofport},
    flows: `ovs-ofctl dump-flows` text with counters}."""
    if not rundir or not os.path.exists(os.path.join(rundir, "db.sock")):
        return {}
    db = f"--db=unix:{os.path.join(rundir, 'db.sock')}"

    def table(name: str, cols: str) -> dict[str, dict]:
        out = json.loads(proc.output(["ovs-vsctl", db, "--format=json", f"--columns={cols}", "list", name]))
        rows = [{h: _cell(c) for h, c in zip(out["headings"], row)} for row in out["data"]]
        return {r["_uuid"]: r for r in rows}

    ifaces = table("Interface", "_uuid,name,type,options,external_ids,ofport")
    ports = table("Port", "_uuid,name,tag,other_config,interfaces")
    out = {}
    for br in table("Bridge", "_uuid,name,ports,datapath_type").values():
        bports = {}
        for uuid in _many(br["ports"]):
            p = ports[uuid]
            iface = ifaces.get(_many(p["interfaces"])[0], {})
            tag = p["tag"]
            bports[p["name"]] = {"tag": tag if isinstance(tag, int) else None, "other_config": p["other_config"],
                                 "external_ids": iface.get("external_ids", {}), "type": iface.get("type", ""),
                                 "options": iface.get("options", {}), "ofport": _ofport(iface.get("ofport"))}
        flows = proc.run(["ovs-ofctl", "--no-names", "dump-flows", f"unix:{os.path.join(rundir, br['name'])}.mgmt"],
                         check=False).stdout
        out[br["name"]] = {"datapath_type": br["datapath_type"], "ports": bports, "flows": flows}
    return out


def _ofport(v) -> int | None:
    return v if isinstance(v, int) and v > 0 else None


def _namespace(ns: str, tables: tuple[str, ...]) -> dict:
    if not ip.netns_exists(ns):
        return {"ns": ns, "exists": False}
    return {"ns": ns, "exists": True, "links": _links(ns), "routes": _routes(ns),
            "iptables": {t: _save(t, ns) for t in tables}}


def _pids(ns: str) -> list[int]:
    out = proc.run(["ip", "netns", "pids", ns], check=False).stdout
    return [int(p) for p in out.split() if p.isdigit()]


def _dnsmasq(ns: str) -> list[dict]:
    """The dnsmasq processes inside ns: pid, argv and the static hosts file they read."""
    found = []
    for pid in _pids(ns):
        argv = proc.cmdline(pid)
        if not argv or os.path.basename(argv[0]) != "dnsmasq":
            continue
        hosts = ""
        for a in argv:
            if a.startswith("--dhcp-hostsfile="):
                try:
                    with open(a.split("=", 1)[1]) as f:
                        hosts = f.read()
                except OSError:
                    hosts = ""
        found.append({"pid": pid, "argv": argv, "hosts": hosts})
    return found


def snapshot(host_ns: str | None, routers: list[str], networks: list[str]) -> dict:
    """What the kernel of one host realizes apart from the L2 and firewall backends (whose drivers' `held` adds
    theirs): host links/routes, QoS (mangle, qdiscs), and the qrouter- namespaces of `routers` and qdhcp-
    namespaces of `networks` (only those: namespace names are global on a lab machine)."""
    snap = {"host_ns": host_ns, "namespaces": ip.list_netns(), "links": _links(host_ns), "routes": _routes(host_ns),
            "iptables": iptables(host_ns, ("mangle",)), "qdiscs": tc.qdiscs(host_ns), "routers": {}, "dhcp": {}}
    for rid in routers:
        snap["routers"][rid] = _namespace(names.qrouter(rid), ("nat", "filter", "mangle"))
    for net in networks:
        d = _namespace(names.qdhcp(net), ())
        if d["exists"]:
            d["dnsmasq"] = _dnsmasq(d["ns"])
        snap["dhcp"][net] = d
    return snap


def route_get(ns: str | None, dst: str, src: str | None = None, iif: str | None = None) -> dict:
    """The kernel's routing decision for one packet: {'dev', 'gateway', 'type'} or {'error': message}."""
    argv = ["ip", "-j", "route", "get", dst]
    if src:
        argv += ["from", src]
    if iif:
        argv += ["iif", iif]
    res = proc.run(argv, netns=ns, check=False)
    if res.returncode != 0:
        return {"error": res.stderr.strip() or f"ip route get exited {res.returncode}"}
    try:
        r = json.loads(res.stdout)[0]
    except (ValueError, IndexError) as e:
        raise KernelError(f"cannot read `ip route get` output: {res.stdout!r}") from e
    return {"dev": r.get("dev"), "gateway": r.get("gateway"), "type": r.get("type", "unicast"),
            "prefsrc": r.get("prefsrc")}
