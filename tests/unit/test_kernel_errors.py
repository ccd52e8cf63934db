"""KernelError carries what the kernel or the program said, so callers match on that and not on message text."""
from __future__ import annotations

import pytest

from neutrino.errors import KernelError
from neutrino.lib import proc


def test_program_failure_carries_exit_status_and_stderr():
    with pytest.raises(KernelError) as e:
        proc.run(["sh", "-c", "echo gone >&2; exit 3"])
    assert (e.value.returncode, e.value.stderr, e.value.errno) == (3, "gone\n", None)


def test_program_that_cannot_start_carries_errno():
    with pytest.raises(KernelError) as e:
        proc.spawn(["/nonexistent/neutrino-test-program"])
    assert e.value.errno == 2 and e.value.returncode is None


def test_other_exit_codes_may_be_success():
    assert proc.run(["sh", "-c", "exit 2"], ok_codes=(0, 2)).returncode == 2
