"""NIC offload settings through the ethtool ioctl.

The OVS userspace (netdev) datapath forwards veth frames with partial checksums unfixed, so TCP fails unless the
device a packet leaves through toward OVS has tx checksum offload off (reference/dataplane-on-this-machine.md,
gotcha 1). Done on one socket opened inside the namespace: 1000 devices cost microseconds, not 1000 processes.
"""
from __future__ import annotations

import ctypes
import fcntl
import socket
import struct

from neutrino.errors import KernelError
from neutrino.lib import nsocket

SIOCETHTOOL = 0x8946
ETHTOOL_GTXCSUM, ETHTOOL_STXCSUM = 0x16, 0x17


def _ethtool(sock: socket.socket, dev: str, cmd: int, data: int = 0) -> int:
    """One legacy ethtool ioctl carrying a struct ethtool_value; returns its data field."""
    buf = ctypes.create_string_buffer(struct.pack("II", cmd, data))
    ifreq = struct.pack("16sP", dev.encode(), ctypes.addressof(buf)).ljust(40, b"\0")
    try:
        fcntl.ioctl(sock.fileno(), SIOCETHTOOL, ifreq)
    except OSError as e:
        raise KernelError(f"ethtool ioctl {cmd:#x} on {dev}: {e}", errno=e.errno) from e
    return struct.unpack("II", buf.raw[:8])[1]


def tx_off(devs: list[str] | str, netns: str | None = None) -> list[str]:
    """`ethtool -K DEV tx off` for each device still on; returns the devices changed.

    The kernel then completes partial checksums before a packet leaves through DEV, which OVS's userspace datapath
    needs (it forwards partial checksums unfixed and the receiver drops them). Done with the ethtool ioctl on one
    socket opened inside netns: reading 200 devices costs microseconds, not 200 `ethtool` processes.
    """
    devs = [devs] if isinstance(devs, str) else list(devs)
    if not devs:
        return []

    def run() -> list[str]:
        changed = []
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for dev in devs:
                if _ethtool(sock, dev, ETHTOOL_GTXCSUM):
                    _ethtool(sock, dev, ETHTOOL_STXCSUM, 0)
                    changed.append(dev)
        return changed

    return nsocket.in_netns(netns, run)
