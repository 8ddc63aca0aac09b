"""Fixtures for the operator's unit tests.

Real: the moto S3 server from `tests/conftest.py` (for `videopipe.store`), the CRD files, and
the operator's pure modules. No Kubernetes here: the end-to-end tests in `tests/e2e/` run the
operator against the real control plane. `builders.py` makes API objects.
"""

from __future__ import annotations

import pytest
from videopipe_operator.config import Config
from videopipe_operator.specs import VideoJobView

from tests.operator.builders import videojob_body


@pytest.fixture
def config() -> Config:
    return Config()


@pytest.fixture
def vj() -> VideoJobView:
    return VideoJobView.parse(videojob_body())
