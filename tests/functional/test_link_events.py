"""lib.ip.LinkEvents on the real kernel: the link announcements the agent's device thread waits on, read in a child
process inside a throwaway namespace (the socket listens in its process's own namespace)."""
from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest

from neutrino.lib import ip

pytestmark = pytest.mark.kernel

if os.geteuid() != 0:
    pytest.skip("needs root (network namespaces)", allow_module_level=True)

LISTEN = """
import sys, time
from neutrino.lib import ip
events = ip.LinkEvents()
print("ready", flush=True)
seen, deadline = set(), time.monotonic() + 20
while not {"tapa", "tapb", "tapc"} <= seen and time.monotonic() < deadline:
    seen |= events.wait(0.5)
print(" ".join(sorted(seen)), flush=True)
"""


def test_every_link_made_in_the_namespace_is_announced_even_several_at_once():
    ns = f"nt-{secrets.token_hex(4)}"
    ip.ensure_netns(ns)
    child = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", LISTEN], stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        ip.batch(["link add tapa type veth peer name tapb", "link add tapc type bridge"], ns)   # one burst
        out, _ = child.communicate(timeout=30)
        assert {"tapa", "tapb", "tapc"} <= set(out.split())
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        ip.delete_netns(ns)
