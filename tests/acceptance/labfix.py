"""What the acceptance tests share: run the `neutrino` command against a lab's state dir, free ports, and the
processes a lab left behind."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys

import pytest


def need(programs: tuple[str, ...]) -> None:
    """Skip the module unless root and every program is installed."""
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)", allow_module_level=True)
    if missing := [p for p in programs if shutil.which(p) is None]:
        pytest.skip(f"missing programs: {', '.join(missing)}", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def neutrino(*args: str, state_dir: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "NEUTRINO_STATE_DIR": state_dir, "COLUMNS": "200"}
    res = subprocess.run([sys.executable, "-m", "neutrino.cli.main", *args], env=env, capture_output=True,
                         text=True, timeout=timeout)
    if check and res.returncode != 0:
        raise AssertionError(f"neutrino {' '.join(args)} exited {res.returncode}:\n{res.stdout}\n{res.stderr}")
    return res


def our_pids(marker: str) -> set[int]:
    """Processes whose command line names marker (a lab's state dir), this one excepted."""
    out = set()
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        out.add(int(d))
            except OSError:
                pass
    return out - {os.getpid()}
