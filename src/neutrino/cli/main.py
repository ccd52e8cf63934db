"""The `neutrino` command: server, agent, lab (up/down/status/shell), instances, hood and trace."""
import typer

from neutrino.cli import agent, hood, instance, lab, metering, port, server

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
for _module in (server, agent, lab, instance, port, hood, metering):
    _module.register(app)

if __name__ == "__main__":
    app()
