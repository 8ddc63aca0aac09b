"""The pure decisions of the worker, tested without a GPU, a model or a server.

These are the choices that differ between a GKE GPU node and a CPU node, and the
guards and formats that every transcript goes through.
"""

from __future__ import annotations

import io
import json

import pytest
from videopipe.report import MAX_REPORT_BYTES, WorkerReport
from videopipe_worker import formats
from videopipe_worker.errors import ConfigError
from videopipe_worker.memory import keep_freed_memory
from videopipe_worker.progress import Progress
from videopipe_worker.transcribe import (
    Segment,
    Transcript,
    choose_batch_size,
    choose_compute_type,
    choose_device,
    keep_segment,
)

CUDA_TYPES = {"float16", "int8_float16", "int8", "float32", "bfloat16"}
CPU_TYPES = {"int8", "int8_float32", "float32"}


@pytest.mark.parametrize(
    ("requested", "gpus", "expected"),
    [("auto", 1, "cuda"), ("auto", 0, "cpu"), ("cpu", 2, "cpu"), ("cuda", 1, "cuda")],
)
def test_device(requested: str, gpus: int, expected: str) -> None:
    assert choose_device(requested, gpus) == expected


def test_cuda_without_a_gpu_says_what_to_check() -> None:
    with pytest.raises(ConfigError, match=r"nvidia\.com/gpu") as err:
        choose_device("cuda", 0)
    assert err.value.reason == "NoGpu"


@pytest.mark.parametrize(
    ("device", "requested", "supported", "expected"),
    [
        ("cuda", "auto", CUDA_TYPES, "float16"),
        ("cuda", "auto", {"int8_float16", "float32"}, "int8_float16"),  # no fp16 kernels
        ("cuda", "auto", {"float32"}, "float32"),  # an old GPU
        ("cpu", "auto", CPU_TYPES, "int8"),
        ("cpu", "float32", CPU_TYPES, "float32"),
        ("cuda", "int8_float16", CUDA_TYPES, "int8_float16"),
    ],
)
def test_compute_type(device: str, requested: str, supported: set[str], expected: str) -> None:
    assert choose_compute_type(device, requested, supported) == expected


def test_float16_on_cpu_is_refused_before_loading() -> None:
    with pytest.raises(ConfigError, match="not supported on cpu"):
        choose_compute_type("cpu", "float16", CPU_TYPES)


@pytest.mark.parametrize(
    ("device", "requested", "seconds", "expected"),
    [
        ("cuda", None, 3600, 16),  # long audio on a GPU: big batches
        ("cpu", None, 600, 8),  # measured 1.5x faster than sequential on 2 cores
        ("cpu", None, 30, 1),  # a short clip cannot fill a batch
        ("cuda", None, 59, 1),
        ("cuda", 1, 3600, 1),  # the user asked for sequential
        ("cpu", 4, 10, 4),
        ("cpu", 0, 600, 1),
    ],
)
def test_batch_size(device: str, requested: int | None, seconds: float, expected: int) -> None:
    assert choose_batch_size(device, requested, seconds) == expected


def segment(
    text: str,
    no_speech: float = 0.1,
    logprob: float = -0.3,
    ratio: float = 1.5,
    start: float = 0.0,
    end: float = 1.0,
) -> Segment:
    return Segment(0, start, end, text, logprob, no_speech, ratio)


@pytest.mark.parametrize(
    ("seg", "kept"),
    [
        (segment("We ship in March."), True),
        (segment("We ship in March.", no_speech=0.6, logprob=-0.35), True),  # robotic but real
        (segment("You", no_speech=0.94, logprob=-0.78), False),  # measured on silence
        (segment("[Music]"), False),
        (segment("(upbeat music) ♪"), False),
        (segment(" ... "), False),
        (segment("the the the the the the the the", ratio=3.1), False),  # a loop
        (segment("we will ship it " * 6, ratio=2.9), False),  # a phrase looping
        # A talk that returns to its sentences compresses as well, heard right (measured).
        (
            segment(
                "Please send your questions before Friday. The budget covers two engineers. "
                "Please send your questions before Friday. We agreed to publish the notes.",
                ratio=2.87,
                logprob=-0.06,
            ),
            True,
        ),
        (segment("[laughs] That was fun."), True),
    ],
)
def test_hallucination_guard(seg: Segment, kept: bool) -> None:
    assert keep_segment(seg) is kept


def transcript(*segments: Segment) -> Transcript:
    return Transcript("en", 1.0, 4000.0, 3990.0, "tiny.en", "cpu", "int8", 1, list(segments))


def test_subtitle_clock_and_monotonic_cues() -> None:
    t = transcript(
        segment("First.", start=0.0, end=1.5),
        segment("Second --> odd.", start=1.4, end=3723.4567),  # overlaps the first
    )
    srt = formats.to_srt(t)
    assert "1\n00:00:00,000 --> 00:00:01,500\nFirst.\n" in srt
    assert "2\n00:00:01,500 --> 01:02:03,457\nSecond -> odd.\n" in srt
    vtt = formats.to_vtt(t)
    assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nFirst.\n")
    assert formats.to_txt(t) == "First.\nSecond --> odd.\n"


def test_transcript_json_omits_words_unless_asked() -> None:
    data = json.loads(formats.to_json(transcript(segment("Hi."))))
    assert "words" not in data["segments"][0]
    assert data["text"] == "Hi." and data["language"] == "en"


def test_report_fits_a_termination_message() -> None:
    report = WorkerReport("failed", 3, "Corrupt", "é" * 10_000, input="s3://b/k.mp4")
    line = report.to_line()
    assert len(line.encode()) <= MAX_REPORT_BYTES
    back = WorkerReport.from_text(line)
    assert back is not None and back.reason == "Corrupt" and back.message.endswith("...")
    assert WorkerReport.from_text("panic: runtime error") is None


def test_progress_prints_one_line_per_tenth_when_not_a_terminal() -> None:
    stream = io.StringIO()
    progress = Progress("talk.mp4", 100.0, stream)
    for position in [*range(0, 100, 3), 100]:
        progress(float(position))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 10
    assert lines[0].startswith("talk.mp4: 0:12 / 1:40 ( 12%,")
    assert "x real time" in lines[-1]


def test_quiet_progress_prints_nothing() -> None:
    stream = io.StringIO()
    progress = Progress("talk.mp4", 100.0, stream, quiet=True)
    for position in (10.0, 50.0, 100.0):
        progress(position)
    assert stream.getvalue() == ""


def test_malloc_keeps_freed_memory_on_glibc() -> None:
    # The worker image and CI are Debian (glibc): glibc must accept both thresholds,
    # or the cold-start saving measured in bench/worker.py silently disappears.
    assert keep_freed_memory() is True
