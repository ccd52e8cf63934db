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
    identity_public_url: str | None = None    # identity endpoint published in the catalog (ends in /v3)
    unix_socket: str | None = None            # agents and metadata proxies reach the server here
    agent_token: str | None = None            # agents authenticate with this
    agent_down_time: int = 75                 # seconds without heartbeat before an agent is dead
    base_mac: str = "fa:16:3e:00:00:00"
    default_mtu: int = 1450
    dns_domain: str = "openstacklocal."
    pagination_max_limit: int = -1
    # Neutron's per-request limits (its option names and defaults)
    max_fixed_ips_per_port: int = 5
    max_allowed_address_pair: int = 10
    max_subnet_host_routes: int = 20
    max_dns_nameservers: int = 5
    max_routes: int = 30
    max_request_body_size: int = 114688       # oslo.middleware sizelimit: 112 KiB
    request_deadline: float = 30.0            # seconds a request's database work may take before it is rolled back
    header_timeout: float = 10.0              # seconds a connection may take to send a request's headers
    keepalive_timeout: float = 5.0            # seconds an idle keep-alive connection is kept
    log_format: str = "text"                  # text | json
    quotas: dict = field(default_factory=dict)  # default limits per resource over Neutron's ({router: 100}; -1: none)

    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{os.path.join(self.state_dir, 'neutrino.db')}"

    def network_url(self) -> str:
        return self.public_url or f"http://{self.bind}:{self.port}"

    def identity_url(self) -> str:
        return self.identity_public_url or f"http://{self.bind}:{self.identity_port}/v3"


ENV = {"state_dir": "NEUTRINO_STATE_DIR", "db_url": "NEUTRINO_DB_URL", "admin_password": "NEUTRINO_ADMIN_PASSWORD",
       "auth": "NEUTRINO_AUTH", "admin_token": "NEUTRINO_ADMIN_TOKEN", "agent_token": "NEUTRINO_AGENT_TOKEN",
       "public_url": "NEUTRINO_PUBLIC_URL", "identity_public_url": "NEUTRINO_IDENTITY_PUBLIC_URL",
       "log_format": "NEUTRINO_LOG_FORMAT", "quotas": "NEUTRINO_QUOTAS"}


def layered(cls, config_file: str | None, section: str, env: dict[str, str], overrides: dict,
            error: type[Exception] = ValueError) -> dict:
    """The values of a settings dataclass, each layer over the one before: a YAML file (its `section` mapping, or
    the whole file; `-` in names read as `_`), environment variables (`env`: field -> variable), then overrides that
    are not None (flags). Every name must be a field of cls; int and float fields are converted. The server's and
    the agent's settings both load this way."""
    values: dict = {}
    if config_file:
        with open(config_file) as f:
            data = yaml.safe_load(f) or {}
        if not isinstance(data, dict):
            raise error(f"{config_file}: expected a mapping of settings")
        values.update({str(k).replace("-", "_"): v for k, v in (data.get(section) or data).items()})
    for name, var in env.items():
        if os.environ.get(var):
            values[name] = os.environ[var]
    values.update({k: v for k, v in overrides.items() if v is not None})
    unknown = set(values) - {f.name for f in fields(cls)}
    if unknown:
        raise error(f"unknown {section} settings: {', '.join(sorted(unknown))}")
    for f in fields(cls):
        if f.name in values and f.type in ("int", "float") and values[f.name] is not None:
            values[f.name] = int(values[f.name]) if f.type == "int" else float(values[f.name])
    return values


def load(config_file: str | None = None, **overrides) -> Settings:
    """Build Settings: file values (the `server:` section or the whole file), then environment variables, then
    non-None overrides (flags)."""
    values = layered(Settings, config_file, "server", ENV, overrides)
    if isinstance(values.get("quotas"), str):      # the environment's form: "router=100,floatingip=-1"
        values["quotas"] = dict(item.split("=", 1) for item in values["quotas"].split(",") if "=" in item)
    if "quotas" in values:
        values["quotas"] = {str(k): int(v) for k, v in (values["quotas"] or {}).items()}
    return Settings(**values)
