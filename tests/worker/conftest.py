"""Worker fixtures: real media made from known text, once per session.

Real: espeak-ng speech, ffmpeg-encoded mp4 files, the bundled Whisper tiny.en model,
the moto S3 server from the top-level conftest. The only stand-in is Gemini (the
`gemini` fixture). Tests run the worker as its users do (`tests.support.cli.run_transcribe`):
a subprocess, so exit codes, stderr and the termination report are the real ones.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import media

TALK_TEXT = (
    "Good morning and welcome to the quarterly review. Today we will look at three topics. "
    "First, the new storage system that keeps every recording of our meetings. "
    "Second, the results of the customer survey, which were better than we expected. "
    "Third, the plan for the next release, which ships in the spring. "
    "Please write down your questions and ask them at the end of the session. "
    "Thank you all for coming."
)


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def talk_video(media_dir: Path) -> Path:
    """About 40 s of speech in an mp4 with a video track."""
    return media.talk(TALK_TEXT, media_dir / "quarterly review.mp4")
