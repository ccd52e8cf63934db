"""Kernel parameters of a network namespace, read and written through /proc/sys from a thread inside it.

Only values that differ are written, so a resync costs two small reads and no writes.
"""
from __future__ import annotations

from neutrino.errors import KernelError
from neutrino.lib.nsocket import in_netns


def _path(key: str) -> str:
    return "/proc/sys/" + key.replace(".", "/")


def get(key: str, netns: str | None = None) -> str:
    def read() -> str:
        with open(_path(key)) as f:
            return f.read().strip()
    try:
        return in_netns(netns, read)
    except OSError as e:
        raise KernelError(f"sysctl {key} in {netns or 'own ns'}: {e}", errno=e.errno) from e


def ensure(settings: dict[str, str | int], netns: str | None = None) -> bool:
    """Make every key carry its value; True when something was written."""
    def apply() -> bool:
        changed = False
        for key, value in settings.items():
            with open(_path(key)) as f:
                if f.read().strip() == str(value):
                    continue
            with open(_path(key), "w") as f:
                f.write(str(value))
            changed = True
        return changed
    try:
        return in_netns(netns, apply)
    except OSError as e:
        raise KernelError(f"sysctl {settings} in {netns or 'own ns'}: {e}", errno=e.errno) from e


def no_ipv6(devices: list[str], netns: str | None = None) -> bool:
    """IPv6 off on host-side devices of guests (tap, qbr, qvb, qvo, brq): no link-local a guest could reach."""
    return ensure({f"net.ipv6.conf.{d}.disable_ipv6": 1 for d in devices}, netns) if devices else False
