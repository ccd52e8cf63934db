"""`neutrino up | down | restart | status | shell`: the lab of emulated hosts that makes the seed page true on one
machine."""
from __future__ import annotations

import sys

import typer
from neutrino.cli.console import make_console
from rich.table import Table

from neutrino import names
from neutrino.errors import NeutrinoError
from neutrino.lab import processes
from neutrino.lab.paths import Lab

console = make_console()

STATE_DIR = typer.Option(None, "--state-dir", envvar="NEUTRINO_STATE_DIR",
                         help="the lab's state directory (default /var/lib/neutrino)")


def look_around(lab: Lab, result) -> str:
    """The seed page's commands with this lab's real names filled in."""
    vm = result.vm
    router_ns, dhcp_ns = names.qrouter(result.router_id), names.qdhcp(result.private_network_id)
    fip = vm["floating_ips"][0] if vm.get("floating_ips") else "<floating ip>"
    prefix = f"neutrino --state-dir {lab.state_dir}" if lab.state_dir != Lab().state_dir else "neutrino"
    return "\n".join([
        "Look around:",
        f"  export OS_CLIENT_CONFIG_FILE={lab.clouds_yaml}",
        "  openstack --os-cloud demo network list",
        "  openstack --os-cloud demo port list",
        "  openstack --os-cloud demo floating ip list",
        "  openstack --os-cloud demo router show router1",
        f"  {prefix} instance list",
        "",
        f"Inside the emulated host ({prefix} shell), as on the seed page:",
        "  ip a",
        "  ip netns list",
        *_l2_and_firewall_commands(result.settings, vm.get("port_id", "")),
        f"  ip netns exec {router_ns} ip route",
        f"  ip netns exec {router_ns} iptables -t nat -S",
        f"  ip netns exec {dhcp_ns} ip a",
        "  ps ww $(pgrep dnsmasq)",
        f"  ping -c1 {fip}; nc {fip} 22",
        "",
        f"From vm1: {prefix} instance exec vm1 -- curl -s http://169.254.169.254/openstack/latest/meta_data.json",
        f"Done? {prefix} down",
    ])


def _l2_and_firewall_commands(settings, port_id: str) -> list[str]:
    """The bridge and security group commands that fit the lab's backends."""
    if settings.l2 == "ovs":
        l2 = ["  ovs-vsctl list-br", "  ovs-vsctl list-ports br-int", "  ovs-vsctl list-ports br-ex"]
    else:
        l2 = ["  bridge link show", f"  ip -d link show {names.tap(port_id)}"]
    if settings.firewall == "iptables":
        prefix = names.IPT_PREFIX if settings.l2 == "ovs" else names.IPT_LB_PREFIX
        return l2 + [f"  iptables -L {names.sg_chain('i', port_id, prefix)}"]
    return l2 + ["  nft list table inet neutrino"]


def _servers_table(lab: Lab, settings) -> list[int]:
    """Print each server's pid and URL; the indexes of those that answer."""
    table = Table("server", "pid", "API", "agents' socket", "state", title="servers")
    answering = []
    for i in range(1, settings.servers + 1):
        pid = processes.server_pid(lab, i)
        ok = pid is not None and processes.server_answers(lab, settings, i)
        if ok:
            answering.append(i)
        table.add_row(str(i), str(pid or "-"), f"http://127.0.0.1:{settings.server_port(i)}",
                      lab.server_file(i, "sock"), "[green]answering[/]" if ok else
                      "[red]not running[/]" if pid is None else "[red]not answering[/]")
    console.print(table)
    return answering


def _page_link(lab: Lab, settings, server: int = 1) -> str:
    from neutrino.lab.clouds import page_link
    return page_link(lab, settings, server)


def _fail(e: Exception) -> None:
    console.print(f"[red]error:[/red] {e}")
    raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    @app.command()
    def up(state_dir: str = STATE_DIR,
           hosts: int = typer.Option(1, help="emulated hosts (more than 1: VXLAN over an underlay)"),
           l2: str = typer.Option("ovs", help="ovs | linuxbridge"),
           firewall: str = typer.Option("iptables", help="iptables | nftables"),
           port: int = typer.Option(None, help="Networking API port (default 9696, or a free one if taken)"),
           identity_port: int = typer.Option(None, help="Identity port (default 5000, or a free one if taken)"),
           servers: int = typer.Option(1, help="server processes on one database (more than 1: --db postgresql)"),
           db: str = typer.Option("sqlite", help="sqlite | postgresql (the lab's own cluster in its state dir)"),
           vm: bool = typer.Option(False, "--vm", help="make vm1 a real QEMU VM (default: a namespace guest)")):
        """Start the server(s), emulated host(s) and agents, and build the seed page's world with vm1 reachable."""
        from neutrino.seed import lifecycle
        if hosts < 1 or hosts > 250:
            raise typer.BadParameter("--hosts must be 1..250")
        if db not in ("sqlite", "postgresql"):
            raise typer.BadParameter("--db must be sqlite or postgresql")
        if servers < 1 or servers > 16 or (servers > 1 and db != "postgresql"):
            raise typer.BadParameter("--servers must be 1..16, and more than 1 needs --db postgresql")
        lab = Lab(state_dir)
        try:
            with console.status("bringing the lab up...") as status:
                def say(msg: str) -> None:
                    console.print(msg)
                    status.update(msg)
                result = lifecycle.up(lab, hosts=hosts, l2=l2, firewall=firewall, port=port,
                                      identity_port=identity_port, say=say, servers=servers, db=db,
                                      vm_kind="vm" if vm else "namespace")
        except (NeutrinoError, OSError) as e:
            _fail(e)
        ok = all(result.reachable)
        console.print(f"\n[{'green' if ok else 'red'}]vm1 {'reachable' if ok else 'NOT reachable'} on its floating "
                      f"IP {result.vm['floating_ips'][0]} after {result.seconds:.1f} s[/]")
        console.print(f"Lab {lab.id}: server {lab.url(result.settings)} (identity "
                      f"{lab.identity_url(result.settings)}), state in {lab.state_dir}")
        console.print(f"Topology page (signed in to the demo project): {_page_link(lab, result.settings)}\n", soft_wrap=True)
        console.print(look_around(lab, result))
        if not ok:
            raise typer.Exit(1)

    @app.command()
    def down(state_dir: str = STATE_DIR,
             keep_data: bool = typer.Option(False, "--keep-data", help="keep the state dir (database, logs)")):
        """Stop everything the lab started and delete every namespace it made."""
        from neutrino.seed import lifecycle
        lab = Lab(state_dir)
        errors = lifecycle.down(lab, keep_data=keep_data, say=console.print)
        if errors:
            console.print(f"[red]lab {lab.id}: {len(errors)} step(s) failed[/red]; state kept in {lab.state_dir}")
            raise typer.Exit(1)
        console.print(f"lab {lab.id} is down")

    @app.command()
    def restart(component: str = typer.Argument("all", help="server | agent | all"),
                host: str = typer.Option(None, "--host", help="only this emulated host's agent (default: every host)"),
                state_dir: str = STATE_DIR):
        """Restart one component of the running lab in place (same ports, state and kernel objects)."""
        from neutrino.seed import lifecycle
        try:
            lifecycle.restart(Lab(state_dir), component, host, say=console.print)
        except (NeutrinoError, OSError) as e:
            _fail(e)

    @app.command()
    def status(state_dir: str = STATE_DIR):
        """Server, agents and resources of the lab at a glance."""
        lab = Lab(state_dir)
        if not lab.exists():
            console.print(f"no lab in {lab.state_dir} (start one with `neutrino up`)")
            raise typer.Exit(1)
        settings = lab.load()
        console.print(f"lab {lab.id} in {lab.state_dir}: {settings.hosts} host(s), {settings.l2} + "
                      f"{settings.firewall}, {settings.servers} server(s) on {settings.db}")
        answering = _servers_table(lab, settings)
        if not answering:
            raise typer.Exit(1)
        console.print(f"topology page (signed in to the demo project): {_page_link(lab, settings, answering[0])}",
                      soft_wrap=True)
        from neutrino.instances import manager
        clouds = manager.Clouds.of(lab, server=answering[0])
        sockets = {f"unix:{sock}": f"server {i}"
                   for i, sock in enumerate(processes.server_sockets(lab, settings), start=1)}
        agents = Table("host", "agent", "alive", "agent pid", "watches", title="agents")
        for a in clouds.admin.network.agents():
            agent_pid = processes.agent_pid(lab, a.host)
            server = (a.configuration or {}).get("server", "")
            agents.add_row(a.host, a.agent_type, "[green]:-)[/]" if a.is_alive else "[red]XXX[/]",
                           str(agent_pid or "-"), sockets.get(server, server))
        console.print(agents)
        from neutrino.instances import vm as vm_guest
        accel = vm_guest.known_accel(lab)
        if accel:
            console.print(f"VMs: QEMU with {accel['accel'].upper()} ({accel['why']})")
        net = clouds.admin.network
        counts = Table("resource", "count", title="resources")
        for label, items in (("networks", net.networks()), ("subnets", net.subnets()), ("ports", net.ports()),
                             ("routers", net.routers()), ("floating IPs", net.ips()),
                             ("security groups", net.security_groups())):
            counts.add_row(label, str(sum(1 for _ in items)))
        console.print(counts)
        instances = Table("instance", "kind", "host", "status", "fixed IP", "floating IP", "guest",
                          title="instances")
        for i in manager.list_all(lab, clouds):
            instances.add_row(i["name"], i["kind"], i["host"] or "", i["status"], ", ".join(i["fixed_ips"]),
                              ", ".join(i["floating_ips"]), "up" if i["guest_alive"] else "[red]down[/]")
        console.print(instances)

    @app.command(context_settings={"ignore_unknown_options": True})
    def shell(command: list[str] = typer.Argument(None, help="command to run (default: an interactive shell)"),
              state_dir: str = STATE_DIR, host: str = typer.Option("host1", help="emulated host")):
        """Run a command (or a shell) inside an emulated host, so the seed page's commands work as written."""
        from neutrino.lib import ip, proc
        lab = Lab(state_dir)
        ns = lab.host_ns(host)
        if not ip.netns_exists(ns):
            console.print(f"[red]no emulated host {host} in lab {lab.id}[/red] ({lab.state_dir}; `neutrino up`?)")
            raise typer.Exit(1)
        env = {"OVS_RUNDIR": lab.ovs_rundir(host), "NEUTRINO_STATE_DIR": lab.state_dir,
               "PS1": f"[{host}@neutrino-{lab.id}] \\w \\$ "}
        argv = list(command) if command else ["bash", "--norc", "-i"]
        sys.stdout.flush()
        proc.exec_in(argv, netns=ns, env=env)
