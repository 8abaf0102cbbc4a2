import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from segtest import Api, Server  # noqa: E402


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
