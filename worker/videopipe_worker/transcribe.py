"""Speech to text with faster-whisper, on a GPU when there is one.

The decisions that differ between a GKE GPU node and a CPU node are small pure
functions (`choose_device`, `choose_compute_type`, `choose_batch_size`), tested
without a GPU: float16 on CUDA, int8 on CPU; the batched pipeline for audio long
enough to fill batches (measured 1.5x faster on 2 CPU cores for 10 min of speech,
and several times faster on a GPU), sequential decoding for short clips.

Whisper invents text on silence and music ("Thank you.", "You"). Guards, in order:
Silero VAD drops non-speech before decoding; decoding does not condition on its own
previous output (the usual cause of repetition loops); Whisper's no-speech,
log-probability and compression thresholds apply; and `keep_segment` drops what is
left that looks like an invention (annotations only, near-certain no-speech, loops).
"""

from __future__ import annotations

import errno
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from videopipe.reasons import Reason

from .errors import ConfigError, Retryable
from .models import check_fits_tmp, doesnt_fit_message, resolve_model

log = logging.getLogger(__name__)

DEFAULT_MODEL = "tiny.en"
BATCH_MIN_SECONDS = 60.0  # below this, VAD chunks cannot fill a batch
GPU_BATCH_SIZE = 16
CPU_BATCH_SIZE = 8
NO_SPEECH_DROP = 0.8  # with a low log-probability: almost surely not speech
LOGPROB_DROP = -0.5
COMPRESSION_DROP = 2.4  # Whisper's own threshold for repetitive output...
LOOP_REPEATS = 4  # ...dropped only when a phrase also repeats back to back this many times
LOOP_MAX_WORDS = 8  # the longest phrase looked for
ANNOTATIONS = re.compile(r"\[[^\]]*\]|\([^)]*\)|♪")  # [Music], (applause), ♪

ProgressCallback = Callable[[float], None]


@dataclass(frozen=True)
class TranscribeSettings:
    model: str = DEFAULT_MODEL
    device: str = "auto"  # auto | cpu | cuda
    compute_type: str = "auto"
    language: str | None = None  # None: detect
    beam_size: int = 5  # deterministic; beam 1 falls back to sampling
    batch_size: int | None = None  # None: decide from device and duration; 1: sequential
    word_timestamps: bool = False
    vad: bool = True
    cpu_threads: int = 0  # 0: what the container may use
    window_seconds: float = 900.0  # at a time, windows.DEFAULT_WINDOW_SECONDS; 0: all at once
    model_cache: str | None = None  # a folder of models by name (models.py); None: bundled, hub


@dataclass
class Word:
    start: float
    end: float
    word: str
    probability: float


@dataclass
class Segment:
    id: int
    start: float
    end: float
    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    words: list[Word] | None = None


@dataclass
class Transcript:
    language: str
    language_probability: float
    duration: float  # audio seconds
    duration_after_vad: float
    model: str
    device: str
    compute_type: str
    batch_size: int
    segments: list[Segment] = field(default_factory=list)
    dropped_segments: int = 0  # removed by the hallucination guards

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments).strip()


def choose_device(requested: str, cuda_devices: int) -> str:
    if requested == "auto":
        return "cuda" if cuda_devices > 0 else "cpu"
    if requested == "cuda" and cuda_devices == 0:
        raise ConfigError(
            Reason.NO_GPU,
            "--device cuda but no CUDA device is visible: check the pod's nvidia.com/gpu "
            "request and the node's driver, or use --device auto",
        )
    if requested not in {"cpu", "cuda"}:
        raise ConfigError(Reason.BAD_DEVICE, f"unknown device {requested!r}: use auto, cpu or cuda")
    return requested


def choose_compute_type(device: str, requested: str, supported: set[str]) -> str:
    """float16 on CUDA and int8 on CPU, or the best that the hardware supports."""
    if requested not in {"auto", "default"}:
        if requested not in supported:
            raise ConfigError(
                Reason.BAD_COMPUTE_TYPE,
                f"compute type {requested!r} is not supported on {device} "
                f"(supported: {', '.join(sorted(supported))})",
            )
        return requested
    preferred = ("float16", "int8_float16", "float32") if device == "cuda" else ("int8", "float32")
    return next((c for c in preferred if c in supported), "default")


def choose_batch_size(device: str, requested: int | None, audio_seconds: float) -> int:
    """1 means the sequential pipeline."""
    if requested is not None:
        return max(1, requested)
    if audio_seconds < BATCH_MIN_SECONDS:
        return 1
    return GPU_BATCH_SIZE if device == "cuda" else CPU_BATCH_SIZE


def available_cpus() -> int:
    """CPUs this process may really use: affinity and the cgroup quota (a pod's limit)."""
    count = len(os.sched_getaffinity(0))
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            count = min(count, max(1, round(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return count


def keep_segment(segment: Segment) -> bool:
    """False for text Whisper most likely invented rather than heard."""
    text = segment.text.strip()
    if not re.search(r"\w", ANNOTATIONS.sub("", text)):
        return False  # empty, punctuation, or annotations only
    if segment.no_speech_prob >= NO_SPEECH_DROP and segment.avg_logprob < LOGPROB_DROP:
        return False
    return segment.compression_ratio <= COMPRESSION_DROP or not loops(text)


def loops(text: str) -> bool:
    """True when a phrase of up to LOOP_MAX_WORDS words repeats LOOP_REPEATS times in a row.

    A high compression ratio alone is not a loop: a batched segment spans up to 30 s, and a
    talk that comes back to its sentences compresses as well (2.5-2.9 measured on espeak
    speech, heard right); dropping those lost 11 % of the words against bare faster-whisper.
    """
    words = re.findall(r"\w+", text.lower())
    for size in range(1, LOOP_MAX_WORDS + 1):
        span = size * LOOP_REPEATS
        for start in range(len(words) - span + 1):
            phrase = words[start : start + size]
            if all(
                words[start + n * size : start + (n + 1) * size] == phrase
                for n in range(1, LOOP_REPEATS)
            ):
                return True
    return False


class Transcriber:
    """A loaded model; load once, transcribe many (the benchmark reuses it)."""

    def __init__(self, settings: TranscribeSettings) -> None:
        self.settings = settings
        self.model_name = settings.model
        self.device, self.compute_type = "", ""  # decided by `load()`
        self.path: str | None = None  # decided by `resolve()`
        self.model: Any = None

    def resolve(self) -> str:
        """Where the model comes from (fast, no download): a ConfigError here, before the
        input is opened, costs no download of the video."""
        if self.path is None:
            path = resolve_model(self.settings.model, self.settings.model_cache)
            check_fits_tmp(self.settings.model, path)
            self.path = path
        return self.path

    def load(self) -> None:
        """Choose device and compute type, then load the model (slow: the pipeline
        calls this in a thread while ffmpeg works)."""
        import ctranslate2
        from faster_whisper import WhisperModel

        self.device = choose_device(self.settings.device, ctranslate2.get_cuda_device_count())
        self.compute_type = choose_compute_type(
            self.device,
            self.settings.compute_type,
            set(ctranslate2.get_supported_compute_types(self.device)),
        )
        path = self.resolve()
        threads = self.settings.cpu_threads or available_cpus()
        try:
            self.model = WhisperModel(
                path, device=self.device, compute_type=self.compute_type, cpu_threads=threads
            )
        except RuntimeError as err:
            if self.settings.device == "auto" and self.device == "cuda":
                # A broken CUDA/cuDNN install (faster-whisper #516) should not stop the job.
                log.warning("cannot use the GPU (%s); falling back to CPU", err)
                self.device, self.compute_type = "cpu", "int8"
                self.model = WhisperModel(path, device="cpu", compute_type="int8")
            else:
                raise _model_error(self.settings.model, err) from err
        except (OSError, ValueError) as err:
            if isinstance(err, OSError) and err.errno == errno.ENOSPC:
                limit = os.environ.get("VIDEOPIPE_TMP_SIZE_LIMIT", "")
                raise ConfigError(
                    Reason.MODEL_UNAVAILABLE, doesnt_fit_message(self.settings.model, limit)
                ) from err
            raise _model_error(self.settings.model, err) from err
        if self.settings.vad:
            from faster_whisper.vad import get_vad_model

            get_vad_model()  # cached by faster-whisper: loaded here, off the critical path
        log.info(
            "model %s on %s (%s, %d threads)",
            self.model_name,
            self.device,
            self.compute_type,
            threads,
        )

    def transcribe_window(
        self,
        audio: np.ndarray,
        offset: float,
        batch_size: int,
        language: str | None,
        progress: ProgressCallback | None = None,
    ) -> tuple[list[Segment], int, Any]:
        """Kept segments (times from the start of the input), how many were dropped,
        and faster-whisper's info for one window that starts `offset` seconds in."""
        if self.model is None:
            self.load()
        settings = self.settings
        options: dict[str, Any] = {
            "language": language,
            "beam_size": settings.beam_size,
            "word_timestamps": settings.word_timestamps,
            "vad_filter": settings.vad,
            "condition_on_previous_text": False,
        }
        if settings.word_timestamps:
            options["hallucination_silence_threshold"] = 2.0
        if batch_size > 1:
            from faster_whisper import BatchedInferencePipeline

            runner: Any = BatchedInferencePipeline(self.model)
            options["batch_size"] = batch_size
        else:
            runner = self.model
        try:
            segments_iter, info = runner.transcribe(audio, **options)
            kept, dropped = [], 0
            for raw in segments_iter:
                segment = _segment(raw, len(kept), offset)
                if keep_segment(segment):
                    kept.append(segment)
                else:
                    dropped += 1
                if progress:
                    progress(offset + raw.end)
        except RuntimeError as err:
            if "out of memory" in str(err).lower():
                raise Retryable(
                    Reason.OUT_OF_MEMORY, f"the model ran out of memory: {err}"
                ) from err
            raise
        return kept, dropped, info

    def transcribe(self, audio: np.ndarray, progress: ProgressCallback | None = None) -> Transcript:
        """A whole decoded array as one window."""
        if self.model is None:
            self.load()
        batch_size = choose_batch_size(self.device, self.settings.batch_size, audio.size / 16_000)
        kept, dropped, info = self.transcribe_window(
            audio, 0.0, batch_size, self.settings.language, progress
        )
        window = WindowResult.from_info(0, 0, audio.size, True, batch_size, kept, dropped, info)
        return self.assemble([window])

    def assemble(self, windows: list[WindowResult]) -> Transcript:
        """One transcript from consecutive windows, as if the input had been one."""
        segments = [
            replace(segment, id=n)
            for n, segment in enumerate(s for window in windows for s in window.segments)
        ]
        first = windows[0]
        return Transcript(
            language=first.language,
            language_probability=first.language_probability,
            duration=round(windows[-1].end / 16_000, 3),
            duration_after_vad=round(sum(w.duration_after_vad for w in windows), 3),
            model=self.model_name,
            device=self.device,
            compute_type=self.compute_type,
            batch_size=first.batch_size,
            segments=segments,
            dropped_segments=sum(w.dropped_segments for w in windows),
        )


@dataclass
class WindowResult:
    """What one window gave, in samples from the start of the input; also what a
    checkpoint stores, so it holds plain values only."""

    index: int
    start: int
    end: int
    last: bool
    batch_size: int
    language: str
    language_probability: float
    duration_after_vad: float
    segments: list[Segment]
    dropped_segments: int

    @classmethod
    def from_info(
        cls,
        index: int,
        start: int,
        end: int,
        last: bool,
        batch_size: int,
        segments: list[Segment],
        dropped: int,
        info: Any,
    ) -> WindowResult:
        return cls(
            index,
            start,
            end,
            last,
            batch_size,
            info.language,
            round(float(info.language_probability), 4),
            float(info.duration_after_vad),
            segments,
            dropped,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WindowResult:
        segments = [
            Segment(
                **{
                    **s,
                    "words": None if s.get("words") is None else [Word(**w) for w in s["words"]],
                }
            )
            for s in data["segments"]
        ]
        return cls(**{**data, "segments": segments})


def _segment(raw: Any, index: int, offset: float = 0.0) -> Segment:
    words = None
    if raw.words is not None:
        words = [
            Word(
                round(w.start + offset, 3),
                round(w.end + offset, 3),
                w.word,
                round(w.probability, 4),
            )
            for w in raw.words
        ]
    return Segment(
        id=index,
        start=round(raw.start + offset, 3),
        end=round(raw.end + offset, 3),
        text=raw.text.strip(),
        avg_logprob=round(raw.avg_logprob, 4),
        no_speech_prob=round(raw.no_speech_prob, 4),
        compression_ratio=round(raw.compression_ratio, 4),
        words=words,
    )


def _model_error(name: str, err: Exception) -> ConfigError:
    return ConfigError(
        Reason.MODEL_UNAVAILABLE,
        f"cannot load Whisper model {name!r}: {err}. Pass --model with a CTranslate2 model "
        "folder, or a model name that can be downloaded from here",
    )


__all__ = [
    "DEFAULT_MODEL",
    "Segment",
    "TranscribeSettings",
    "Transcriber",
    "Transcript",
    "WindowResult",
    "Word",
    "available_cpus",
    "choose_batch_size",
    "choose_compute_type",
    "choose_device",
    "keep_segment",
]
