"""`neutrino agent`: run the agent of one host until SIGTERM (the wiring stays when it stops)."""
from __future__ import annotations

import logging
from typing import Optional

import typer

from neutrino.agent import config as agent_config
from neutrino.agent.main import Agent, install_signal_handlers
from neutrino.config import StateDirError, ensure_state_dir

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def agent(
    config: Optional[str] = typer.Option(None, "--config", help="YAML file with the same keys as the flags"),
    host: Optional[str] = typer.Option(None, "--host", help="this host's name (ports bind to it)"),
    server: Optional[list[str]] = typer.Option(None, "--server", help="http://HOST:PORT or unix:/path/to/socket; "
                                               "repeat for servers sharing one database (fail-over in this order)"),
    token: Optional[str] = typer.Option(None, "--token", help="agent token (env NEUTRINO_AGENT_TOKEN)"),
    l2: Optional[str] = typer.Option(None, "--l2", help="ovs | linuxbridge (default ovs)"),
    firewall: Optional[str] = typer.Option(None, "--firewall", help="iptables | nftables (default iptables)"),
    roles: Optional[str] = typer.Option(None, "--roles", help="comma list of l2,dhcp,l3,metadata (default all)"),
    state_dir: Optional[str] = typer.Option(None, "--state-dir", help="this agent's files"),
    bridge_mapping: Optional[list[str]] = typer.Option(None, "--bridge-mapping",
                                                       help="PHYSNET:BRIDGE, repeatable (default public:br-ex)"),
    tunnel_ip: Optional[str] = typer.Option(None, "--tunnel-ip", help="local VXLAN endpoint"),
    ovs_rundir: Optional[str] = typer.Option(None, "--ovs-rundir",
                                             help="lab: run our own OVS daemons from DIR (started if absent)"),
    debug: bool = typer.Option(False, "--debug", help="log every resync, not only changes"),
) -> None:
    """Watch this host's view on the server and make the kernel match it."""
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, format=LOG_FORMAT)
    logging.getLogger("httpx").setLevel(logging.WARNING)      # one line per long-poll is noise
    try:
        cfg = agent_config.load(config, host=host, server=server or None, token=token, l2=l2, firewall=firewall,
                                roles=roles, state_dir=state_dir, bridge_mappings=bridge_mapping or None,
                                tunnel_ip=tunnel_ip, ovs_rundir=ovs_rundir)
        cfg.state_dir = ensure_state_dir(cfg.state_dir)
    except (agent_config.AgentConfigError, StateDirError, OSError) as e:
        typer.echo(f"neutrino agent: {e}", err=True)
        raise typer.Exit(2) from e
    agent_ = Agent(cfg.host_config(), cfg.l2, cfg.firewall, cfg.roles, ovs_rundir=cfg.ovs_rundir,
                   report_interval=cfg.report_interval, resync_interval=cfg.resync_interval, poll_wait=cfg.poll_wait)
    install_signal_handlers(agent_)
    agent_.run()


def register(app: typer.Typer) -> None:
    app.command("agent")(agent)
