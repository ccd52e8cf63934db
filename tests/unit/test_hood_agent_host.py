"""hood on a host run from an agent config file: the agent's backends and bridge mappings decide what is wanted,
so a flat network on a physnet other than the lab's `public` is looked for in the bridge the agent maps it to."""
from __future__ import annotations

from neutrino.agent.config import load
from neutrino.hood import backends
from neutrino.hood.where import Where

NET = "0d9c1f6e-4c4e-4d0a-9f39-2a5a2d9f0c11"


def _view() -> dict:
    return {"networks": {NET: {"id": NET, "segment": {"network_type": "flat", "physical_network": "ext",
                                                       "segmentation_id": None}}}}


def test_agent_config_gives_server_backends_and_mappings(tmp_path):
    conf = tmp_path / "agent.yaml"
    conf.write_text("agent:\n  host: compute7\n  server: [http://ctl-a:9696, http://ctl-b:9696]\n  token: t0k\n"
                    "  l2: linuxbridge\n  firewall: nftables\n  bridge_mappings: ext:br-ext0\n")
    where = Where.of_agent(load(str(conf)))
    assert (where.server, where.token, where.hosts) == ("http://ctl-a:9696", "t0k", ["compute7"])
    assert where.backends("compute7") == ("linuxbridge", "nftables")
    assert where.bridge_mappings("compute7") == {"ext": "br-ext0"}
    assert where.host_ns("compute7") is None                 # the agent's kernel is the one hood runs in


def test_flat_port_is_wanted_in_the_agents_mapped_bridge():
    port = {"network_id": NET, "device": "tap0d9c1f6e-4c", "kind": "compute"}
    snap = {"backends": {"l2": "linuxbridge", "firewall": "nftables"}, "bridge_mappings": {"ext": "br-ext0"}}
    assert backends.l2_expected(_view(), snap, port) == [("tap0d9c1f6e-4c", "br-ext0")]
    snap["bridge_mappings"] = {"public": "br-ex"}            # an agent without that physnet realizes nothing
    assert backends.l2_expected(_view(), snap, port) == []
