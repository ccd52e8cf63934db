"""lib.inotify.DirWatch on the real kernel: what wakes a waiter on a guest's lease file (a write closed by another
process, a file renamed into the directory), and that one wake covers every event before it."""
from __future__ import annotations

import os
import subprocess
import tempfile

import pytest

from neutrino.errors import KernelError
from neutrino.lib import inotify

pytestmark = pytest.mark.kernel


@pytest.fixture
def d():
    with tempfile.TemporaryDirectory(prefix="nt-inotify-") as path:
        yield path


def test_a_write_by_another_process_wakes_the_waiter_and_is_drained(d):
    with inotify.DirWatch(d) as watch:
        assert not watch.wait(0)                                   # nothing written yet
        subprocess.run(["sh", "-c", f'echo 10.0.0.5 > "{d}/lease"; : > "{d}/lease"'], check=True)
        assert watch.wait(10)
        assert not watch.wait(0)                                   # both writes were covered by that one wake


def test_a_file_moved_in_wakes_the_waiter_and_reads_do_not(d):
    outside = tempfile.mkdtemp(prefix="nt-inotify-src-")
    with open(os.path.join(d, "lease"), "w") as f:
        f.write("10.0.0.5\n")
    with inotify.DirWatch(d) as watch:
        with open(os.path.join(d, "lease")) as f:
            f.read()
        assert not watch.wait(0)
        with open(os.path.join(outside, "new"), "w") as f:
            f.write("x")
        os.replace(os.path.join(outside, "new"), os.path.join(d, "lease"))
        assert watch.wait(10)
    os.rmdir(outside)


def test_a_missing_directory_is_a_kernel_error(d):
    with pytest.raises(KernelError):
        inotify.DirWatch(os.path.join(d, "missing"))
