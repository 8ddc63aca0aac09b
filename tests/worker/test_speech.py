"""The worker on real speech: words, timestamps, subtitle files, manifest.

One run of `videopipe transcribe` on a talk made from known text, checked word by
word with jiwer. WER threshold: tiny.en int8 measured 3-9 % on espeak-ng speech at
150 wpm on this machine (3.4 % on 61 s; 7.6 % on the demo talk; 8.5 % on
the talk below, its errors near-homophones such as "bucket"/"market"). 15 % is about
twice the worst measurement: a broken decode (wrong sample rate, int16 samples, a
clipped chunk) gives far more than that; a different CPU's rounding does not.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import jiwer
import pytest
import srt
import webvtt
from videopipe.layout import RESULT_FILES

from tests.support.cli import Run, run_transcribe
from tests.worker.conftest import TALK_TEXT

MAX_WER = 0.15
NORMALIZE = jiwer.Compose(
    [
        jiwer.ToLowerCase(),
        jiwer.RemovePunctuation(),
        jiwer.RemoveMultipleSpaces(),
        jiwer.Strip(),
        jiwer.ReduceToListOfListOfWords(),
    ]
)


def word_error_rate(reference: str, hypothesis: str) -> float:
    return jiwer.wer(
        reference, hypothesis, reference_transform=NORMALIZE, hypothesis_transform=NORMALIZE
    )


@pytest.fixture(scope="module")
def talk_run(talk_video: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, Path]:
    out = tmp_path_factory.mktemp("talk-output")
    run = run_transcribe(str(talk_video), "--output", str(out), "--word-timestamps")
    assert run.code == 0, run
    return run, out


def test_transcript_matches_the_spoken_text(talk_run: tuple[Run, Path]) -> None:
    _, out = talk_run
    transcript = json.loads((out / "transcript.json").read_text())
    wer = word_error_rate(TALK_TEXT, transcript["text"])
    print(f"WER {wer:.1%}")
    assert wer < MAX_WER, f"WER {wer:.1%}: {transcript['text']}"
    assert transcript["language"] == "en"
    assert 20 < transcript["duration"] < 45
    txt = (out / "transcript.txt").read_text()
    assert word_error_rate(TALK_TEXT, " ".join(txt.split())) == pytest.approx(wer)


def test_segments_and_words_move_forward_in_time(talk_run: tuple[Run, Path]) -> None:
    _, out = talk_run
    segments = json.loads((out / "transcript.json").read_text())["segments"]
    assert len(segments) >= 3
    previous_end = 0.0
    for segment in segments:
        assert previous_end <= segment["start"] + 0.01 <= segment["end"] + 0.02
        previous_end = segment["end"]
        words = segment["words"]
        assert words, segment
        assert all(w["start"] <= w["end"] for w in words)
        assert (
            segment["start"] - 0.5 <= words[0]["start"] and words[-1]["end"] <= segment["end"] + 0.5
        )


def test_subtitles_parse_with_independent_parsers(talk_run: tuple[Run, Path]) -> None:
    _, out = talk_run
    segments = json.loads((out / "transcript.json").read_text())["segments"]
    cues = list(srt.parse((out / "transcript.srt").read_text()))
    assert [c.content for c in cues] == [s["text"] for s in segments]
    assert all(a.end <= b.start for a, b in itertools.pairwise(cues))
    assert cues[0].start.total_seconds() == pytest.approx(segments[0]["start"], abs=0.001)

    vtt = webvtt.read(str(out / "transcript.vtt"))
    assert [c.text for c in vtt] == [s["text"] for s in segments]
    hours, minutes, seconds = vtt[-1].end.split(":")
    vtt_end = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    assert vtt_end == pytest.approx(segments[-1]["end"], abs=0.001)


def test_manifest_is_complete_and_report_says_success(
    talk_run: tuple[Run, Path], talk_video: Path
) -> None:
    run, out = talk_run
    manifest = json.loads((out / "manifest.json").read_text())
    written = {p.name for p in out.iterdir()}
    assert written == set(RESULT_FILES) - {"summary.json"}
    assert set(manifest["files"]) | {"manifest.json"} == written
    assert manifest["input"]["uri"] == str(talk_video)
    assert manifest["input"]["has_video"] is True
    assert manifest["model"] == "tiny.en" and manifest["device"] == "cpu"
    assert manifest["compute_type"] == "int8"
    assert manifest["settings"]["word_timestamps"] is True
    timings = manifest["timings"]
    assert {"probe", "extract", "load_model", "startup", "transcribe", "write"} <= set(timings)
    # probe, extract and model loading run side by side: start-up is the longest, not the sum
    assert timings["startup"] < timings["probe"] + timings["extract"] + timings["load_model"]
    assert manifest["summary"].startswith("skipped: no Gemini API key")
    assert manifest["versions"]["faster-whisper"]
    assert re.match(r"\d+\.\d+", manifest["versions"]["ffmpeg"])  # from ffprobe's own report

    report = run.report
    assert report["outcome"] == "succeeded" and report["exit_code"] == 0
    assert report["language"] == "en"
    assert report["audio_seconds"] == pytest.approx(manifest["transcript"]["audio_seconds"])
    assert report["realtime_factor"] > 1
    assert "summary skipped: no Gemini API key" in run.stderr
