"""Inputs that must not produce text, and inputs that must fail cleanly.

Silence and noise must give an empty transcript (Whisper invents "You" or "Thank
you." on them without guards). Each kind of bad input must exit 3 (no retry can fix
it) with a reason a user understands, both on stderr and in the exit report.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import media
from tests.support.cli import run_transcribe


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda d: media.silence(d / "silence.wav"), id="silence"),
        pytest.param(lambda d: media.noise(d / "pink.wav", "pink"), id="pink-noise"),
        pytest.param(
            lambda d: media.noise(d / "white.wav", "white", amplitude=0.8), id="loud-white-noise"
        ),
        pytest.param(
            lambda d: media.video_with_audio(
                media.noise(d / "brown.wav", "brown"), d / "brown.mp4"
            ),
            id="brown-noise-video",
        ),
    ],
)
def test_no_speech_gives_no_words(make, tmp_path: Path) -> None:
    source = make(tmp_path)
    out = tmp_path / "out"
    run = run_transcribe(str(source), "--output", str(out))
    assert run.code == 0, run
    transcript = json.loads((out / "transcript.json").read_text())
    assert transcript["segments"] == [] and transcript["text"] == ""
    assert (out / "transcript.txt").read_text() == ""
    assert (out / "transcript.srt").read_text() == ""


@pytest.mark.parametrize(
    ("make", "reason", "says"),
    [
        pytest.param(
            lambda d, talk: ((d / "empty.mp4").write_bytes(b"") and None) or d / "empty.mp4",
            "EmptyInput",
            "empty.mp4 is empty",
            id="empty",
        ),
        pytest.param(
            lambda d, talk: _write(
                d / "notes.mp4", b"These are meeting notes, not a video.\n" * 50
            ),
            "NotMedia",
            "notes.mp4 is not a video",
            id="not-media",
        ),
        pytest.param(
            lambda d, talk: media.video_without_audio(d / "screen recording.mp4"),
            "NoAudioStream",
            "no audio stream in screen recording.mp4",
            id="no-audio-stream",
        ),
        pytest.param(
            lambda d, talk: media.truncated_copy(talk, d / "cut.mp4", keep=0.4),
            "Truncated",
            "cut.mp4 is truncated",
            id="truncated-faststart",
        ),
        pytest.param(
            lambda d, talk: media.truncated_copy(
                media.talk("This upload was cut off.", d / "slow.mp4", faststart=False),
                d / "partial.mp4",
                keep=0.5,
            ),
            "Truncated",
            "partial.mp4 is truncated",
            id="truncated-moov-at-end",
        ),
    ],
)
def test_bad_input_exits_3_with_a_reason(
    make, reason: str, says: str, tmp_path: Path, talk_video: Path
) -> None:
    source = make(tmp_path, talk_video)
    out = tmp_path / "out"
    run = run_transcribe(str(source), "--output", str(out))
    assert run.code == 3, run
    assert says in run.stderr
    assert run.report["reason"] == reason
    assert says in run.report["message"]
    assert run.report["outcome"] == "failed" and run.report["exit_code"] == 3
    assert not (out / "manifest.json").exists()


def test_missing_input_is_a_usage_error(tmp_path: Path) -> None:
    run = run_transcribe(str(tmp_path / "nope.mp4"), "--output", str(tmp_path / "out"))
    assert run.code == 2, run
    assert run.report["reason"] == "InputNotFound"
    assert "input file not found" in run.stderr


def test_too_long_input_is_rejected_before_decoding(talk_video: Path, tmp_path: Path) -> None:
    run = run_transcribe(str(talk_video), "--output", str(tmp_path), "--max-duration", "10")
    assert run.code == 3, run
    assert run.report["reason"] == "TooLong"
    assert "extract" not in run.report.get("timings", {})


def test_bad_option_is_a_usage_error(talk_video: Path, tmp_path: Path) -> None:
    run = run_transcribe(str(talk_video), "--output", str(tmp_path), "--device", "tpu")
    assert run.code == 2
    assert "invalid choice: 'tpu'" in run.stderr
    assert run.report["reason"] == "Usage"


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
