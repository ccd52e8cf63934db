"""Fixtures of the acceptance tests."""
import pytest

from neutrino.lib import ip

from labfix import running_lab


@pytest.fixture(scope="session")
def before():
    """Root-namespace devices before any lab (nothing may be added there)."""
    return set(ip.links())


@pytest.fixture(scope="session")
def seed_world(before):
    """The seed page's lab (`neutrino up`), brought up once for the modules that look at it: test_page_*.py sort
    before test_seed_page.py, whose last test takes the lab down and checks that nothing is left."""
    yield from running_lab("nl-")
