"""Image-test fixtures: podman that can run containers, and the images `make images` built.

The images must be built from the code under test (`images/build.sh --check` compares their
input stamps), not merely exist.

Without podman (or with one that cannot start a container here) the image tests skip locally
with the reason, and fail under CI=true, where `make test` has just built the images.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.images.podman import OPERATOR_IMAGE, REPO, WORKER_IMAGE, image_size, podman

_PROBLEM = pytest.StashKey[str | None]()


def _podman_problem() -> str | None:
    if shutil.which("podman") is None:
        return "podman is not installed (`make images` installs it)"
    info = podman("info", check=False)
    if info.returncode != 0:
        return f"podman cannot run here: {info.stderr.strip()[-300:]}"
    # Not an image built from other code than this: the stamps must match the inputs.
    check = subprocess.run(
        ["bash", str(REPO / "images" / "build.sh"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check.returncode != 0:
        return check.stderr.strip() or "the images are not built: run `make images`"
    return None


@pytest.fixture(scope="session")
def images(request: pytest.FixtureRequest) -> None:
    """Podman works and both images exist, else skip (fail under CI=true) with the reason."""
    problem = _podman_problem()
    request.config.stash[_PROBLEM] = problem
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(problem)
    pytest.skip(problem)


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    """The sizes of the images that the tests ran, after the results."""
    if config.stash.get(_PROBLEM, "not run") is not None:
        return
    terminalreporter.section("image sizes")
    for image in (OPERATOR_IMAGE, WORKER_IMAGE):
        terminalreporter.write_line(f"{image}: {image_size(image) / 1e6:.0f} MB")
