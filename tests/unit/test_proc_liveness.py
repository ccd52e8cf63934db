"""A process that exited but was not collected by its parent (a zombie) is not alive: `neutrino down` kills guests
that another process (a test, a script) started, and must not wait on them as if SIGKILL had failed."""
import subprocess
import sys
import time

from neutrino.lib import proc


def _state(pid: int) -> bytes:
    with open(f"/proc/{pid}/stat", "rb") as f:
        return f.read().rsplit(b")", 1)[1].split()[0]


def test_a_zombie_is_not_alive_and_stop_returns():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while _state(child.pid) != b"Z":
        assert time.monotonic() < deadline, "the child did not exit"
        time.sleep(0.01)
    try:
        assert not proc.pid_alive(child.pid)
        proc.stop(child.pid, timeout=0.5)               # returns at once instead of "survived SIGKILL"
    finally:
        child.wait()


def test_a_running_process_is_alive():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert proc.pid_alive(child.pid)
    finally:
        child.kill()
        child.wait()
    assert not proc.pid_alive(child.pid)
