"""Where the views and kernels of a deployment are, and the two questions asked of them: the hood report of an
object and the trace of a packet. The CLI (`neutrino hood/trace`, `--json`) and the web page (/ui) both call
`hood_report` and `trace_flow`, so the terminal, the JSON and the page show the same data.

`Where` reads a lab (default) or a server URL and this machine: views from the server's agent endpoint, instance
names from the lab's record or the API. The server's page uses a subclass that reads views from its own database.
"""
from __future__ import annotations

import ipaddress
import os

from neutrino.errors import BadRequest, NotFound, ServiceUnavailable
from neutrino.lab.paths import Lab

PROTOS = ("tcp", "udp", "icmp", "arp")
API_KEYS = ("name", "status", "binding:host_id", "device_owner", "fixed_ips", "security_groups",
            "external_gateway_info", "provider:network_type", "provider:segmentation_id")


class Where:
    """Where the views and kernels of a deployment are: a lab (default) or a server URL and this machine."""

    def __init__(self, state_dir=None, server=None, token=None, host=None, host_ns=None, ovs_rundir=None):
        self.lab = Lab(state_dir)
        if server is None and not self.lab.exists():
            raise NotFound(f"no lab in {self.lab.state_dir} (give --state-dir, or --server and --token)")
        self.server = server or f"unix:{self.lab.socket}"
        if token is None and self.lab.exists():
            from neutrino.lab.processes import agent_token
            token = agent_token(self.lab)
        self.token = token
        count = self.lab.load().hosts if self.lab.exists() else 1
        self.hosts = [host] if host else [self.lab.host_name(i) for i in range(1, count + 1)]
        self._host_ns, self._ovs_rundir = host_ns, ovs_rundir
        self._views: dict[str, dict] = {}
        self._agent = None

    @classmethod
    def of_agent(cls, config) -> Where:
        """The host an agent's settings (agent/config.py) describe, looked at from that host: its server, token,
        backends and bridge mappings, its kernel in this namespace and its OVS where the agent finds it."""
        from neutrino.agent.config import SYSTEM_OVS_DB
        rundir = config.ovs_rundir or os.path.dirname(SYSTEM_OVS_DB.removeprefix("unix:"))
        where = cls(server=config.server[0], token=config.token, host=config.host, host_ns="-", ovs_rundir=rundir)
        where._agent = config
        return where

    def backends(self, host: str) -> tuple[str, str]:
        """(l2, firewall) the host runs: its agent's settings, the lab's, else what its kernel shows."""
        if self._agent is not None:
            return self._agent.l2, self._agent.firewall
        if self.lab.exists():
            settings = self.lab.load()
            return settings.l2, settings.firewall
        from neutrino.hood.backends import detect
        return detect(self.host_ns(host), self._ovs_rundir)

    def bridge_mappings(self, host: str) -> dict[str, str] | None:
        """physnet -> bridge of the host's agent, when known (None: the lab's and DevStack's public:br-ex)."""
        return dict(self._agent.bridge_mappings) if self._agent is not None else None

    def fetch_view(self, host: str) -> dict:
        from neutrino.sync.client import SyncClient
        client = SyncClient(self.server, host, self.token)
        try:
            return client.view(since=0, wait=0)
        finally:
            client.close()

    def view(self, host: str) -> dict:
        if host not in self._views:
            self._views[host] = self.fetch_view(host)
        return self._views[host]

    def host_ns(self, host: str) -> str | None:
        if self._host_ns:
            return None if self._host_ns == "-" else self._host_ns
        return self.lab.host_ns(host) if self.lab.exists() else None

    def snapshot(self, host: str) -> dict:
        """What the host's kernel holds, read through its L2 and firewall drivers (hood.backends)."""
        from neutrino.hood import backends
        view = self.view(host)
        rundir = self._ovs_rundir or (self.lab.ovs_rundir(host) if self.lab.exists() else None)
        return backends.read(self.host_ns(host), rundir, [r["id"] for r in view.get("routers", [])],
                             [d["network_id"] for d in view.get("dhcp", [])], *self.backends(host),
                             bridge_mappings=self.bridge_mappings(host))

    def named_port(self, name: str) -> tuple[str, str] | None:
        """(port id, host) of the one port with this name, asked of the API (the lab's admin cloud)."""
        if not os.path.exists(self.lab.clouds_yaml):
            return None
        from neutrino.lab.clouds import connect
        found = list(connect(self.lab, "admin").network.ports(name=name))
        return (found[0].id, found[0].binding_host_id) if len(found) == 1 else None

    def instance_port(self, name: str) -> tuple[str, str] | None:
        """(port id, host) of an instance: the lab's record, else the API (a port named so)."""
        rec = self.lab.load().instances.get(name) if self.lab.exists() else None
        return (rec["port_id"], rec["host"]) if rec else self.named_port(name)

    def api_object(self, kind: str, ident: str) -> dict | None:
        """What the API says about the object (status, name, binding), when the lab's clouds.yaml is there."""
        if not (self.lab.exists() and os.path.exists(self.lab.clouds_yaml)):
            return None
        from neutrino.lab.clouds import connect
        r = connect(self.lab, "admin").network.get(f"/{kind}s/{ident}")
        if r.status_code != 200:
            return {"error": f"GET /v2.0/{kind}s/{ident}: HTTP {r.status_code}"}
        return api_summary(r.json()[kind])

    def check_address(self, address: str) -> None:
        """A destination address may be traced to (anything, from the machine's own shell)."""

    def find(self, ref: str) -> tuple[str, str, dict]:
        """(host, kind, object) for an instance name or a port/router/network reference."""
        from neutrino.hood.collect import find
        inst = self.instance_port(ref)
        if inst:
            ref, hosts = inst[0], [inst[1]] if inst[1] in self.hosts else self.hosts
        else:
            hosts = self.hosts
        errors = []
        for host in hosts:
            try:
                kind, obj = find(self.view(host), ref)
                return host, kind, obj
            except NotFound as e:
                errors.append(str(e))
        raise NotFound("; ".join(errors) or f"nothing named {ref!r}")


def api_summary(obj: dict) -> dict:
    """The API attributes a hood report shows next to the kernel objects."""
    return {k: obj[k] for k in API_KEYS if obj.get(k) not in (None, "", [])}


def _is_ip(s: str) -> bool:
    try:
        ipaddress.ip_address(s)
        return True
    except ValueError:
        return False


def hood_report(where: Where, ref: str) -> dict:
    """The hood report of an instance, port, router or network (what `neutrino hood --json` prints)."""
    from neutrino.hood import collect
    host, kind, found = where.find(ref)
    report = collect.collect(where.view(host), where.snapshot(host), kind, found)
    report["api"] = where.api_object(kind, found["id"])
    return report


def trace_ends(where: Where, src: str, dst: str) -> dict[str, tuple[str | None, str]]:
    """{'src'|'dst': (host or None, port id | 'external' | address)} for the trace's two ends."""
    ends = {}
    for name, ref in (("src", src), ("dst", dst)):
        if ref == "external" or (name == "dst" and _is_ip(ref)):
            if ref != "external":
                where.check_address(ref)
            ends[name] = (None, ref)
            continue
        h, kind, found = where.find(ref)
        if kind != "port":
            raise NotFound(f"{ref!r} is a {kind}; give an instance or a port")
        ends[name] = (h, found["id"])
    return ends


def trace_flow(where: Where, src: str, dst: str, proto: str = "icmp", port: int | None = None,
               src_ip: str | None = None, src_mac: str | None = None):
    """Walk one packet from src to dst through the realized state (what `neutrino trace` shows)."""
    from neutrino.hood.trace import trace
    if proto not in PROTOS:
        raise BadRequest(f"protocol must be one of {', '.join(PROTOS)}")
    ends = trace_ends(where, src, dst)
    h = ends["src"][0] or ends["dst"][0] or next(iter(where.hosts), None)
    if h is None:
        raise ServiceUnavailable("no host to trace on: no agent has reported yet")
    return trace(where.view(h), where.snapshot(h), ends["src"][1], ends["dst"][1], proto, port, src_ip=src_ip,
                 src_mac=src_mac)
