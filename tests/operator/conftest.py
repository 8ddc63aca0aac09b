"""Fixtures for the operator's tests.

Real: the moto S3 server from `tests/conftest.py` (for `videopipe.store`), the CRD files, and
the operator's pure modules; for the reconcile and crash-safety tests (`@pytest.mark.cluster`),
also the control plane (`cluster`, with the CRDs applied by `crds`), whose Job controller and
kubelet stand-in run the real worker on `clips`: speech made by espeak-ng and ffmpeg, and a file
that is not media. Those tests call the operator's code in-process (`replay.py`) and inject
crashes only at its I/O boundary (`faults.py`). Nothing stands in for Kubernetes or S3.
`builders.py` makes API objects for the unit tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from videopipe_operator.config import Config
from videopipe_operator.specs import VideoJobView

from tests.cluster.harness import Cluster
from tests.e2e import conftest as e2e
from tests.operator.builders import videojob_body
from tests.operator.replay import Replay, worlds
from tests.support import media

crds = e2e.crds  # the session fixture that applies crds/ once, shared with tests/e2e


@pytest.fixture
def config() -> Config:
    return Config()


@pytest.fixture
def vj() -> VideoJobView:
    return VideoJobView.parse(videojob_body())


@dataclass(frozen=True)
class Clips:
    """Short media for real worker runs: about a second of speech each, and a non-video."""

    hello: Path
    morning: Path
    not_media: Path


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    folder = tmp_path_factory.mktemp("operator-clips")
    not_media = folder / "not-media.mp4"
    not_media.write_bytes(b"A text file, named like a video.\n" * 20)
    return Clips(
        hello=media.talk("Hello there.", folder / "hello.mp4"),
        morning=media.talk("Good morning.", folder / "morning.mp4"),
        not_media=not_media,
    )


@pytest.fixture
def new_world(
    cluster: Cluster, crds: Path, s3: Any, s3_endpoint: str, tmp_path: Path
) -> Iterator[Callable[..., Replay]]:
    """`new_world(**videosource_spec)`: a `Replay` in a namespace and bucket of its own."""
    with worlds(cluster, s3, s3_endpoint, tmp_path) as new:
        yield new
