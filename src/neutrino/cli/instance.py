"""`neutrino instance create|list|show|delete|exec|console`: guests on ports — lightweight namespaces with real
DHCP (the default), or QEMU VMs booted from Debian's kernel (`--kind vm`)."""
from __future__ import annotations

import json

import typer
from neutrino.cli.console import make_console
from rich.table import Table

from neutrino.cli.lab import STATE_DIR
from neutrino.errors import NeutrinoError
from neutrino.lab.clouds import DEFAULT_CLOUD
from neutrino.lab.paths import Lab

console = make_console()
OS_CLOUD = typer.Option(None, "--os-cloud", envvar="OS_CLOUD", show_default=False,
                        help=f"cloud of the lab's clouds.yaml to act in (default {DEFAULT_CLOUD}), as with openstack")


def _clouds(lab: Lab, cloud: str | None):
    from neutrino.instances import manager
    return _run(manager.Clouds.of, lab, cloud or DEFAULT_CLOUD)


def _run(fn, *args, **kw):
    try:
        return fn(*args, **kw)
    except NeutrinoError as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(1)
    except Exception as e:  # noqa: BLE001 - openstacksdk raises its own kinds; show them as the CLI does
        if e.__class__.__module__.startswith("openstack") or e.__class__.__module__.startswith("keystoneauth"):
            console.print(f"[red]error:[/red] {e}")
            raise typer.Exit(1)
        raise


def _print(summary: dict, as_json: bool) -> None:
    if as_json:
        console.print_json(json.dumps(summary))
        return
    table = Table("field", "value", show_header=False)
    for k, v in summary.items():
        table.add_row(k, ", ".join(v) if isinstance(v, list) else str(v))
    console.print(table)


def register(app: typer.Typer) -> None:
    group = typer.Typer(no_args_is_help=True, help=__doc__)
    app.add_typer(group, name="instance")

    @group.command("create")
    def create(name: str, network: str = typer.Option(..., "--network", help="network name or id"),
               security_group: list[str] = typer.Option(None, "--security-group", help="group name or id (repeat)"),
               floating_ip: bool = typer.Option(False, "--floating-ip", help="associate a floating IP on public"),
               host: str = typer.Option("host1", help="emulated host to bind to"),
               user_data: typer.FileText = typer.Option(None, "--user-data", help="file served as user data"),
               key: list[str] = typer.Option(None, "--key", help="NAME=PUBLIC_KEY_FILE served as a public key"),
               kind: str = typer.Option("namespace", "--kind", help="namespace | vm (a QEMU guest on tap<port>)"),
               state_dir: str = STATE_DIR, os_cloud: str = OS_CLOUD, as_json: bool = typer.Option(False, "--json")):
        """Create (or complete) an instance: port bound to HOST, guest namespace, DHCP, tcp/22 service; its
        metadata (hostname, keys, user data) is served at 169.254.169.254."""
        from neutrino.instances import manager
        keys = {}
        for item in key or []:
            kname, sep, path = item.partition("=")
            if not sep:
                raise typer.BadParameter(f"--key {item}: expected NAME=PUBLIC_KEY_FILE")
            with open(path) as f:
                keys[kname] = f.read().strip()
        lab = Lab(state_dir)
        summary = _run(manager.create, lab, name, network, security_groups=security_group or [],
                       floating_ip=floating_ip, host=host, clouds=_clouds(lab, os_cloud),
                       user_data=user_data.read() if user_data else "",
                       public_keys=keys, progress=lambda m: None if as_json else console.print(m), kind=kind)
        _print(summary, as_json)

    @group.command("list")
    def list_(state_dir: str = STATE_DIR, os_cloud: str = OS_CLOUD, as_json: bool = typer.Option(False, "--json")):
        """Instances of the project (ports owned by compute:nova) with their guests."""
        from neutrino.instances import manager
        lab = Lab(state_dir)
        items = _run(manager.list_all, lab, _clouds(lab, os_cloud))
        if as_json:
            console.print_json(json.dumps(items))
            return
        table = Table("name", "kind", "id", "host", "status", "fixed IP", "floating IP", "guest")
        for i in items:
            table.add_row(i["name"], i["kind"], i["id"], i["host"] or "", i["status"], ", ".join(i["fixed_ips"]),
                          ", ".join(i["floating_ips"]), "up" if i["guest_alive"] else "[red]down[/]")
        console.print(table)

    @group.command("show")
    def show(name: str, state_dir: str = STATE_DIR, os_cloud: str = OS_CLOUD,
             as_json: bool = typer.Option(False, "--json")):
        """One instance: API view and guest state."""
        from neutrino.instances import manager
        lab = Lab(state_dir)
        _print(_run(manager.summary, lab, name, _clouds(lab, os_cloud)), as_json)

    @group.command("delete")
    def delete(name: str, state_dir: str = STATE_DIR, os_cloud: str = OS_CLOUD):
        """Remove the instance's floating IPs, port and guest."""
        from neutrino.instances import manager
        lab = Lab(state_dir)
        _run(manager.delete, lab, name, _clouds(lab, os_cloud))
        console.print(f"instance {name} deleted")

    @group.command("renew")
    def renew(name: str, state_dir: str = STATE_DIR, os_cloud: str = OS_CLOUD):
        """Make the guest renew its DHCP lease now, as `dhclient` or a reboot would in a VM: after a change of its
        port's fixed IP it gets the new address."""
        from neutrino.instances import guest, manager
        lab = Lab(state_dir)
        _run(manager.summary, lab, name, _clouds(lab, os_cloud))
        console.print(f"{name} is {_run(guest.renew, lab, name)}")

    @group.command("exec", context_settings={"ignore_unknown_options": True})
    def exec_(name: str, command: list[str] = typer.Argument(..., help="command to run inside the guest"),
              state_dir: str = STATE_DIR, os_cloud: str = OS_CLOUD):
        """Run a command inside the instance's guest (its resolv.conf, busybox tools on PATH); on a VM, over ssh with
        the lab's key from inside its emulated host (to its floating IP, else to its fixed IP from the network's
        qdhcp- namespace). With --os-cloud or OS_CLOUD, only an instance that cloud's project can see."""
        from neutrino.instances import guest, manager, vm
        from neutrino.lib import ip, proc, ssh
        lab = _run(Lab(state_dir).require)
        if os_cloud or manager.kind_of(lab, name) == vm.KIND:
            found = _run(manager.summary, lab, name, _clouds(lab, os_cloud))
            if found["kind"] == vm.KIND:
                ns, address = vm.ssh_route(lab, found["host"], found["network_id"], found["fixed_ips"][0],
                                           (found["floating_ips"] or [None])[0])
                proc.exec_in(ssh.argv(vm.lab_key(lab)[0], address, list(command)), netns=ns)
        ns = lab.guest_ns(name)
        if not ip.netns_exists(ns):
            console.print(f"[red]no guest for instance {name}[/red] in lab {lab.id}")
            raise typer.Exit(1)
        proc.exec_in(list(command), netns=ns, env=guest.exec_env(lab))

    @group.command("console")
    def console_(name: str, state_dir: str = STATE_DIR,
                 follow: bool = typer.Option(False, "--follow", "-f", help="keep printing as the guest writes")):
        """A VM's serial console log (kept as console.log in the instance's state directory)."""
        from neutrino.instances import manager, vm
        from neutrino.lib import proc
        lab = Lab(state_dir)
        if manager.kind_of(lab, name) != vm.KIND:
            console.print(f"[red]instance {name} is not a VM[/red] (only VMs have a serial console)")
            raise typer.Exit(1)
        if follow:
            proc.exec_in(["tail", "-n", "+1", "-f", vm.console_log(lab, name)])
        print(vm.console(lab, name), end="")
