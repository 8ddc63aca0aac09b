"""Fixtures for `videopipe run`: real S3, real worker processes, real speech.

Real: the moto S3 server from `tests/conftest.py` (conditional writes and all), the runner and
every worker as child processes (`helpers.py`), espeak-ng speech in ffmpeg-made mp4 files, the
bundled Whisper tiny.en model. The clips are a few seconds long: two shared CPU cores run them.
Stand-ins: Gemini (`gemini`, a paid remote API), and in one test a proxy in front of moto that
drops the conditional headers, to be a store that ignores them (as GCS's S3 interop does).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import media
from tests.support.s3proxy import UNCONDITIONAL_WRITES, S3Proxy

SENTENCES = {
    "alpha": "Please send the quarterly report to the sales department.",
    "bravo": "We will meet again on Friday afternoon.",
    "charlie": "Our new office opens next week.",
    "delta": "Thank you all for coming today.",
}


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A few seconds of known speech each, as mp4 files, by name."""
    folder = tmp_path_factory.mktemp("clips")
    return {name: media.talk(text, folder / f"{name}.mp4") for name, text in SENTENCES.items()}


@pytest.fixture(scope="session")
def no_audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A screen recording without a sound track."""
    return media.video_without_audio(tmp_path_factory.mktemp("silent") / "screen.mp4", seconds=2)


@pytest.fixture(scope="session")
def corrupt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An upload cut off halfway (moov atom at the end, so it is gone)."""
    folder = tmp_path_factory.mktemp("corrupt")
    whole = media.talk("This upload was cut off.", folder / "whole.mp4", faststart=False)
    return media.truncated_copy(whole, folder / "cut.mp4", keep=0.5)


@pytest.fixture
def unconditional(s3_endpoint: str) -> Iterator[S3Proxy]:
    """The S3 server seen through a proxy that drops conditional headers from writes."""
    proxy = S3Proxy(s3_endpoint, UNCONDITIONAL_WRITES)
    try:
        yield proxy
    finally:
        proxy.close()
