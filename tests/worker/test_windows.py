"""Windowed transcription and resumable attempts, on real speech.

A three-minute talk is transcribed whole (`--window-seconds 0`, the behaviour before
windows existed) and in 40-second windows: the windowed transcript must be one
continuous transcript as good as the whole one. A worker SIGKILLed after a few
windows and started again must continue from its checkpoint and write exactly what
an uninterrupted run writes; a checkpoint of another upload must not be used.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import srt
from videopipe.layout import RESULT_FILES
from videopipe_worker.checkpoint import Checkpoint, checkpoint_key
from videopipe_worker.storage import Output, S3Settings
from videopipe_worker.transcribe import Segment, WindowResult
from videopipe_worker.windows import quietest_point

from tests.support.cli import Run, run_transcribe
from tests.worker.conftest import LONG_TALK_TEXT
from tests.worker.test_speech import MAX_WER, word_error_rate

WINDOW = "40"
TRANSCRIPTS = ("transcript.json", "transcript.srt", "transcript.vtt", "transcript.txt")


def test_the_cut_is_in_the_middle_of_the_longest_pause() -> None:
    speech = np.full(100, 0.9)
    speech[10:14] = 0.1  # a short pause
    speech[60:70] = 0.2  # the longest one
    speech[90:92] = 0.0
    assert quietest_point(speech) == 65


def test_without_a_pause_the_cut_is_where_speech_is_least_likely() -> None:
    speech = np.linspace(0.99, 0.6, 50)
    speech[20] = 0.5
    assert quietest_point(speech) == 20


def _window(index: int, start: int, end: int) -> WindowResult:
    segment = Segment(0, start / 16_000, end / 16_000, f"window {index}", -0.2, 0.01, 1.1)
    return WindowResult(index, start, end, False, 8, "en", 1.0, 30.0, [segment], 0)


def test_a_checkpoint_is_used_only_with_its_own_key(tmp_path: Path) -> None:
    output = Output(str(tmp_path), S3Settings())
    settings = {"model": "tiny.en", "beam_size": 5}
    key = checkpoint_key("etag-1", settings)
    mine = Checkpoint(output, key)
    mine.save(_window(0, 0, 640_000))
    mine.save(_window(1, 640_000, 1_280_000))
    assert Checkpoint(output, key).load() == [
        _window(0, 0, 640_000),
        _window(1, 640_000, 1_280_000),
    ]

    other_upload = checkpoint_key("etag-2", settings)
    other_settings = checkpoint_key("etag-1", {**settings, "beam_size": 1})
    assert len({key, other_upload, other_settings}) == 3
    assert Checkpoint(output, other_upload).load() == []
    assert not (tmp_path / ".partial").exists()  # another upload's windows are deleted


@pytest.fixture(scope="module")
def whole(long_talk: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, Path]:
    out = tmp_path_factory.mktemp("whole")
    run = run_transcribe(str(long_talk), "--output", str(out), "--window-seconds", "0")
    assert run.code == 0, run
    return run, out


@pytest.fixture(scope="module")
def windowed(long_talk: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, Path]:
    out = tmp_path_factory.mktemp("windowed")
    run = run_transcribe(str(long_talk), "--output", str(out), "--window-seconds", WINDOW)
    assert run.code == 0, run
    return run, out


def test_windows_make_one_continuous_transcript(
    whole: tuple[Run, Path], windowed: tuple[Run, Path]
) -> None:
    whole_json = json.loads((whole[1] / "transcript.json").read_text())
    windowed_json = json.loads((windowed[1] / "transcript.json").read_text())
    manifest = json.loads((windowed[1] / "manifest.json").read_text())
    # windows end at a pause before their 40 s are up: at least duration / 40 of them
    assert manifest["windows"]["count"] >= math.ceil(whole_json["duration"] / float(WINDOW))
    assert manifest["windows"]["resumed"] == 0
    assert json.loads((whole[1] / "manifest.json").read_text())["windows"]["count"] == 1
    assert set(windowed_json) == set(whole_json)
    assert windowed_json["duration"] == pytest.approx(whole_json["duration"], abs=0.001)
    whole_wer = word_error_rate(LONG_TALK_TEXT, whole_json["text"])
    windowed_wer = word_error_rate(LONG_TALK_TEXT, windowed_json["text"])
    print(f"WER whole {whole_wer:.1%}, windowed {windowed_wer:.1%}")
    assert windowed_wer < MAX_WER and windowed_wer <= whole_wer + 0.02
    segments = windowed_json["segments"]
    assert [s["id"] for s in segments] == list(range(len(segments)))
    assert segments[-1]["end"] > 150  # times count from the start of the input
    assert all(b["start"] >= a["end"] - 0.05 for a, b in itertools.pairwise(segments))
    cues = list(srt.parse((windowed[1] / "transcript.srt").read_text()))
    assert [c.content for c in cues] == [s["text"] for s in segments]
    assert {p.name for p in windowed[1].iterdir()} == set(RESULT_FILES) - {"summary.json"}


def _windows_saved(out: Path) -> int:
    return len(list((out / ".partial").glob("window-*.json")))


def test_a_killed_worker_resumes_where_it_stopped(
    long_talk: Path, windowed: tuple[Run, Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    command = [sys.executable, "-m", "videopipe", "transcribe", str(long_talk)]
    command += ["--output", str(out), "--window-seconds", WINDOW]
    env = {k: v for k, v in os.environ.items() if k not in {"GEMINI_API_KEY", "GOOGLE_API_KEY"}}
    worker = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while _windows_saved(out) < 2 and worker.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        worker.send_signal(signal.SIGKILL)  # as the kernel's OOM killer or a lost node does
    finally:
        worker.wait()
    killed_after = _windows_saved(out)
    count = json.loads((windowed[1] / "manifest.json").read_text())["windows"]["count"]
    assert 2 <= killed_after < count and not (out / "manifest.json").exists()

    run = run_transcribe(str(long_talk), "--output", str(out), "--window-seconds", WINDOW)
    assert run.code == 0, run
    assert f"resuming: {killed_after} windows" in run.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["windows"] == {"count": count, "resumed": killed_after}
    print(f"killed after {killed_after} windows; the second attempt skipped them")
    for name in TRANSCRIPTS:
        assert (out / name).read_text() == (windowed[1] / name).read_text(), name
    assert not (out / ".partial").exists()


def test_a_checkpoint_of_another_upload_is_not_used(
    long_talk: Path, windowed: tuple[Run, Path], tmp_path: Path
) -> None:
    """The same name uploaded again (here: a copy with another mtime) starts from zero."""
    talk = tmp_path / long_talk.name
    talk.write_bytes(long_talk.read_bytes())
    out = tmp_path / "out"
    planted = Checkpoint(Output(str(out), S3Settings()), checkpoint_key("old upload", {}))
    planted.save(_window(0, 0, 640_000))
    run = run_transcribe(str(talk), "--output", str(out), "--window-seconds", WINDOW)
    assert run.code == 0, run
    assert "resuming" not in run.stderr
    assert json.loads((out / "manifest.json").read_text())["windows"]["resumed"] == 0
    assert (out / "transcript.txt").read_text() == (windowed[1] / "transcript.txt").read_text()
    assert not (out / ".partial").exists()
