"""The driver registry and the L2/firewall drivers' `expected` answers (what hood compares the kernel with), on the
captured hood world's view (tests/unit/test_hood_world.json)."""
from __future__ import annotations

import json
import os

import pytest

from neutrino import names
from neutrino.agent.driver import BACKENDS, backend
from neutrino.agent.firewall import nft_rules
from neutrino.agent.firewall.ports import filtered_ports
from neutrino.errors import BadRequest

WORLD = os.path.join(os.path.dirname(__file__), "test_hood_world.json")


@pytest.fixture(scope="module")
def view():
    with open(WORLD) as f:
        return json.load(f)["view"]


def _port(view, kind="instance", secured=True):
    return next(p for p in view["ports"] if p["kind"] == kind and (kind != "instance" or
                                                                   p["port_security_enabled"] == secured))


def test_every_backend_is_a_driver_and_l2_firewall_answer_the_hood():
    for role, named in BACKENDS.items():
        for name in named:
            cls = backend(role, name)
            assert callable(cls.sync) and callable(cls.cleanup), (role, name)
            if role in ("l2", "firewall"):
                assert callable(cls.expected) and callable(cls.held), (role, name)
    assert backend("l2").__name__ == "OvsL2Driver" and backend("firewall").__name__ == "IptablesFirewallDriver"
    with pytest.raises(BadRequest, match="no l2 backend 'macvtap'"):
        backend("l2", "macvtap")


def test_l2_expected_wiring(view):
    p = _port(view)
    pid = p["id"]
    assert backend("l2", "ovs").expected(view, p) == [(p["device"], names.qbr(pid)), (names.qvb(pid), names.qbr(pid)),
                                                      (names.qvo(pid), "br-int")]
    assert backend("l2", "linuxbridge").expected(view, p) == [(p["device"], names.brq(p["network_id"]))]
    gw = _port(view, "router_gateway")
    assert view["networks"][gw["network_id"]]["segment"]["network_type"] == "flat"
    lb = backend("l2", "linuxbridge")
    assert lb.expected(view, gw, {"public": "br-ex"}) == [(gw["device"], "br-ex")]
    assert lb.expected(view, gw, {}) == []                    # a flat network this host has no bridge for


def test_firewall_expected_chains_per_backend(view):
    p = _port(view)
    ipt, nft = backend("firewall", "iptables"), backend("firewall", "nftables")
    for l2, prefix in (("ovs", names.IPT_PREFIX), ("linuxbridge", names.IPT_LB_PREFIX)):
        chains = ipt.expected(view, p, l2)
        assert list(chains) == [names.sg_chain(d, p["id"], prefix) for d in "ios"]
        assert chains[names.sg_chain("i", p["id"], prefix)][-1] == f"-j {prefix}sg-fallback"
    fw = next(f for f in filtered_ports(view, "network") if f.id == p["id"])
    assert nft.expected(view, p, "linuxbridge") == {name: c.rules for name, c in
                                                    nft_rules.port_chains(fw, 0)[1].items()}
    assert list(nft.expected(view, p, "ovs")) == [f"{k}{names.sg_dev(p['id'])}" for k in "ios"]
    off = _port(view, secured=False)
    assert ipt.expected(view, off, "ovs") == {} and nft.expected(view, off, "ovs") == {}
