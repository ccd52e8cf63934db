"""`neutrino server`: the API (Neutron v2.0 + Keystone v3 subset) on TCP and, for agents, on a Unix socket."""
from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shutil
import signal
import socket
import tempfile

import typer
import uvicorn
import uvloop

from neutrino import config
from neutrino.lib import proc

LOG = logging.getLogger("neutrino.server")


def build(settings, setup: bool = True):
    """Database and app; with `setup` the schema is migrated and the identity bootstrap runs once (it may return a
    generated password). Workers skip both: their parent did them before forking."""
    from neutrino.api.app import create_app
    from neutrino.db.engine import Database

    db = Database(settings.database_url())
    generated = None
    if setup:
        db.setup()
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
            settings.agent_token = secrets.token_hex(24)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(settings.agent_token)
    return path


def _configs(app, settings) -> list[uvicorn.Config]:
    """The API port, the identity port when it is another one, and the agents' Unix socket."""
    from neutrino.api.serving import uvicorn_config
    configs = [uvicorn_config(app, settings, host=settings.bind, port=settings.port)]
    if settings.auth == "keystone" and settings.identity_port and settings.identity_port != settings.port:
        configs.append(uvicorn_config(app, settings, host=settings.bind, port=settings.identity_port))
    if settings.unix_socket:
        configs.append(uvicorn_config(app, settings, uds=settings.unix_socket))
    return configs


async def _serve(app, settings, sockets: list[socket.socket] | None = None) -> None:
    servers = [uvicorn.Server(c) for c in _configs(app, settings)]
    await asyncio.gather(*(s.serve(sockets=[sockets[i]] if sockets else None) for i, s in enumerate(servers)))


def _unlink_socket(settings) -> None:
    if settings.unix_socket and os.path.exists(settings.unix_socket):
        os.unlink(settings.unix_socket)


def _workers(settings, count: int) -> int:
    """Bind the listening sockets, fork `count` workers that serve them all, wait; the exit code. Each worker has its
    own database connections and hub; changes reach the other workers by NOTIFY (PostgreSQL) or datagram (SQLite).
    When one worker ends the others are stopped too: the server is one unit for whoever supervises it."""
    from neutrino.api.serving import settle
    from neutrino.db import notify

    _unlink_socket(settings)
    sockets = [c.bind_socket() for c in _configs(None, settings)]
    for sock in sockets:                # accepted connections inherit it: no 40 ms Nagle/delayed-ACK stalls
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    siblings = tempfile.mkdtemp(prefix="workers-", dir=settings.state_dir)
    children, parent = [], os.getpid()
    for index in range(count):
        pid = os.fork()
        if pid == 0:
            proc.die_with_parent(parent)            # even by kill -9: agents then fail over to another server
            app, _ = build(settings, setup=False)
            app.state.siblings = notify.Siblings(siblings, index)
            settle()
            uvloop.run(_serve(app, settings, sockets))
            os._exit(0)
        children.append(pid)
    for s in sockets:
        s.close()

    def stop(signum, _frame):
        for pid in children:
            proc.terminate(pid, signal.SIGTERM)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    code = 0
    try:
        _, status = os.wait()
        code = os.waitstatus_to_exitcode(status)
        stop(None, None)
        for _ in children[1:]:
            os.wait()
    except ChildProcessError:
        pass
    finally:
        shutil.rmtree(siblings, ignore_errors=True)
    return code


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
               workers: int = typer.Option(1, help="worker processes serving the same ports (use the cores)"),
               log_level: str = typer.Option("info"),
               log_format: str = typer.Option(None, help="text | json (one object per line) "
                                                         "[env NEUTRINO_LOG_FORMAT]")):
        """Run the neutrino server."""
        from neutrino.api.serving import settle, setup_logging
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
        if workers > 1:
            application.state.db.engine.dispose()          # each worker opens its own connections
            raise typer.Exit(_workers(settings, workers))
        _unlink_socket(settings)
        settle()
        uvloop.run(_serve(application, settings))
