"""`neutrino port plug PORT --tap | unplug PORT`: a TUN/TAP device for a real VM, bound like a nova instance's."""
from __future__ import annotations

import typer

from neutrino.cli.instance import _print, _run, console
from neutrino.cli.lab import STATE_DIR
from neutrino.lab.paths import Lab


def register(app: typer.Typer) -> None:
    group = typer.Typer(no_args_is_help=True, help=__doc__)
    app.add_typer(group, name="port")

    @group.command("plug")
    def plug(port: str = typer.Argument(..., help="port id or name"),
             tap: bool = typer.Option(False, "--tap", help="plug a persistent TAP device (for qemu)"),
             host: str = typer.Option("host1", help="emulated host to bind to"),
             wait: float = typer.Option(30, help="seconds to wait for the port to become ACTIVE"),
             state_dir: str = STATE_DIR, as_json: bool = typer.Option(False, "--json")):
        """Make tap<port id> in HOST (network MTU, up) and bind the port there; the agent hybrid-plugs it."""
        if not tap:
            raise typer.BadParameter("only --tap is supported (instance guests: `neutrino instance create`)")
        from neutrino.instances import tap as tap_
        summary = _run(tap_.plug, Lab(state_dir), port, host=host, wait=wait)
        _print(summary, as_json)
        if summary["status"] != "ACTIVE":
            console.print(f"[red]port {summary['port_id']} is {summary['status']} after {wait:.0f} s[/red] "
                          f"(agent log: {Lab(state_dir).host_dir(host)}/agent.log)")
            raise typer.Exit(1)
        if not as_json:
            console.print(f"start the VM with: qemu-system-x86_64 ... {summary['qemu']}\n"
                          f"(inside the emulated host: neutrino shell --host {host})")

    @group.command("unplug")
    def unplug(port: str = typer.Argument(..., help="port id or name"), state_dir: str = STATE_DIR,
               as_json: bool = typer.Option(False, "--json")):
        """Delete the port's tap device and unbind the port."""
        from neutrino.instances import tap as tap_
        _print(_run(tap_.unplug, Lab(state_dir), port), as_json)
