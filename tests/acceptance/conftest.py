"""Fixtures of the acceptance tests."""
import pytest

from neutrino.lib import ip


@pytest.fixture(scope="module")
def before():
    """Root-namespace devices before a lab (nothing may be added there)."""
    return set(ip.links())
