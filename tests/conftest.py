"""Shared pytest options."""


def pytest_addoption(parser):
    parser.addoption("--fuzz-cases", type=int, default=None,
                     help="number of generated cases test_fuzz.py runs (default 320, or $IOTWATCH_FUZZ_CASES)")
    parser.addoption("--fuzz-seed", type=int, default=None, help="seed of test_fuzz.py's cases (default 16)")
