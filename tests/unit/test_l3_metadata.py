"""Pure logic of the metadata proxy and gratuitous ARP frames."""
from __future__ import annotations

import httpx

from neutrino.agent import metadata
from neutrino.lib import arp
from neutrino.sync.client import transport_for


def test_targets_routers_and_isolated_networks():
    view = {"routers": [{"id": "r1", "admin_state_up": True}, {"id": "r2", "admin_state_up": False}],
            "dhcp": [{"network_id": "n1", "isolated_metadata": True}, {"network_id": "n2",
                                                                       "isolated_metadata": False}]}
    t = metadata.targets(view, 9697)
    assert set(t) == {("router", "r1"), ("network", "n1")}
    assert (t[("router", "r1")].ns, t[("router", "r1")].host, t[("router", "r1")].port) == ("qrouter-r1", "0.0.0.0",
                                                                                            9697)
    assert (t[("network", "n1")].ns, t[("network", "n1")].host, t[("network", "n1")].port) == (
        "qdhcp-n1", "169.254.169.254", 80)


def test_guest_cannot_forge_identity_headers():
    target = metadata.Target("router", "r1", "qrouter-r1", "0.0.0.0", 9697)
    guest = {"x-forwarded-for": "6.6.6.6", "X-Neutrino-Router-ID": "other", "x-neutrino-network-id": "n",
             "X-Auth-Token": "t", "Host": "169.254.169.254", "Accept": "application/json"}
    out = metadata.forward_headers(guest, target, "10.0.0.3", "secret")
    assert out == {"Accept": "application/json", "X-Neutrino-Router-ID": "r1", "X-Forwarded-For": "10.0.0.3",
                   "X-Auth-Token": "secret"}


def test_upstream_unix_or_http():
    transport, base = transport_for("unix:/run/neutrino/server.sock")
    assert isinstance(transport, httpx.HTTPTransport) and base == "http://neutrino"
    assert transport_for("http://10.1.1.1:9696/") == (None, "http://10.1.1.1:9696")


def test_gratuitous_arp_frame():
    mac = bytes.fromhex("fa163e000001")
    f = arp.frame(mac, "172.24.4.227")
    assert len(f) == 42
    assert f[:6] == b"\xff" * 6 and f[6:12] == mac and f[12:14] == b"\x08\x06"
    assert f[20:22] == b"\x00\x01"                       # request
    assert f[28:32] == f[38:42] == bytes([172, 24, 4, 227])
