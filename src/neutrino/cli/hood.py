"""`neutrino hood OBJECT` and `neutrino trace SRC DST`: the seed page's look under the hood, done for the user.

Both fetch the host's view from the server's agent endpoint (what the server wants), take a snapshot of the host's
kernel (lib.inspect) and hand both to the pure hood code. Objects are found by instance name (the lab's record or
the API), or by id, id prefix or name of a port, router or network in a host's view.
"""
from __future__ import annotations

import ipaddress
import json
import os

import typer
from rich.console import Console

from neutrino.errors import NeutrinoError, NotFound
from neutrino.lab.paths import Lab

console = Console(highlight=False)

STATE_DIR = typer.Option(None, "--state-dir", envvar="NEUTRINO_STATE_DIR", help="the lab's state directory")
SERVER = typer.Option(None, "--server", help="server URL or unix:PATH (default: the lab's socket)")
TOKEN = typer.Option(None, "--token", envvar="NEUTRINO_AGENT_TOKEN", help="agent token (default: the lab's)")
HOST = typer.Option(None, "--host", help="look only at this host")
HOST_NS = typer.Option(None, "--host-ns", help="the host's network namespace (default: the lab's; '-' = this one)")
OVS_RUNDIR = typer.Option(None, "--ovs-rundir", help="the host's OVS run directory (default: the lab's)")
JSON = typer.Option(False, "--json", help="print data instead of tables")


class Where:
    """Where the views and kernels of a deployment are: a lab (default) or a server URL and this machine."""

    def __init__(self, state_dir, server, token, host, host_ns, ovs_rundir):
        self.lab = Lab(state_dir)
        if server is None and not self.lab.exists():
            raise NotFound(f"no lab in {self.lab.state_dir} (give --state-dir, or --server and --token)")
        self.server = server or f"unix:{self.lab.socket}"
        if token is None and self.lab.exists():
            from neutrino.lab.processes import agent_token
            token = agent_token(self.lab)
        self.token = token
        if self.lab.exists():
            settings = self.lab.load()
            if (settings.l2, settings.firewall) != ("ovs", "iptables"):
                raise NeutrinoError(f"this lab runs {settings.l2} + {settings.firewall}; hood and trace read the "
                                    f"seed's ovs + iptables wiring only")
        count = self.lab.load().hosts if self.lab.exists() else 1
        self.hosts = [host] if host else [self.lab.host_name(i) for i in range(1, count + 1)]
        self._host_ns, self._ovs_rundir = host_ns, ovs_rundir
        self._views: dict[str, dict] = {}

    def view(self, host: str) -> dict:
        if host not in self._views:
            from neutrino.sync.client import SyncClient
            client = SyncClient(self.server, host, self.token)
            try:
                self._views[host] = client.view(since=0, wait=0)
            finally:
                client.close()
        return self._views[host]

    def host_ns(self, host: str) -> str | None:
        if self._host_ns:
            return None if self._host_ns == "-" else self._host_ns
        return self.lab.host_ns(host) if self.lab.exists() else None

    def snapshot(self, host: str) -> dict:
        from neutrino.lib import inspect
        view = self.view(host)
        rundir = self._ovs_rundir or (self.lab.ovs_rundir(host) if self.lab.exists() else None)
        return inspect.snapshot(self.host_ns(host), rundir, [r["id"] for r in view.get("routers", [])],
                                [d["network_id"] for d in view.get("dhcp", [])])

    def instance_port(self, name: str) -> tuple[str, str] | None:
        """(port id, host) of an instance: the lab's record, else the API (a port named so)."""
        if self.lab.exists():
            rec = self.lab.load().instances.get(name)
            if rec:
                return rec["port_id"], rec["host"]
            if os.path.exists(self.lab.clouds_yaml):
                from neutrino.lab.clouds import connect
                found = list(connect(self.lab, "admin").network.ports(name=name))
                if len(found) == 1:
                    return found[0].id, found[0].binding_host_id
        return None

    def api_object(self, kind: str, ident: str) -> dict | None:
        """What the API says about the object (status, name, binding), when the lab's clouds.yaml is there."""
        if not (self.lab.exists() and os.path.exists(self.lab.clouds_yaml)):
            return None
        from openstack import exceptions
        from neutrino.lab.clouds import connect
        try:
            net = connect(self.lab, "admin").network
            obj = {"port": net.get_port, "router": net.get_router, "network": net.get_network}[kind](ident)
        except exceptions.SDKException as e:
            return {"error": str(e)}
        keys = ("name", "status", "binding_host_id", "device_owner", "fixed_ips", "security_group_ids",
                "external_gateway_info", "provider_network_type", "provider_segmentation_id")
        return {k: getattr(obj, k) for k in keys if getattr(obj, k, None) not in (None, "", [])}

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


def _fail(e: Exception) -> None:
    console.print(f"[red]error:[/red] {e}")
    raise typer.Exit(1)


def _is_ip(s: str) -> bool:
    try:
        ipaddress.ip_address(s)
        return True
    except ValueError:
        return False


def register(app: typer.Typer) -> None:
    @app.command()
    def hood(obj: str = typer.Argument(..., metavar="INSTANCE|PORT|ROUTER|NETWORK"), state_dir: str = STATE_DIR,
             server: str = SERVER, token: str = TOKEN, host: str = HOST, host_ns: str = HOST_NS,
             ovs_rundir: str = OVS_RUNDIR, as_json: bool = JSON):
        """Show the kernel objects realizing an instance, port, router or network, with drift against the view
        (exit status 1 when there is drift)."""
        from neutrino.hood import collect, show
        try:
            where = Where(state_dir, server, token, host, host_ns, ovs_rundir)
            h, kind, found = where.find(obj)
            report = collect.collect(where.view(h), where.snapshot(h), kind, found)
            report["api"] = where.api_object(kind, found["id"])
        except (NeutrinoError, OSError) as e:
            _fail(e)
        if as_json:
            print(json.dumps(report, indent=2))
        else:
            console.print(show.render(report))
        raise typer.Exit(1 if report["drift"] else 0)

    @app.command()
    def trace(src: str = typer.Argument(..., metavar="SRC", help="an instance or port, or 'external'"),
              dst: str = typer.Argument(..., metavar="DST", help="an instance, a port, an IPv4 address or 'external'"),
              proto: str = typer.Option("icmp", "--proto", help="tcp | udp | icmp | arp"),
              port: int = typer.Option(None, "--port", help="destination port (icmp: type)"),
              src_ip: str = typer.Option(None, "--src-ip", help="send from this address (anti-spoof checks)"),
              src_mac: str = typer.Option(None, "--src-mac", help="send from this MAC (anti-spoof checks)"),
              state_dir: str = STATE_DIR, server: str = SERVER, token: str = TOKEN, host: str = HOST,
              host_ns: str = HOST_NS, ovs_rundir: str = OVS_RUNDIR, as_json: bool = JSON):
        """Walk one packet (the first of its flow) through the realized state: delivered, or dropped where and by
        which rule (exit status 0 delivered, 2 dropped)."""
        from neutrino.hood.trace import render, trace as walk
        if proto not in ("tcp", "udp", "icmp", "arp"):
            raise typer.BadParameter("--proto must be tcp, udp, icmp or arp")
        try:
            where = Where(state_dir, server, token, host, host_ns, ovs_rundir)
            ends = {}
            for name, ref in (("src", src), ("dst", dst)):
                if ref == "external" or (name == "dst" and _is_ip(ref)):
                    ends[name] = (None, ref)
                    continue
                h, kind, found = where.find(ref)
                if kind != "port":
                    raise NotFound(f"{ref!r} is a {kind}; give an instance or a port")
                ends[name] = (h, found["id"])
            h = ends["src"][0] or ends["dst"][0] or where.hosts[0]
            result = walk(where.view(h), where.snapshot(h), ends["src"][1], ends["dst"][1], proto, port,
                          src_ip=src_ip, src_mac=src_mac)
        except (NeutrinoError, OSError) as e:
            _fail(e)
        if as_json:
            print(json.dumps(result.to_dict(), indent=2))
        else:
            for line in render(result):
                console.print(line)
        raise typer.Exit(0 if result.verdict == "delivered" else 2)

