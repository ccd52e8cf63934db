"""Server settings: defaults, then a config file (YAML), then environment, then command-line flags."""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields

import yaml

from neutrino.errors import NeutrinoError

DEFAULT_STATE_DIR = "/var/lib/neutrino"


def state_dir_default() -> str:
    return os.environ.get("NEUTRINO_STATE_DIR") or DEFAULT_STATE_DIR


class StateDirError(NeutrinoError):
    """The state directory cannot be created or used."""


def ensure_state_dir(path: str, mode: int = 0o700) -> str:
    """Create a state directory (and missing parents) with mode, private by default since it holds the database,
    tokens and passwords; an existing one is kept as it is. Raises StateDirError saying why it cannot be used."""
    path = os.path.abspath(path)
    try:
        os.makedirs(path, mode=mode, exist_ok=True)
    except FileExistsError:
        raise StateDirError(f"state dir {path}: exists and is not a directory") from None
    except NotADirectoryError:
        raise StateDirError(f"state dir {path}: a parent of it is a file, not a directory") from None
    except OSError as e:
        raise StateDirError(f"state dir {path}: cannot create it ({e.strerror})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise StateDirError(f"state dir {path}: not writable by this user (uid {os.geteuid()})")
    return path


@dataclass
class Settings:
    state_dir: str = field(default_factory=state_dir_default)
    bind: str = "127.0.0.1"
    port: int = 9696
    identity_port: int = 5000
    db_url: str | None = None                 # default: SQLite under state_dir
    auth: str = "keystone"                    # keystone | noauth | external
    admin_token: str | None = None            # static token accepted as admin (admin_token clients)
    admin_password: str | None = None         # bootstrap password of the admin user
    external_keystone_url: str | None = None  # auth=external: validate tokens there
    service_token: str | None = None          # auth=external: our token for GET /v3/auth/tokens
    region: str = "RegionOne"
    public_url: str | None = None             # network endpoint published in the catalog
    unix_socket: str | None = None            # agents and metadata proxies reach the server here
    agent_token: str | None = None            # agents authenticate with this
    agent_down_time: int = 75                 # seconds without heartbeat before an agent is dead
    base_mac: str = "fa:16:3e:00:00:00"
    default_mtu: int = 1450
    dns_domain: str = "openstacklocal."
    pagination_max_limit: int = -1

    def database_url(self) -> str:
        from neutrino.db.engine import sqlite_url
        return self.db_url or sqlite_url(self.state_dir)

    def network_url(self) -> str:
        return self.public_url or f"http://{self.bind}:{self.port}"

    def identity_url(self) -> str:
        return f"http://{self.bind}:{self.identity_port}/v3"


ENV = {"state_dir": "NEUTRINO_STATE_DIR", "db_url": "NEUTRINO_DB_URL", "admin_password": "NEUTRINO_ADMIN_PASSWORD",
       "auth": "NEUTRINO_AUTH", "admin_token": "NEUTRINO_ADMIN_TOKEN", "agent_token": "NEUTRINO_AGENT_TOKEN"}


def load(config_file: str | None = None, **overrides) -> Settings:
    """Build Settings: file values, then environment variables, then non-None overrides (flags)."""
    values: dict = {}
    if config_file:
        with open(config_file) as f:
            data = yaml.safe_load(f) or {}
        values.update((data.get("server") or data))
    for name, var in ENV.items():
        if os.environ.get(var):
            values[name] = os.environ[var]
    values.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name for f in fields(Settings)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
    for int_field in ("port", "identity_port", "agent_down_time", "default_mtu", "pagination_max_limit"):
        if int_field in values:
            values[int_field] = int(values[int_field])
    return Settings(**values)
