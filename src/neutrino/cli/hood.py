"""`neutrino hood OBJECT` and `neutrino trace SRC DST`: the seed page's look under the hood, done for the user.

Both go through neutrino.hood.where (the same code the web page at /ui calls): the host's view from the server's
agent endpoint (what the server wants), a snapshot of the host's kernel (lib.inspect), and the pure hood code.
Objects are found by instance name (the lab's record or the API), or by id, id prefix or name of a port, router or
network in a host's view.
"""
from __future__ import annotations

import json

import typer

from neutrino.cli.console import make_console
from neutrino.errors import NeutrinoError

console = make_console()

STATE_DIR = typer.Option(None, "--state-dir", envvar="NEUTRINO_STATE_DIR", help="the lab's state directory")
SERVER = typer.Option(None, "--server", help="server URL or unix:PATH (default: the lab's socket)")
TOKEN = typer.Option(None, "--token", envvar="NEUTRINO_AGENT_TOKEN", help="agent token (default: the lab's)")
HOST = typer.Option(None, "--host", help="look only at this host")
HOST_NS = typer.Option(None, "--host-ns", help="the host's network namespace (default: the lab's; '-' = this one)")
OVS_RUNDIR = typer.Option(None, "--ovs-rundir", help="the host's OVS run directory (default: the lab's)")
AGENT_CONFIG = typer.Option(None, "--agent-config", help="on a host: its agent's config file (server, token, "
                            "host, backends, bridge mappings), instead of a lab's or the other options")
JSON = typer.Option(False, "--json", help="print data instead of tables")


ERROR = 3       # could not look (no lab, server down, unsupported backends): neither drift (1) nor a drop (2)


def _fail(e: Exception) -> None:
    """Exit 3 for what means "could not look" (ours, the OS's, the API client's: a lab whose Keystone is gone);
    anything else is a bug and keeps its traceback."""
    from keystoneauth1.exceptions import ClientException
    from openstack.exceptions import SDKException
    if not isinstance(e, (NeutrinoError, OSError, ClientException, SDKException)):
        raise e
    console.print(f"[red]error:[/red] {e}")
    raise typer.Exit(ERROR)


def _where(agent_config, *args):
    """Where to look: the host an agent config file describes, else a lab or the given server."""
    from neutrino.hood.where import Where
    if agent_config:
        from neutrino.agent.config import load
        return Where.of_agent(load(agent_config))
    return Where(*args)


def register(app: typer.Typer) -> None:
    @app.command()
    def hood(obj: str = typer.Argument(..., metavar="INSTANCE|PORT|ROUTER|NETWORK"), state_dir: str = STATE_DIR,
             server: str = SERVER, token: str = TOKEN, host: str = HOST, host_ns: str = HOST_NS,
             ovs_rundir: str = OVS_RUNDIR, agent_config: str = AGENT_CONFIG, as_json: bool = JSON):
        """Show the kernel objects realizing an instance, port, router or network, with drift against the view
        (exit status 1 when there is drift, 3 when it cannot look)."""
        from neutrino.hood import show
        from neutrino.hood.where import hood_report
        try:
            report = hood_report(_where(agent_config, state_dir, server, token, host, host_ns, ovs_rundir), obj)
        except Exception as e:                              # noqa: BLE001 - sorted by _fail
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
              host_ns: str = HOST_NS, ovs_rundir: str = OVS_RUNDIR, agent_config: str = AGENT_CONFIG,
              as_json: bool = JSON):
        """Walk one packet (the first of its flow) through the realized state: delivered, or dropped where and by
        which rule (exit status 0 delivered, 2 dropped, 3 when it cannot look)."""
        from neutrino.hood.trace import render
        from neutrino.hood.where import PROTOS, trace_flow
        if proto not in PROTOS:
            raise typer.BadParameter("--proto must be tcp, udp, icmp or arp")
        try:
            result = trace_flow(_where(agent_config, state_dir, server, token, host, host_ns, ovs_rundir), src, dst,
                                proto, port, src_ip, src_mac)
        except Exception as e:                              # noqa: BLE001 - sorted by _fail
            _fail(e)
        if as_json:
            print(json.dumps(result.to_dict(), indent=2))
        else:
            for line in render(result):
                console.print(line)
        raise typer.Exit(0 if result.verdict == "delivered" else 2)
