"""Network namespaces, links, addresses and routes over netlink (pyroute2).

Every call is idempotent: ensure_* leaves the object as asked whether or not it existed, delete_* of something
absent is success. One netlink socket is kept per namespace for the life of the process (the kernel, not the
socket, is the cost: see reference/dataplane-on-this-machine.md).
"""
from __future__ import annotations

import ctypes
import errno
import ipaddress
import json
import os
import select
import socket
import struct
import threading

from pyroute2 import AsyncIPRoute, IPRoute, netns as _netns
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl import RTM_DELLINK, RTM_NEWLINK, RTMGRP_LINK

from neutrino.errors import KernelError
from neutrino.lib import nsocket, proc

NETNS_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000
_sockets: dict[str | None, IPRoute] = {}
_tables: dict[str | None, "LinkTable"] = {}
_lock = threading.RLock()


def sock(netns: str | None = None):
    """The cached netlink socket of a namespace (None = this process's own)."""
    with _lock:
        s = _sockets.get(netns)
        if s is None:
            if netns is not None and not netns_exists(netns):
                raise KernelError(f"network namespace {netns} does not exist", errno=errno.ENOENT)
            s = _sockets[netns] = _open(netns)
        return s


class _AsyncIPRouteInNetns(AsyncIPRoute):
    """pyroute2's AsyncIPRoute for a namespace, except where each thread's socket comes from: pyroute2 forks a child
    process that enters the namespace and hands the socket back (10-30 ms, more on a busy host, paid once per
    thread and namespace: by every guest's plug); here a short-lived thread of this process enters it and opens
    the socket (nsocket.in_netns). Everything else, one socket per thread included, is pyroute2's own."""

    def setup_socket(self) -> socket.socket:
        s = nsocket.in_netns(self.spec["netns"], socket.socket, socket.AF_NETLINK, socket.SOCK_DGRAM,
                             socket.NETLINK_ROUTE)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.status["sndbuf"])
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.status["rcvbuf"])
        return s


class _IPRouteInNetns(IPRoute):
    """The synchronous IPRoute around _AsyncIPRouteInNetns: what IPRoute.__init__ does, with that core."""

    def __init__(self, netns: str):     # noqa: PLW0231 - IPRoute.__init__ would make pyroute2's own core
        self.asyncore = _AsyncIPRouteInNetns(netns=netns, groups=0)
        self.asyncore.status["event_loop"] = "new"
        self.asyncore.local.keep_event_loop = True
        self.asyncore.event_loop.run_until_complete(self.asyncore.setup_endpoint())


def _open(netns: str | None) -> IPRoute:
    """An rtnetlink socket of the namespace, subscribed to no announcements (pyroute2 would otherwise parse every
    link change of the host, thousands at a time, before its next answer). pyroute2 gives each thread that uses it
    a socket of its own; handing it one ready fd instead breaks as soon as a second thread uses it (pyroute2 closes
    the fd it was given when it makes the first thread's copy, and the next thread wraps whatever reuses that
    number), so only how each thread's socket is opened is changed (_AsyncIPRouteInNetns)."""
    return _IPRouteInNetns(netns) if netns else IPRoute(groups=0)


def _forget(netns: str | None) -> None:
    with _lock:
        s = _sockets.pop(netns, None)
        table = _tables.pop(netns, None)
    if table is not None:
        table.close()
    if s is not None:
        try:
            s.close()
        except Exception:  # noqa: BLE001 - a dead socket is already closed
            pass


def _call(netns, fn, *args, ok=(), **kw):
    try:
        return fn(*args, **kw)
    except NetlinkError as e:
        if e.code in ok:
            return None
        raise KernelError(f"netlink {getattr(fn, '__name__', fn)} {args} {kw} in {netns or 'own ns'}: {e}",
                          errno=e.code) from e


BATCH_MIN_RATE = 100    # commands/s an `ip -batch` is given at least: in a namespace where a userspace ovs-vswitchd
                        # dumps every link on every link change, a cold sync of 5000 ports (35 000 commands) took
                        # over a minute


def batch(commands: list[str], netns: str | None = None, force: bool = False) -> None:
    """Many `ip` commands in one process (`ip -batch`, ~1000 veth pairs/s); with force, a failing command does not
    stop the rest (the error is still raised at the end)."""
    if commands:
        proc.run(["ip", *(["-n", netns] if netns else []), *(["-force"] if force else []), "-batch", "-"],
                 input="\n".join(commands) + "\n", timeout=max(60.0, len(commands) / BATCH_MIN_RATE))


# --- namespaces ---------------------------------------------------------------------------------------------------

def netns_exists(name: str) -> bool:
    return os.path.exists(os.path.join(NETNS_DIR, name))


def list_netns() -> list[str]:
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


def ensure_netns(name: str) -> None:
    """Create a namespace with lo up (made by a thread of this process, see _create_netns: no process is forked)."""
    if not netns_exists(name):
        _create_netns(name)
    set_up("lo", name)


_libc = ctypes.CDLL(None, use_errno=True)
MS_REC, MS_BIND, MS_SHARED = 0x4000, 0x1000, 1 << 20


def _create_netns(name: str) -> None:
    """`ip netns add NAME`, done by a short-lived thread of this process: it makes /run/netns a shared mount (as
    iproute2 does), unshares a new network namespace for itself alone, bind-mounts it on /run/netns/NAME and
    ends. (pyroute2 forks a child process for this, 10-30 ms and more on a loaded host.)"""
    def make() -> None:
        os.makedirs(NETNS_DIR, exist_ok=True)
        if _libc.mount(b"", NETNS_DIR.encode(), b"none", MS_SHARED | MS_REC, None) != 0:
            if _libc.mount(NETNS_DIR.encode(), NETNS_DIR.encode(), b"none", MS_BIND | MS_REC, None) != 0 or \
                    _libc.mount(b"", NETNS_DIR.encode(), b"none", MS_SHARED | MS_REC, None) != 0:
                raise KernelError(f"cannot share {NETNS_DIR}: {os.strerror(ctypes.get_errno())}")
        path = os.path.join(NETNS_DIR, name)
        try:
            os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
        except FileExistsError:
            return                                  # made meanwhile: as good
        if _libc.unshare(CLONE_NEWNET) != 0 or \
                _libc.mount(b"/proc/thread-self/ns/net", path.encode(), b"none", MS_BIND, None) != 0:
            err = ctypes.get_errno()
            os.unlink(path)
            raise KernelError(f"cannot create network namespace {name}: {os.strerror(err)}")
    box: list = []

    def runner() -> None:               # the thread ends in the new namespace: nothing else runs in it
        try:
            make()
        except BaseException as e:      # noqa: BLE001 - handed to the caller's thread
            box.append(e)
    t = threading.Thread(target=runner, name=f"netns-add-{name}", daemon=True)
    t.start()
    t.join()
    if box:
        raise box[0]


def delete_netns(name: str) -> None:
    """Remove a namespace; the kernel frees every device in it at once (the cheap way to delete veths)."""
    _forget(name)
    if netns_exists(name):
        try:
            _netns.remove(name)
        except FileNotFoundError:
            pass


# --- links --------------------------------------------------------------------------------------------------------

class LinkEvents:
    """Links as the kernel announces them in this process's namespace (RTMGRP_LINK): what lets the agent wire a tap
    the moment the hypervisor makes it instead of looking for it on a timer. A plain netlink socket read whole on
    each wake (pyroute2's own reader buffers announcements where select() no longer sees them), decoded with struct."""

    def __init__(self):
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK, socket.NETLINK_ROUTE)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self._sock.bind((0, RTMGRP_LINK))

    def wait(self, timeout: float) -> set[str]:
        """Names of links created or changed within timeout (empty when none)."""
        names: set[str] = set()
        if not select.select([self._sock], [], [], timeout)[0]:
            return names
        while True:
            try:
                data = self._sock.recv(1 << 16)
            except BlockingIOError:
                return names
            except OSError as e:                # ENOBUFS: announcements lost; the agent's timer look covers them
                if e.errno == errno.ENOBUFS:
                    return names
                raise
            names.update(_text(attrs.get(IFLA_IFNAME)) for kind, _, _, _, attrs in _link_messages(data)
                         if kind == RTM_NEWLINK)

    def close(self) -> None:
        self._sock.close()


def link_index(name: str, netns: str | None = None) -> int | None:
    found = sock(netns).link_lookup(ifname=name)
    return found[0] if found else None


def link_exists(name: str, netns: str | None = None) -> bool:
    return link_index(name, netns) is not None


def links(netns: str | None = None) -> dict[str, dict]:
    """name -> {index, kind, master (index), state, up, mtu, mac} for every link of a namespace.

    Dumped once per namespace (`ip -j -d link show`: 14x faster than parsing pyroute2 messages once a host has
    thousands of links, 2000 links: 0.04 s against 0.55 s), then kept current from the kernel's link announcements
    (see LinkTable): every sync of the agent starts here, and a one-port change must not cost a dump of 5000 links.
    The entries are the table's own: read them, do not change them."""
    if netns is not None and not netns_exists(netns):
        raise KernelError(f"network namespace {netns} does not exist", errno=errno.ENOENT)
    with _lock:
        table = _tables.get(netns)
        if table is None or not table.current():
            if table is not None:
                table.close()
            table = _tables[netns] = LinkTable(netns)
        return table.links()


def _dump(netns: str | None) -> dict[str, dict]:
    raw = json.loads(proc.output(["ip", *(["-n", netns] if netns else []), "-j", "-d", "link", "show"]) or "[]")
    return _link_info(raw, netns)


def _link_info(raw: list[dict], netns: str | None) -> dict[str, dict]:
    index = {x["ifname"]: x["ifindex"] for x in raw}
    return {x["ifname"]: {
        "index": x["ifindex"],
        "kind": (x.get("linkinfo") or {}).get("info_kind"),
        "master": (index.get(x["master"]) or link_index(x["master"], netns)) if x.get("master") else None,
        "state": x.get("operstate"),
        "up": "UP" in x.get("flags", ()),
        "mtu": x.get("mtu"),
        "mac": x.get("address"),
    } for x in raw}


def _ns_inode(netns: str | None) -> int:
    return os.stat(os.path.join(NETNS_DIR, netns) if netns else "/proc/self/ns/net").st_ino


class LinkTable:
    """The links of one namespace: a dump, then the kernel's RTM_NEWLINK/RTM_DELLINK announcements applied as they
    queue up on a socket subscribed before the dump (each carries the link's whole state, so applying them in order
    ends at the kernel's). Lost announcements (ENOBUFS after a burst of thousands) mean a new dump, and a namespace
    made again under the same name a new table."""

    def __init__(self, netns: str | None):
        self.ns, self.inode = netns, _ns_inode(netns)
        self._sock = nsocket.in_netns(netns, _link_socket)
        self._dump()

    def _dump(self) -> None:
        self._links = _dump(self.ns)
        self._names = {link["index"]: name for name, link in self._links.items()}

    def current(self) -> bool:
        """Whether this table still follows the namespace of that name."""
        try:
            return _ns_inode(self.ns) == self.inode
        except FileNotFoundError:
            return False

    def links(self) -> dict[str, dict]:
        """A copy of the table after the announcements queued since the last look; after a burst larger than a dump
        (~1 KB of announcements per link), or one the kernel dropped, a dump."""
        chunks, size, lost = [], 0, False
        while True:
            try:
                data = self._sock.recv(1 << 20)
            except BlockingIOError:
                break
            except OSError as e:
                if e.errno != errno.ENOBUFS:
                    raise
                lost = True
                continue
            chunks.append(data)
            size += len(data)
        if lost or size > max(1 << 20, 1024 * len(self._links)):
            self._dump()                            # announcements from now on still count
        else:
            for data in chunks:
                for kind, family, idx, flags, attrs in _link_messages(data):
                    self._apply(kind, family, idx, flags, attrs)
        return dict(self._links)

    def _apply(self, kind: int, family: int, idx: int, flags: int, attrs: dict[int, bytes]) -> None:
        if family != socket.AF_UNSPEC or kind not in (RTM_NEWLINK, RTM_DELLINK):
            return                  # AF_BRIDGE ones tell of bridge ports (a DELLINK there: a port left its bridge)
        old = self._names.pop(idx, None)                  # a rename or a removal: the old name goes
        if old is not None:
            self._links.pop(old, None)
        if kind == RTM_DELLINK:
            return
        name = _text(attrs.get(IFLA_IFNAME))
        info = dict(_attrs(attrs.get(IFLA_LINKINFO, b"")))
        master = attrs.get(IFLA_MASTER)
        mtu = attrs.get(IFLA_MTU)
        oper = attrs.get(IFLA_OPERSTATE)
        mac = attrs.get(IFLA_ADDRESS)
        self._names[idx] = name
        self._links[name] = {
            "index": idx,
            "kind": _text(info.get(IFLA_INFO_KIND)) or None,
            "master": struct.unpack("=I", master)[0] or None if master else None,
            "state": OPERSTATES[oper[0]] if oper and oper[0] < len(OPERSTATES) else None,
            "up": bool(flags & 1),
            "mtu": struct.unpack("=I", mtu)[0] if mtu else None,
            "mac": ":".join(f"{b:02x}" for b in mac) if mac else None,
        }

    def close(self) -> None:
        self._sock.close()


IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER, IFLA_OPERSTATE, IFLA_LINKINFO, IFLA_INFO_KIND = 1, 3, 4, 10, 16, 18, 1
OPERSTATES = ("UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP")


def _link_messages(data: bytes):
    """(type, family, index, flags, {attribute: payload}) of each rtnetlink link message in a datagram: only what
    the table keeps, read with struct (pyroute2's full decoding costs ~1 ms a message on a loaded host)."""
    off = 0
    while off + 32 <= len(data):
        length, kind = struct.unpack_from("=IH", data, off)
        if length < 32:
            return
        family, _, idx, flags = struct.unpack_from("=BxHiI", data, off + 16)
        yield kind, family, idx, flags, dict(_attrs(data[off + 32:off + length]))
        off += (length + 3) & ~3


def _attrs(data: bytes):
    off = 0
    while off + 4 <= len(data):
        alen, atype = struct.unpack_from("=HH", data, off)
        if alen < 4:
            return
        yield atype & 0x3FFF, data[off + 4:off + alen]
        off += (alen + 3) & ~3


def _text(raw: bytes | None) -> str | None:
    return raw.split(b"\0", 1)[0].decode() if raw is not None else None


def _link_socket() -> socket.socket:
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
                      socket.NETLINK_ROUTE)
    s.setsockopt(socket.SOL_SOCKET, 33, 4 << 20)       # SO_RCVBUFFORCE: room for a burst of announcements
    s.bind((0, RTMGRP_LINK))
    return s


def ensure_veth(name: str, peer: str, netns: str | None = None, peer_netns: str | None = None,
                mtu: int | None = None, peer_mac: str | None = None) -> None:
    """A veth pair `name` (in netns) <-> `peer` (in peer_netns), created directly in place, both ends up."""
    if not link_exists(name, netns):
        peer_spec: dict = {"ifname": peer}
        if peer_netns != netns:
            own = f"/proc/{os.getpid()}/ns/net"
            peer_spec["net_ns_fd"] = os.path.join(NETNS_DIR, peer_netns) if peer_netns else own
        if mtu:
            peer_spec["mtu"] = mtu
        if peer_mac:
            peer_spec["address"] = peer_mac
        kw = {"mtu": mtu} if mtu else {}
        if _call(netns, sock(netns).link, "add", ifname=name, kind="veth", peer=peer_spec, ok=(errno.EEXIST,), **kw):
            # made now with the asked MTU and MAC: only `up` is left, one request for each end
            _call(netns, sock(netns).link, "set", ifname=name, state="up")
            _call(peer_netns, sock(peer_netns).link, "set", ifname=peer, state="up")
            return
    set_link(name, netns, mtu=mtu, up=True)
    set_link(peer, peer_netns, mtu=mtu, mac=peer_mac, up=True)


def ensure_bridge(name: str, netns: str | None = None, mtu: int | None = None) -> None:
    if not link_exists(name, netns):
        _call(netns, sock(netns).link, "add", ifname=name, kind="bridge", ok=(errno.EEXIST,))
    set_link(name, netns, mtu=mtu, up=True)


def ensure_link(name: str, kind: str, netns: str | None = None) -> None:
    """A device of a kind that needs no options (e.g. `ifb`, `dummy`), up."""
    if not link_exists(name, netns):
        _call(netns, sock(netns).link, "add", ifname=name, kind=kind, ok=(errno.EEXIST,))
    set_link(name, netns, up=True)


def ensure_vxlan(name: str, vni: int, local: str, netns: str | None = None, dev: str | None = None,
                 port: int = 4789, mtu: int | None = None) -> None:
    """A kernel VXLAN device without multicast: peers come from FDB entries (l2population)."""
    if not link_exists(name, netns):
        kw = {"vxlan_id": vni, "vxlan_local": local, "vxlan_port": port, "vxlan_learning": 0}
        if dev:
            kw["vxlan_link"] = link_index(dev, netns)
        _call(netns, sock(netns).link, "add", ifname=name, kind="vxlan", ok=(errno.EEXIST,), **kw)
    set_link(name, netns, mtu=mtu, up=True)


def ensure_tap(name: str, netns: str | None = None, mtu: int | None = None) -> None:
    """A persistent TAP device (IFF_TAP, no packet info, as `ip tuntap add NAME mode tap`) for a VM to attach to
    (qemu `-netdev tap,ifname=NAME`), up; its own MAC is left alone (the VM owns the port's MAC)."""
    if not link_exists(name, netns):
        def add() -> None:          # /dev/net/tun makes the device in the namespace of the thread that opens it
            with IPRoute(groups=0) as here:
                _call(netns, here.link, "add", ifname=name, kind="tuntap", mode="tap", ifr={"no_pi": True},
                      ok=(errno.EEXIST,))
        nsocket.in_netns(netns, add)
    set_link(name, netns, mtu=mtu, up=True)


def set_link(name: str, netns: str | None = None, mtu: int | None = None, mac: str | None = None,
             master: str | None = None, up: bool | None = None) -> None:
    """Set only what differs from the link's current state."""
    idx = link_index(name, netns)
    if idx is None:
        raise KernelError(f"no link {name} in {netns or 'own ns'}", errno=errno.ENODEV)
    cur = sock(netns).get_links(idx)[0]
    kw: dict = {}
    if mtu and cur.get("IFLA_MTU") != mtu:
        kw["mtu"] = mtu
    if mac and (cur.get("IFLA_ADDRESS") or "").lower() != mac.lower():
        kw["address"] = mac
    if master is not None:
        midx = link_index(master, netns)
        if midx is None:
            raise KernelError(f"no master {master} in {netns or 'own ns'}", errno=errno.ENODEV)
        if cur.get("IFLA_MASTER") != midx:
            kw["master"] = midx
    if kw:
        _call(netns, sock(netns).link, "set", index=idx, **kw)
    if up is not None and bool(cur["flags"] & 1) != up:
        _call(netns, sock(netns).link, "set", index=idx, state="up" if up else "down")


def set_seen(link: dict, netns: str | None = None, mtu: int | None = None, master: int | None = None,
             up: bool | None = None) -> None:
    """set_link for a link as `links` just showed it (its entry), master by index: one netlink request with what
    differs (set_link looks the link up first: four round trips, and a cold sync of 1000 taps makes 1000 of them)."""
    kw: dict = {}
    if mtu and link["mtu"] != mtu:
        kw["mtu"] = mtu
    if master is not None and link["master"] != master:
        kw["master"] = master
    if up is not None and link["up"] != up:
        kw["state"] = "up" if up else "down"
    if kw:
        _call(netns, sock(netns).link, "set", index=link["index"], **kw)


BATCH_FROM = 16      # links changed at once from which one `ip -batch` process beats a netlink request each


def enslave(todo: list[tuple[str, str, int | None]], links: dict[str, dict], netns: str | None = None) -> None:
    """Put links into their bridges, up, with their MTU: [(link, bridge, mtu)], `links` as just read. A few by one
    netlink request each, many (a cold sync) by one `ip -batch` (1000 taps: ~0.1 s against ~2 s of requests)."""
    if len(todo) <= BATCH_FROM:
        for name, bridge, mtu in todo:
            set_seen(links[name], netns, mtu=mtu, master=links[bridge]["index"], up=True)
        return
    batch([f"link set dev {name}" + (f" mtu {mtu}" if mtu else "") + f" master {bridge} up"
           for name, bridge, mtu in todo], netns)


def set_up(name: str, netns: str | None = None) -> None:
    set_link(name, netns, up=True)


def delete_link(name: str, netns: str | None = None) -> None:
    if netns is not None and not netns_exists(netns):
        return
    idx = link_index(name, netns)
    if idx is not None:
        _call(netns, sock(netns).link, "del", index=idx, ok=(errno.ENODEV, errno.ENOENT))


# --- addresses ----------------------------------------------------------------------------------------------------

def addresses(dev: str, netns: str | None = None) -> set[str]:
    """The addresses of a device as 'ip/prefixlen' strings (link-local IPv6 left out)."""
    idx = link_index(dev, netns)
    if idx is None:
        return set()
    out = set()
    for a in sock(netns).get_addr(index=idx):
        ip = a.get("IFA_ADDRESS")
        if ip and not ip.startswith("fe80:"):
            out.add(f"{ip}/{a['prefixlen']}")
    return out


def ensure_addresses(dev: str, wanted: list[str] | set[str], netns: str | None = None, exclusive: bool = True) -> bool:
    """Make the device carry `wanted` ('ip/len'); with exclusive, remove others. True when anything changed."""
    idx = link_index(dev, netns)
    if idx is None:
        raise KernelError(f"no link {dev} in {netns or 'own ns'}", errno=errno.ENODEV)
    want = {str(ipaddress.ip_interface(w)) for w in wanted}
    have = addresses(dev, netns)
    for cidr in sorted(want - have):
        iface = ipaddress.ip_interface(cidr)
        kw = {}
        if iface.version == 4:
            kw["broadcast"] = str(iface.network.broadcast_address)
        _call(netns, sock(netns).addr, "add", index=idx, address=str(iface.ip), prefixlen=iface.network.prefixlen,
              ok=(errno.EEXIST,), **kw)
    if exclusive:
        for cidr in sorted(have - want):
            iface = ipaddress.ip_interface(cidr)
            _call(netns, sock(netns).addr, "del", index=idx, address=str(iface.ip), prefixlen=iface.network.prefixlen,
                  ok=(errno.EADDRNOTAVAIL, errno.ENOENT))
    return bool(want - have) or (exclusive and bool(have - want))


# --- routes -------------------------------------------------------------------------------------------------------

def routes(netns: str | None = None, family: int = 4) -> list[dict]:
    """Main-table unicast routes as {'dst': 'cidr'|'default', 'gateway': ip|None, 'dev': name, 'proto': n}."""
    fam = 2 if family == 4 else 10
    names = {v["index"]: k for k, v in links(netns).items()}
    out = []
    for r in sock(netns).get_routes(family=fam, table=254):
        if r["type"] != 1:
            continue
        dst = r.get("RTA_DST")
        out.append({
            "dst": f"{dst}/{r['dst_len']}" if dst else "default",
            "gateway": r.get("RTA_GATEWAY"),
            "dev": names.get(r.get("RTA_OIF")),
            "proto": r["proto"],
        })
    return out


def ensure_route(dst: str, netns: str | None = None, gateway: str | None = None, dev: str | None = None) -> None:
    """Add or replace one route ('default' or a CIDR) so it goes via gateway/dev."""
    kw: dict = {"dst": "0.0.0.0/0" if dst == "default" else dst}
    if dst == "default" and gateway and ":" in gateway:
        kw["dst"] = "::/0"
    if gateway:
        kw["gateway"] = gateway
    if dev:
        kw["oif"] = link_index(dev, netns)
    _call(netns, sock(netns).route, "replace", **kw)


def delete_route(dst: str, netns: str | None = None, gateway: str | None = None) -> None:
    kw: dict = {"dst": "0.0.0.0/0" if dst == "default" else dst}
    if gateway:
        kw["gateway"] = gateway
    _call(netns, sock(netns).route, "del", ok=(errno.ESRCH, errno.ENOENT), **kw)


def fdb_entries(dev: str, netns: str | None = None) -> set[tuple[str, str]]:
    """(mac, remote ip) pairs of a VXLAN device's FDB; 00:00:00:00:00:00 entries are where floods go."""
    idx = link_index(dev, netns)
    if idx is None:
        return set()
    return {(m.get("NDA_LLADDR"), m.get("NDA_DST")) for m in sock(netns).fdb("dump", ifindex=idx)
            if m["ifindex"] == idx and m.get("NDA_DST")}


def fdb_append(dev: str, mac: str, dst: str, netns: str | None = None) -> None:
    """`bridge fdb append MAC dev DEV dst DST` (a permanent entry; several dsts per MAC allowed)."""
    _call(netns, sock(netns).fdb, "append", ifindex=link_index(dev, netns), lladdr=mac, dst=dst, state=0x80,
          ok=(errno.EEXIST,))


def fdb_delete(dev: str, mac: str, dst: str, netns: str | None = None) -> None:
    idx = link_index(dev, netns)
    if idx is not None:
        _call(netns, sock(netns).fdb, "del", ifindex=idx, lladdr=mac, dst=dst, ok=(errno.ENOENT,))


def detach(name: str, netns: str | None = None) -> None:
    """`ip link set NAME nomaster`: take a device out of its bridge (absent or already free is success)."""
    idx = link_index(name, netns)
    cur = _call(netns, sock(netns).get_links, idx, ok=(errno.ENODEV,)) if idx is not None else None
    if cur and cur[0].get("IFLA_MASTER"):         # a device going away meanwhile (its namespace deleted) is free
        _call(netns, sock(netns).link, "set", index=idx, master=0, ok=(errno.ENODEV,))
