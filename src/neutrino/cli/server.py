"""`neutrino server`: the API (Neutron v2.0 + Keystone v3 subset) on TCP and, for agents, on a Unix socket."""
from __future__ import annotations

import asyncio
import logging
import os
import secrets

import typer
import uvicorn

from neutrino import config

LOG = logging.getLogger("neutrino.server")


def build(settings):
    """Database (migrated) and app; the identity bootstrap runs once and may return a generated password."""
    from neutrino.api.app import create_app
    from neutrino.db.engine import Database

    db = Database(settings.database_url())
    db.setup()
    generated = None
    if settings.auth == "keystone":
        from neutrino.identity.bootstrap import bootstrap
        generated = bootstrap(db, settings)
    return create_app(settings, db), generated


def _token_file(settings) -> str:
    """Agents and metadata proxies of a lab read the agent token from the state dir."""
    path = os.path.join(settings.state_dir, "agent-token")
    if settings.agent_token is None:
        if os.path.exists(path):
            settings.agent_token = open(path).read().strip()
        else:
            settings.agent_token = secrets.token_urlsafe(24)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(settings.agent_token)
    return path


async def _serve(app, settings) -> None:
    from neutrino.api.serving import uvicorn_config
    servers = [uvicorn.Server(uvicorn_config(app, settings, host=settings.bind, port=settings.port))]
    if settings.auth == "keystone" and settings.identity_port and settings.identity_port != settings.port:
        servers.append(uvicorn.Server(uvicorn_config(app, settings, host=settings.bind, port=settings.identity_port)))
    if settings.unix_socket:
        if os.path.exists(settings.unix_socket):
            os.unlink(settings.unix_socket)
        servers.append(uvicorn.Server(uvicorn_config(app, settings, uds=settings.unix_socket)))
    await asyncio.gather(*(s.serve() for s in servers))


def register(app: typer.Typer) -> None:
    @app.command()
    def server(config_file: str = typer.Option(None, "--config", help="YAML config file"),
               state_dir: str = typer.Option(None, help="state directory (database, sockets)"),
               bind: str = typer.Option(None, help="address to listen on (default 127.0.0.1)"),
               port: int = typer.Option(None, help="Networking API port (default 9696)"),
               identity_port: int = typer.Option(None, help="Keystone v3 port (default 5000)"),
               db: str = typer.Option(None, "--db", help="database URL (default: SQLite in the state dir)"),
               auth: str = typer.Option(None, help="keystone | noauth | external"),
               admin_token: str = typer.Option(None, help="static token accepted as admin"),
               unix_socket: str = typer.Option(None, help="also serve on this Unix socket (agents)"),
               agent_token: str = typer.Option(None, help="token agents present (default: generated, in state dir)"),
               public_url: str = typer.Option(None, help="Networking endpoint the catalog publishes "
                                                         "[env NEUTRINO_PUBLIC_URL]"),
               identity_public_url: str = typer.Option(None, help="Identity endpoint the catalog publishes, ending "
                                                                  "in /v3 [env NEUTRINO_IDENTITY_PUBLIC_URL]"),
               dns_domain: str = typer.Option(None, "--dns-domain",
                                              help="domain of ports' DNS names (default openstacklocal.: "
                                                   "dns_name unused, as in Neutron)"),
               log_level: str = typer.Option("info"),
               log_format: str = typer.Option(None, help="text | json (one object per line) "
                                                         "[env NEUTRINO_LOG_FORMAT]")):
        """Run the neutrino server."""
        from neutrino.api.serving import setup_logging
        settings = config.load(config_file, state_dir=state_dir, bind=bind, port=port, identity_port=identity_port,
                               db_url=db, auth=auth, admin_token=admin_token, unix_socket=unix_socket,
                               agent_token=agent_token, public_url=public_url,
                               identity_public_url=identity_public_url, log_format=log_format,
                               dns_domain=dns_domain)
        try:
            setup_logging(log_level, settings.log_format)
        except ValueError as e:
            raise typer.BadParameter(str(e)) from None
        if settings.auth not in ("keystone", "noauth", "external"):
            raise typer.BadParameter("--auth must be keystone, noauth or external")
        try:
            settings.state_dir = config.ensure_state_dir(settings.state_dir)
        except config.StateDirError as e:
            typer.echo(f"neutrino server: {e}", err=True)
            raise typer.Exit(2) from e
        token_path = _token_file(settings)
        application, generated = build(settings)
        if generated:
            print(f"admin password (generated, shown once): {generated}", flush=True)
        LOG.info("state dir %s, database %s", settings.state_dir, settings.database_url().split("@")[-1])
        LOG.info("Networking API v2.0 on http://%s:%s (auth: %s)", settings.bind, settings.port, settings.auth)
        if settings.auth == "keystone":
            LOG.info("Identity v3 on %s", settings.identity_url())
        if settings.unix_socket:
            LOG.info("agents: unix:%s (token in %s)", settings.unix_socket, token_path)
        asyncio.run(_serve(application, settings))
