import os
import sys
import warnings

import pytest
from hypothesis import settings

sys.path.insert(0, os.path.dirname(__file__))
warnings.filterwarnings("ignore", category=FutureWarning)

settings.register_profile("ci", deadline=None, derandomize=True, max_examples=100)
settings.register_profile("dev", deadline=None, max_examples=50)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# Counters that tests report in the terminal summary (summed over xdist workers through files).
STATS_ENV = "XCOMP_TEST_STATS_DIR"


def pytest_configure(config):
    import tempfile
    if STATS_ENV not in os.environ:  # the controller: workers inherit the directory
        os.environ[STATS_ENV] = tempfile.mkdtemp(prefix="xcomp-test-stats-")
    # The suite's compile cache (xcomp.cache) is never the user's: one folder kept between runs (C++
    # libraries built by one run serve the next), or XCOMP_TEST_CACHE_DIR. Tests that count builds
    # or damage entries set a fresh XCOMP_CACHE_DIR of their own.
    os.environ["XCOMP_CACHE_DIR"] = os.environ.get("XCOMP_TEST_CACHE_DIR") or os.path.join(
        tempfile.gettempdir(), f"xcomp-test-cache-{getattr(os, 'getuid', lambda: 'user')()}")


def record_stat(name: str, count: int) -> None:
    """Add `count` to the summary line `name` (call from tests)."""
    path = os.path.join(os.environ[STATS_ENV], f"{name}.{os.getpid()}")
    with open(path, "w") as f:
        f.write(str(count))


def pytest_terminal_summary(terminalreporter, config):
    if hasattr(config, "workerinput"):
        return
    root = os.environ.get(STATS_ENV)
    if not root or not os.path.isdir(root):
        return
    totals = {}
    for entry in os.listdir(root):
        name = entry.rsplit(".", 1)[0]
        with open(os.path.join(root, entry)) as f:
            totals[name] = totals.get(name, 0) + int(f.read() or 0)
    for name, count in sorted(totals.items()):
        terminalreporter.write_line(f"{name}: {count}")


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """A fresh, empty compile cache (XCOMP_CACHE_DIR) for tests that count its entries or damage them."""
    monkeypatch.setenv("XCOMP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("XCOMP_CACHE", raising=False)
    return tmp_path / "cache"
