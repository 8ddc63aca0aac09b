"""Fixtures shared by every test folder.

Real: an S3 server (moto's `ThreadedMotoServer`) on 127.0.0.1, reached by boto3 over
HTTP exactly as a worker reaches AWS S3 or MinIO. Nothing here stands in for the code
under test, except Gemini (`gemini`: a paid remote API) which is a local server
speaking its REST protocol. The Kubernetes control plane fixture `cluster` lives in
`tests/cluster/fixtures.py` and is loaded as a plugin.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from videopipe.s3 import make_client

from tests.support.gemini import FakeGemini
from tests.support.ports import free_port

pytest_plugins: list[str] = ["tests.cluster.fixtures"]

# Credentials moto accepts; set before any boto3 client exists so that worker
# subprocesses started by tests inherit them.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3 server on a free loopback port for the whole session."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3(s3_endpoint: str):
    """A boto3 S3 client for the test server."""
    return make_client(s3_endpoint)


@pytest.fixture
def bucket(s3) -> str:
    """A new, empty bucket per test, so tests never see each other's objects."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def gemini() -> Iterator[FakeGemini]:
    """The Gemini stand-in (a paid remote API): a local server speaking its REST protocol."""
    server = FakeGemini()
    try:
        yield server
    finally:
        server.close()


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects: `make test-fast` relies on the marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses the control plane or the built images carries their mark, said or not."""
    for item in items:
        for fixture in ("cluster", "images"):
            used = fixture in getattr(item, "fixturenames", ())
            if used and not item.get_closest_marker(fixture):
                item.add_marker(getattr(pytest.mark, fixture))
