"""What is inside each image: the package's version, and only the extra it is meant to carry."""

from __future__ import annotations

import pytest
from videopipe import __version__

from tests.images.podman import OPERATOR_IMAGE, WORKER_IMAGE, podman

pytestmark = [pytest.mark.images, pytest.mark.usefixtures("images")]

HAS = "import importlib.util as u, sys; sys.exit(0 if u.find_spec(sys.argv[1]) else 1)"


def run(image: str, *args: str, entrypoint: str | None = None) -> tuple[int, str]:
    flags = ["--entrypoint", entrypoint] if entrypoint else []
    proc = podman(
        "run", "--rm", "--pull=never", "--network=none", *flags, image, *args, check=False
    )
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.parametrize("image", [OPERATOR_IMAGE, WORKER_IMAGE])
def test_version_prints_the_package_version(image: str) -> None:
    assert run(image, "version") == (0, f"videopipe {__version__}\n")


@pytest.mark.parametrize(
    ("image", "present", "absent"),
    [
        pytest.param(OPERATOR_IMAGE, "kopf", "faster_whisper", id="operator"),
        pytest.param(WORKER_IMAGE, "faster_whisper", "kopf", id="worker"),
        # The CPU worker (the one the tests and CPU nodes run) carries no CUDA libraries.
        pytest.param(WORKER_IMAGE, "ctranslate2", "nvidia", id="worker-cpu-no-cuda"),
    ],
)
def test_each_image_carries_its_own_extra_only(image: str, present: str, absent: str) -> None:
    assert run(image, "-c", HAS, present, entrypoint="python")[0] == 0
    assert run(image, "-c", HAS, absent, entrypoint="python")[0] == 1
