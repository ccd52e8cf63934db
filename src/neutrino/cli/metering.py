"""`neutrino metering`: the metering labels' counters per router, as the agents last read them from the qrouter
namespaces (they report every few seconds)."""
from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from neutrino.cli.hood import JSON, SERVER, STATE_DIR, TOKEN
from neutrino.errors import NeutrinoError, NotFound
from neutrino.lab.paths import Lab


def read(state_dir: str | None, server: str | None, token: str | None) -> list[dict]:
    lab = Lab(state_dir)
    if server is None and not lab.exists():
        raise NotFound(f"no lab in {lab.state_dir} (give --state-dir, or --server and --token)")
    if token is None and lab.exists():
        from neutrino.lab.processes import agent_token
        token = agent_token(lab)
    from neutrino.sync.client import SyncClient
    client = SyncClient(server or f"unix:{lab.socket}", "-", token)
    try:
        return client.metering()
    finally:
        client.close()


def register(app: typer.Typer) -> None:
    @app.command()
    def metering(state_dir: str = STATE_DIR, server: str = SERVER, token: str = TOKEN, as_json: bool = JSON):
        """Packets and bytes each metering label counted on each router."""
        try:
            rows = read(state_dir, server, token)
        except (NeutrinoError, OSError) as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(1) from None
        if as_json:
            print(json.dumps(rows, indent=2))
            return
        table = Table("label", "router", "host", "packets", "bytes", "read at")
        for r in rows:
            table.add_row(f"{r['label_name'] or '-'} ({r['label_id'][:8]})", r["router_id"], r["host"],
                          str(r["packets"]), str(r["bytes"]), r["updated_at"])
        Console(highlight=False).print(table)
