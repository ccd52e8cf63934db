"""Firewall drivers at scale: 1000 ports x 10 rules, one 1000-member remote group (opt-in: NEUTRINO_FW_SCALE=1,
takes ~10 s; prints the timings with -s). Runs in a throwaway namespace; no devices are needed for the rules."""
from __future__ import annotations

import os
import time

import pytest

from neutrino.agent.driver import HostConfig
from neutrino.agent.firewall.iptables import IptablesFirewallDriver
from neutrino.agent.firewall.nftables import NftablesFirewallDriver
from neutrino.lib import ip

if os.geteuid() != 0 or not os.environ.get("NEUTRINO_FW_SCALE"):
    pytest.skip("opt-in: set NEUTRINO_FW_SCALE=1 (as root) to run the scale benchmark", allow_module_level=True)

from netfix_fw import group, nsname, port, rid, rule, view  # noqa: E402

N = int(os.environ.get("NEUTRINO_FW_SCALE_PORTS", "1000"))


def applied(drv) -> int:
    if isinstance(drv, IptablesFirewallDriver):
        return sum(len(lines) for lines in drv.last_lines.values())
    return len(drv.last_script)


@pytest.mark.parametrize("kind", ["iptables", "nftables"])
def test_scale(kind):
    net, sg = rid(), rid()
    rules = [rule("ingress", remote_group_id=sg), rule("egress")] + [rule("ingress", "tcp", 1000 + i)
                                                                      for i in range(8)]
    ports = [port(rid(), net, f"10.{i // 250}.{i % 250}.10", f"fa:16:3e:00:{i // 256:02x}:{i % 256:02x}", [sg])
             for i in range(N)]
    ns = nsname()
    ip.ensure_netns(ns)
    try:
        cfg = HostConfig("h1", "/tmp")
        drv = (IptablesFirewallDriver(cfg, ns=ns, bridge="network") if kind == "iptables"
               else NftablesFirewallDriver(cfg, ns=ns))

        def timed(label, v):
            t = time.perf_counter()
            drv.sync(v)
            print(f"{kind} {label}: {time.perf_counter() - t:.2f} s, {applied(drv)} lines applied")
            return applied(drv)

        v = view(ports, [group(sg, rules)])
        assert timed(f"cold apply, {N} ports x 10 rules", v) > N
        assert timed("idle resync", v) == 0
        extra = port(rid(), net, "10.9.9.9", "fa:16:3e:09:09:09", [sg])
        v = view(ports + [extra], [group(sg, rules)])
        timed("one port added", v)
        v["remote_groups"][sg]["IPv4"].append("10.9.9.10")
        n = timed("one remote-group member added", v)
        # nft: one element added; ipset: the set rebuilt (N+2 members + create, flush, swap, destroy), no iptables
        assert n == (1 if kind == "nftables" else N + 2 + 4)
        t = time.perf_counter()
        drv.cleanup()
        print(f"{kind} cleanup: {time.perf_counter() - t:.2f} s")
    finally:
        ip.delete_netns(ns)
