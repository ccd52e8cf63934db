"""lib.nsthread on the real kernel: a call runs in the namespace named now, even when the thread that stays there
entered an earlier namespace of the same name; a missing namespace is ENOENT; errors come back to the caller."""
from __future__ import annotations

import errno
import os

import pytest

from neutrino.errors import KernelError
from neutrino.lib import ip, nsthread

pytestmark = pytest.mark.kernel

if os.geteuid() != 0:
    pytest.skip("needs root (network namespaces)", allow_module_level=True)

from netfix_fw import nsname  # noqa: E402


def here() -> int:
    """The inode of the calling thread's network namespace."""
    return os.stat("/proc/thread-self/ns/net").st_ino


def named(ns: str) -> int:
    return os.stat(f"/run/netns/{ns}").st_ino


@pytest.fixture
def ns():
    name = nsname()
    ip.ensure_netns(name)
    yield name
    ip.delete_netns(name)


def test_calls_run_inside_the_namespace_named_now(ns):
    first = named(ns)
    assert first != here()
    assert nsthread.run(ns, here) == first
    assert nsthread.run(ns, here) == first               # the thread that stayed
    ip.delete_netns(ns)
    with pytest.raises(KernelError) as e:
        nsthread.run(ns, here)
    assert e.value.errno == errno.ENOENT
    ip.ensure_netns(ns)                                  # the same name, another namespace
    assert named(ns) != first
    assert nsthread.run(ns, here) == named(ns)


def test_errors_come_back_and_the_thread_serves_on(ns):
    def fail() -> None:
        raise KernelError("boom", errno=errno.EBUSY)
    with pytest.raises(KernelError, match="boom"):
        nsthread.run(ns, fail)
    assert nsthread.run(ns, lambda a, b: a + b, 2, 3) == 5


def test_no_namespace_runs_in_the_calling_thread():
    assert nsthread.run(None, here) == here()
