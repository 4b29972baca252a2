"""Shared pytest options and fixtures."""
import pytest


def pytest_addoption(parser):
    parser.addoption("--fuzz-cases", type=int, default=None,
                     help="number of generated cases test_fuzz.py runs (default 320, or $IOTWATCH_FUZZ_CASES)")
    parser.addoption("--fuzz-seed", type=int, default=None, help="seed of test_fuzz.py's cases (default 16)")


@pytest.fixture
def live_lo():
    """The loopback interface, when this user may capture on it (dumpcap's capability or root)."""
    from iotwatch.captures.tshark.preflight import capture_permission

    from fakes import require

    ok, why = capture_permission("lo", "/usr/bin/dumpcap")
    require(ok, f"capture permission on lo ({why})")
    return "lo"
