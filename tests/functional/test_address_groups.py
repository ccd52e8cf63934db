"""Address groups on the real kernel, for both firewall drivers: a rule naming an address group opens a port for
exactly the group's addresses, and changing the group changes only the set, in place."""
from __future__ import annotations

import os

import pytest

from neutrino import names
from neutrino.agent.driver import HostConfig
from neutrino.agent.firewall.iptables import IptablesFirewallDriver
from neutrino.agent.firewall.nftables import NftablesFirewallDriver

if os.geteuid() != 0:
    pytest.skip("needs root (network namespaces)", allow_module_level=True)

from netfix_fw import Host, group, port, rid, rule, view  # noqa: E402

NET = rid()


@pytest.mark.parametrize("kind", ["iptables", "nftables"])
def test_address_group_change_opens_and_closes_a_port_for_exactly_its_addresses(kind):
    h = Host()
    try:
        web, out, ag = rid(), rid(), rid()
        a = port(rid(), NET, "10.0.0.11", "fa:16:3e:00:00:11", [out])
        b = port(rid(), NET, "10.0.0.12", "fa:16:3e:00:00:12", [out])
        c = port(rid(), NET, "10.0.0.13", "fa:16:3e:00:00:13", [web])
        ssh = {**rule("ingress", "tcp", 22), "remote_address_group_id": ag}
        groups = [group(web, [rule("egress"), ssh]), group(out, [rule("egress")])]
        for p in (a, b, c):
            h.plug(p)
        cfg = HostConfig("h1", "/tmp")
        drv = IptablesFirewallDriver(cfg, ns=h.ns, bridge="network") if kind == "iptables" else \
            NftablesFirewallDriver(cfg, ns=h.ns)
        h.listen(c, 22)
        v = view([a, b, c], groups)
        v["remote_groups"][ag] = {"IPv4": ["10.0.0.11/32"], "IPv6": []}
        drv.sync(v)
        assert h.tcp(a, "10.0.0.13", 22) and not h.tcp(b, "10.0.0.13", 22)
        v["remote_groups"][ag] = {"IPv4": ["10.0.0.12/32"], "IPv6": []}
        drv.sync(v)
        assert h.tcp(b, "10.0.0.13", 22) and not h.tcp(a, "10.0.0.13", 22)
        if kind == "iptables":          # only the set was rebuilt and swapped; no chain was touched
            assert drv.last_lines["ipset"] and not any(drv.last_lines[t] for t in ("filter4", "raw4"))
            assert f"--match-set {names.ipset_name(ag)} src" in h.exec(h.ns, ["iptables-save"]).stdout
        else:                           # the set changed by element
            assert drv.last_script and not any(x.startswith(("add chain", "flush chain")) for x in drv.last_script)
        v["remote_groups"][ag] = {"IPv4": ["10.0.0.0/24"], "IPv6": []}
        drv.sync(v)
        assert h.tcp(a, "10.0.0.13", 22) and h.tcp(b, "10.0.0.13", 22)
        v["remote_groups"][ag] = {"IPv4": [], "IPv6": []}
        drv.sync(v)
        assert not h.tcp(a, "10.0.0.13", 22) and not h.tcp(b, "10.0.0.13", 22)
        drv.cleanup()
    finally:
        h.close()
