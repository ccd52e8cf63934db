"""The `neutrino` command: server, agent, lab (up/down/status/shell), instances, hood and trace."""
import typer

from neutrino.cli import server

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
server.register(app)


def _optional(name: str) -> None:
    """Register a command group whose module is present."""
    try:
        module = __import__(f"neutrino.cli.{name}", fromlist=["register"])
    except ImportError:
        return
    module.register(app)


for _name in ("agent", "lab", "instance", "hood"):
    _optional(_name)

if __name__ == "__main__":
    app()
