import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from segtest import REPLICAS, Api, Server  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "single_process: asserts one process's own state — its metrics, its limits "
        "(imports received at once), or its lookup cache dropped at once by its own writes — "
        "so it does not hold across processes and is deselected when SEGMENTD_TEST_REPLICAS > 1 "
        "(README, Scaling: what a process keeps in memory)")


def pytest_collection_modifyitems(config, items):
    if REPLICAS <= 1:
        return
    keep = [i for i in items if i.get_closest_marker("single_process") is None]
    gone = [i for i in items if i.get_closest_marker("single_process") is not None]
    if gone:
        config.hook.pytest_deselected(items=gone)
        items[:] = keep


@pytest.fixture(scope="session")
def server():
    s = Server().start()
    yield s
    rc = s.stop()
    assert rc == 0, "segmentd exited with %s" % rc


@pytest.fixture
def api(server):
    return Api(server, tenant="t1")


@pytest.fixture
def api2(server):
    """Another tenant."""
    return Api(server, tenant="t2")


@pytest.fixture
def reader(server):
    return Api(server, tenant="t1", scope="segments:read")
