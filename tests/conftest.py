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
    """Every built-in timing window (table checks, the search's loop, measured picks, verify) shortened to ``FAST``."""
    import prunesearch.export._pick as pick
    import prunesearch.export._verify as verify
    import prunesearch.oracle._ensure as ensure
    import prunesearch.search._loop as loop

    timings = ((ensure, "CHECK_TIMING"), (loop, "LOOP_TIMING"), (pick, "PICK_TIMING"), (verify, "VERIFY_TIMING"))
    for module, name in timings:
        monkeypatch.setattr(module, name, FAST)
    return FAST


def _service(request, make):
    """One instance of a service per test run, started by the first test that asks for it."""
    from tests.services import Unavailable

    try:
        service = make()
    except Unavailable as exc:
        pytest.skip(str(exc))
    request.addfinalizer(service.stop)
    return service


@pytest.fixture(scope="session")
def ray_head(request):
    """A Ray head on loopback (2 CPUs), this process connected to it."""
    import ray

    from tests.services import RayHead

    head = _service(request, RayHead)
    ray.init(address=head.address, log_to_driver=False)
    request.addfinalizer(ray.shutdown)
    return head


@pytest.fixture(scope="session")
def postgres(request):
    """A PostgreSQL server on loopback; ``postgres.new_database(name)`` gives each test a database of its own."""
    from tests.services import Postgres

    return _service(request, Postgres)
