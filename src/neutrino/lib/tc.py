"""Traffic control for QoS bandwidth limits: a token bucket (TBF) on a device's egress, and the device's ingress
redirected into an IFB device that carries a TBF of its own.

This kernel has no tc police action (no NET_ACT_* but mirred), so traffic *received* on a device is shaped the
classic way: `ingress` qdisc -> u32 match-all -> mirred redirect to ifb<id> -> TBF on the IFB's egress; the IFB
hands each packet back to the device's receive path, where the bridge takes it. Every call is idempotent: qdiscs
are `replace`d, deleting what is gone is success.
"""
from __future__ import annotations

import json

from neutrino.errors import KernelError
from neutrino.lib import ip, proc

INGRESS = "ffff:"
LATENCY_MS = 50          # the queue a TBF keeps, as Neutron's linuxbridge QoS driver sets it


def qdiscs(netns: str | None = None) -> dict[str, dict[str, dict]]:
    """device -> {"root": qdisc, "ingress": qdisc} (those present), from one `tc -j qdisc show`."""
    out: dict[str, dict[str, dict]] = {}
    for q in json.loads(proc.output(["tc", "-j", "qdisc", "show"], netns=netns) or "[]"):
        if q.get("root"):
            out.setdefault(q["dev"], {})["root"] = q
        elif q.get("kind") == "ingress":
            out.setdefault(q["dev"], {})["ingress"] = q
    return out


def tbf_matches(qdisc: dict | None, kbit: int, burst_bytes: int) -> bool:
    """Whether a root qdisc (as `qdiscs` gives it) is our TBF with this rate and burst."""
    if not qdisc or qdisc.get("kind") != "tbf":
        return False
    opts = qdisc.get("options", {})
    return opts.get("rate") == kbit * 1000 // 8 and opts.get("burst") == burst_bytes


def ensure_tbf(dev: str, kbit: int, burst_bytes: int, netns: str | None = None) -> None:
    proc.run(["tc", "qdisc", "replace", "dev", dev, "root", "handle", "1:", "tbf", "rate", f"{kbit}kbit",
              "burst", str(burst_bytes), "latency", f"{LATENCY_MS}ms"], netns=netns)


def delete_root(dev: str, netns: str | None = None) -> None:
    """Back to the device's default qdisc; nothing to delete (or no device) is success."""
    _delete(["tc", "qdisc", "del", "dev", dev, "root"], netns)


def redirects_to(dev: str, ifb: str, netns: str | None = None) -> bool:
    """Whether the device's ingress hands every packet to `ifb`."""
    out = proc.output(["tc", "-j", "filter", "show", "dev", dev, "ingress"], netns=netns) or "[]"
    return any(a.get("kind") == "mirred" and a.get("to_dev") == ifb
               for f in json.loads(out) for a in f.get("options", {}).get("actions", []))


def ensure_redirect(dev: str, ifb: str, netns: str | None = None) -> None:
    """ingress qdisc on dev with one match-all filter redirecting to ifb (made afresh: u32 filters have no
    `replace` by content)."""
    delete_ingress(dev, netns)
    proc.run(["tc", "qdisc", "add", "dev", dev, "handle", INGRESS, "ingress"], netns=netns)
    proc.run(["tc", "filter", "add", "dev", dev, "parent", INGRESS, "protocol", "all", "prio", "1", "u32", "match",
              "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev", ifb], netns=netns)


def delete_ingress(dev: str, netns: str | None = None) -> None:
    _delete(["tc", "qdisc", "del", "dev", dev, "ingress"], netns)


def ensure_ifb(name: str, netns: str | None = None) -> None:
    """An IFB device, up (over netlink: one that exists already is success)."""
    ip.ensure_link(name, "ifb", netns)


GONE = ("No such file", "Cannot find device", "Cannot find specified qdisc", "handle of zero", "Invalid handle")


def _delete(argv: list[str], netns: str | None) -> None:
    """`tc ... del`: tc exits 2 for every refusal, so what says "nothing there" is its error output."""
    try:
        proc.run(argv, netns=netns)
    except KernelError as e:
        if not any(g in (e.stderr or "") for g in GONE):
            raise
