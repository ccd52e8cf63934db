"""lib's kernel errors carry the kernel's errno; what is already there (or already gone) is success."""
from __future__ import annotations

import errno
import threading

import pytest

from netfix_l2 import nets  # noqa: F401 - a fixture
from neutrino.errors import KernelError
from neutrino.lib import ip, sysctl, tc


def test_netlink_refusal_carries_errno(nets):
    ns = nets.add()
    with pytest.raises(KernelError) as e:
        ip.ensure_route("10.9.0.0/24", ns, gateway="10.8.0.1")        # no route to that gateway
    assert e.value.errno == errno.ENETUNREACH
    with pytest.raises(KernelError) as e:
        ip.set_link("nosuchdev", ns, up=True)
    assert e.value.errno == errno.ENODEV
    with pytest.raises(KernelError) as e:
        sysctl.get("net.ipv4.conf.nosuchdev.forwarding", ns)
    assert e.value.errno == errno.ENOENT
    with pytest.raises(KernelError) as e:
        ip.links("nt-no-such-namespace")
    assert e.value.errno == errno.ENOENT


def test_ifb_and_qdisc_calls_are_idempotent(nets):
    ns = nets.add()
    tc.ensure_ifb("ifbtest", ns)
    tc.ensure_ifb("ifbtest", ns)
    assert ip.links(ns)["ifbtest"]["up"]
    tc.delete_root("ifbtest", ns)             # nothing but the default qdisc: success
    tc.delete_ingress("ifbtest", ns)
    tc.delete_root("nosuchdev", ns)           # no device: success
    tc.ensure_tbf("ifbtest", 1000, 10000, ns)
    assert tc.tbf_matches(tc.qdiscs(ns)["ifbtest"]["root"], 1000, 10000)
    tc.delete_root("ifbtest", ns)
    assert tc.qdiscs(ns).get("ifbtest", {}).get("root", {}).get("kind") != "tbf"


def test_netlink_sockets_of_one_namespace_from_many_threads(nets):
    """The agent drives a namespace from its loop, device and watcher threads, a lab script from several: each thread
    gets a working socket (a shared fd once turned into 'Socket operation on non-socket' or another socket's fd)."""
    ns = nets.add()
    errors: list[str] = []

    def work() -> None:
        try:
            for _ in range(30):
                assert ip.link_index("lo", ns) is not None
                ip.addresses("lo", ns)
        except Exception as e:  # noqa: BLE001 - reported by the test
            errors.append(repr(e))
    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
