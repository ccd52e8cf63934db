"""Where a lab keeps its files and what it names its namespaces, all derived from the state directory.

The lab id is a short hash of the state directory's real path; it prefixes every namespace the lab makes
(`nl<id>-host1`, `nl<id>-vm-vm1`, `nl<id>-underlay`), so several labs live side by side and `down` finds its own.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

from neutrino.config import state_dir_default
from neutrino.errors import NeutrinoError

EXTERNAL_CIDR = "172.24.4.0/24"
EXTERNAL_GATEWAY = "172.24.4.1"
UNDERLAY_MTU = 1600


def underlay_ip(index: int) -> str:
    """Tunnel endpoint of the index-th host (1-based) on the lab's underlay."""
    return f"10.255.0.{index}"


@dataclass
class LabSettings:
    """What `up` chose, saved as lab.json so later commands (and a second `up`) use the same values."""
    hosts: int = 1
    l2: str = "ovs"
    firewall: str = "iptables"
    port: int = 9696
    identity_port: int = 5000
    instances: dict[str, dict] = field(default_factory=dict)   # name -> {port_id, host, fip_id}
    servers: int = 1                  # server processes on one database
    db: str = "sqlite"                # sqlite (one server) | postgresql (the lab's own cluster)
    server_ports: list[int] = field(default_factory=list)      # API ports of servers 2..N (each serves /v3 too)

    def server_port(self, index: int) -> int:
        return self.port if index == 1 else self.server_ports[index - 2]


class NoLab(NeutrinoError):
    """There is no lab in the state directory a command was given."""


class Lab:
    """One lab: its state directory, id, file paths and namespace names."""

    def __init__(self, state_dir: str | None = None):
        self.state_dir = os.path.abspath(state_dir or state_dir_default())
        real = os.path.realpath(self.state_dir)
        self.id = hashlib.sha1(real.encode()).hexdigest()[:6]
        self.prefix = f"nl{self.id}"

    # --- files ----------------------------------------------------------------------------------------------------

    def path(self, *parts: str) -> str:
        return os.path.join(self.state_dir, *parts)

    @property
    def socket(self) -> str:
        return self.path("server.sock")

    def server_file(self, index: int, suffix: str) -> str:
        """server.sock/.pid/.log of the first server, server-N.* of the others."""
        return self.path(f"server.{suffix}" if index == 1 else f"server-{index}.{suffix}")

    @property
    def postgres_dir(self) -> str:
        return self.path("postgres")

    @property
    def clouds_yaml(self) -> str:
        return self.path("clouds.yaml")

    def host_dir(self, host: str) -> str:
        return self.path("hosts", host)

    def ovs_rundir(self, host: str) -> str:
        return self.path("hosts", host, "ovs")

    def instance_dir(self, name: str) -> str:
        return self.path("instances", name)

    def exists(self) -> bool:
        return os.path.exists(self.path("lab.json"))

    def require(self) -> "Lab":
        """This lab, or NoLab saying where none was found and how to get one: commands that read a lab never
        create its state dir."""
        if not self.exists():
            raise NoLab(f"no lab in {self.state_dir}: start one with `neutrino up --state-dir {self.state_dir}`, or "
                        f"give the state dir of a running lab (--state-dir or NEUTRINO_STATE_DIR)")
        return self

    def load(self) -> LabSettings:
        try:
            with open(self.path("lab.json")) as f:
                return LabSettings(**json.load(f))
        except FileNotFoundError:
            return LabSettings()

    def save(self, settings: LabSettings) -> None:
        os.makedirs(self.state_dir, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.state_dir, prefix=".lab.json.")
        with os.fdopen(fd, "w") as f:
            json.dump(asdict(settings), f, indent=2)
        os.replace(tmp, self.path("lab.json"))

    @contextlib.contextmanager
    def edit(self) -> Iterator[LabSettings]:
        """The saved settings to change and save again, one writer at a time (commands run side by side)."""
        with open(self.path("lab.json.lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            settings = self.load()
            yield settings
            self.save(settings)

    # --- names ----------------------------------------------------------------------------------------------------

    @staticmethod
    def host_name(index: int) -> str:
        return f"host{index}"

    def host_ns(self, host: str) -> str:
        return f"{self.prefix}-{host}"

    def guest_ns(self, name: str) -> str:
        return f"{self.prefix}-vm-{name}"

    @property
    def underlay_ns(self) -> str:
        return f"{self.prefix}-underlay"

    def owns_ns(self, ns: str) -> bool:
        return ns.startswith(self.prefix + "-")

    def url(self, settings: LabSettings) -> str:
        return f"http://127.0.0.1:{settings.port}"

    def identity_url(self, settings: LabSettings, index: int = 1) -> str:
        port = settings.identity_port if index == 1 else settings.server_port(index)
        return f"http://127.0.0.1:{port}/v3"
