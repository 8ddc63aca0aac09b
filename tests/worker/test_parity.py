"""No words lost against bare faster-whisper: same audio in, same words out.

The worker streams audio from ffmpeg; faster-whisper's `decode_audio` reads the file with PyAV.
They must hand the model the same samples. The loud clip here makes AAC overshoot 1.0, the case
where float32 output from ffmpeg (the worker's old path) and `decode_audio` (which clips at
16 bits) disagreed and transcripts differed by a few words (docs/architecture.md, "Measured
facts"). The bare side is faster-whisper called directly, with the worker's options.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import jiwer
import numpy as np
import pytest
from videopipe_worker.media import SAMPLE_RATE, AudioDecoder
from videopipe_worker.transcribe import TranscribeSettings, available_cpus

from tests.support import media
from tests.support.cli import run_transcribe
from tests.worker.conftest import TALK_TEXT
from tests.worker.test_speech import NORMALIZE

ONE_LSB = 1 / 32768  # Debian's libswresample and PyAV's bundled one round a few samples apart
BATCH = 8


@pytest.fixture(scope="module")
def loud_talk(media_dir: Path) -> Path:
    """Speech 6 dB louder than espeak's default: the AAC decode peaks above full scale."""
    wav = media.speak(TALK_TEXT, media_dir / "loud.wav")
    louder = media_dir / "loud-6db.wav"
    media.run("ffmpeg", "-v", "error", "-y", "-i", str(wav), "-af", "volume=6dB", str(louder))
    return media.video_with_audio(louder, media_dir / "loud talk.mp4")


def _ffmpeg_float32(path: Path) -> np.ndarray:
    """The worker's old decode: ffmpeg's float32 output, unclipped."""
    source = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0"]
    output = ["-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "f32le", "pipe:"]
    done = subprocess.run([*source, *output], check=True, capture_output=True)
    return np.frombuffer(done.stdout, dtype=np.float32)


def _worker_audio(path: Path) -> np.ndarray:
    with AudioDecoder(str(path)) as decoder:
        return decoder.read(10**9)


def test_the_clip_overshoots_full_scale(loud_talk: Path) -> None:
    """The case the next test is about: float32 decoding keeps peaks above 1.0."""
    assert np.abs(_ffmpeg_float32(loud_talk)).max() > 1.0


def test_worker_audio_is_faster_whispers_audio(loud_talk: Path) -> None:
    from faster_whisper import decode_audio

    bare = decode_audio(str(loud_talk))
    ours = _worker_audio(loud_talk)
    assert ours.dtype == np.float32
    assert ours.size == bare.size
    assert np.abs(ours).max() <= 1.0
    assert np.abs(ours - bare).max() <= ONE_LSB + 1e-9
    # Nearly every sample is bit-identical; only resampler rounding may differ.
    assert np.count_nonzero(ours != bare) < ours.size // 1000


def _words(text: str) -> list[str]:
    return NORMALIZE(text)[0]


def test_worker_transcript_has_the_words_of_bare_faster_whisper(
    loud_talk: Path, tmp_path: Path
) -> None:
    """On the same samples, the worker's words, with its segment filter, equal a direct batched
    call's; on decode_audio's samples (one LSB apart, previous test) they stay within a word or
    two: a rounding difference between two libswresample builds can flip a word of tiny.en
    (seen with PyAV 18.1: 1 word of 37 differed)."""
    from faster_whisper import BatchedInferencePipeline, WhisperModel, decode_audio
    from videopipe_worker.models import resolve_model

    settings = TranscribeSettings()
    model = WhisperModel(
        resolve_model(settings.model),
        device="cpu",
        compute_type="int8",
        cpu_threads=available_cpus(),
    )

    def bare(audio: np.ndarray) -> str:
        segments, _ = BatchedInferencePipeline(model).transcribe(
            audio,
            batch_size=BATCH,
            beam_size=settings.beam_size,
            vad_filter=True,
            condition_on_previous_text=False,
        )
        return " ".join(s.text for s in segments)

    run = run_transcribe(
        str(loud_talk), "--output", str(tmp_path), "--batch-size", str(BATCH), "--device", "cpu"
    )
    assert run.code == 0, run
    ours = json.loads((tmp_path / "transcript.json").read_text())["text"]
    assert _words(ours) == _words(bare(_worker_audio(loud_talk)))
    assert (
        jiwer.wer(" ".join(_words(bare(decode_audio(str(loud_talk))))), " ".join(_words(ours)))
        < 0.06
    )
