"""Fixtures shared across the suite: quick side-by-side timing, and tables written by hand."""

from __future__ import annotations

import pytest

from prunesearch.oracle import TimingOptions

#: side-by-side timing short enough for tiny models in a unit test (their numbers drive code paths, not claims)
FAST = TimingOptions(min_rounds=3, max_rounds=4, block_s=0.005, warmup=2)


@pytest.fixture(autouse=True, scope="session")
def _own_cache(tmp_path_factory):
    """Tables, level databases and reference graphs of tiny test models go to a cache of the test run's
    own, never into the user's; a converted real checkpoint is linked in, so slow tests need not redo it."""
    import os
    from pathlib import Path

    real = Path(os.environ.get("PRUNESEARCH_CACHE", Path.home() / ".cache" / "prunesearch"))
    cache = tmp_path_factory.mktemp("cache")
    if (real / "models").is_dir():
        (cache / "models").symlink_to(real / "models")
    before = os.environ.get("PRUNESEARCH_CACHE")
    os.environ["PRUNESEARCH_CACHE"] = str(cache)
    yield cache
    if before is None:
        del os.environ["PRUNESEARCH_CACHE"]
    else:
        os.environ["PRUNESEARCH_CACHE"] = before


@pytest.fixture
def fast_timing(monkeypatch):
    """Every built-in timing window (table checks, measured picks, verify) shortened to ``FAST``."""
    import prunesearch.export.pick as pick
    import prunesearch.export.verify as verify
    import prunesearch.oracle.ensure as ensure

    for module, name in ((ensure, "CHECK_TIMING"), (pick, "PICK_TIMING"), (verify, "VERIFY_TIMING")):
        monkeypatch.setattr(module, name, FAST)
    return FAST
