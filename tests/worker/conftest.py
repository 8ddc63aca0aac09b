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


LONG_TALK_TEXT = " ".join(
    [
        TALK_TEXT,
        "The storage team moved every recording to the new bucket last week.",
        "Our customers asked for shorter meetings and clearer summaries.",
        "The release plan has three phases, and the first one starts in March.",
        "We measured the latency of the upload path in every region.",
        "Please send your questions to the mailing list before Friday.",
        "The budget for the next quarter covers two new engineers.",
        "Support tickets dropped by a third after the last update.",
        "The design review found two problems in the retry logic.",
        "We will run the migration on a weekend to avoid downtime.",
        "Every video now gets a transcript within a few minutes.",
        "The dashboard shows the backlog, the failures and the throughput.",
        "Security asked us to rotate the access keys every ninety days.",
        "The mobile app will support offline playback in the summer.",
        "Training the new model took four days on eight graphics cards.",
        "The conference talk was recorded in three languages.",
        "We agreed to publish the notes of every planning meeting.",
        "The new office opens in April, close to the central station.",
        "Our largest customer renewed the contract for another two years.",
        "The printer on the third floor will be replaced next month.",
        "A short survey about the canteen will arrive by email tomorrow.",
        "The backup of the archive finished without a single error.",
        "Two interns from the university will join the data team in June.",
        "The website was down for ten minutes on Tuesday night.",
        "We are looking for volunteers to organise the summer party.",
        "The quarterly report will be shared with the board on Monday.",
        "Remember to book your holidays in the calendar before the end of May.",
        "The sales team closed more deals in this quarter than in the whole last year.",
        "The fire drill is planned for Thursday morning at ten o'clock.",
        "The coffee machine in the kitchen finally works again.",
        "Our open source library now has more than a thousand users.",
        "The cloud bill went down after we switched off the old servers.",
        "Next year we want to hire a designer and a technical writer.",
        "The legal team reviewed the new terms and found no problems.",
        "Our partner in Berlin will present their results in the afternoon.",
        "The network upgrade doubled the speed of the office connection.",
        "A new version of the handbook is available on the internal website.",
        "That is all for today. Thank you, and see you at the next review.",
    ]
)


@pytest.fixture(scope="session")
def long_talk(media_dir: Path) -> Path:
    """About three minutes of speech: several windows when windows are 40 s."""
    return media.talk(LONG_TALK_TEXT, media_dir / "long review.mp4")
