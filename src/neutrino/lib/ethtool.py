"""NIC offload settings through ethtool.

The OVS userspace (netdev) datapath forwards veth frames with partial checksums unfixed, so TCP from a namespace
end fails unless its tx checksum offload is off (reference/dataplane-on-this-machine.md, gotcha 1).
"""
from __future__ import annotations

from neutrino.lib import proc


def ethtool_tx_off(dev: str, ns: str | None = None) -> bool:
    """Turn tx checksum offload off on dev (in ns); True when it was on and has been changed."""
    features = proc.output(["ethtool", "-k", dev], netns=ns)
    if "tx-checksumming: off" in features:
        return False
    proc.run(["ethtool", "-K", dev, "tx", "off"], netns=ns)
    return True
