"""One video through every stage: probe, extract, transcribe, summarise, write.

Start-up work runs side by side: the model loads in a thread while one ffmpeg
probes the input and another decodes its audio, so start-up costs the longest of
the three, not their sum (a large model on a GPU node costs no extra wall time).
Audio is transcribed window by window (windows.py), each finished window saved to
a checkpoint (checkpoint.py) that a later attempt continues from. Files are written
in a fixed order and `manifest.json` last: a reader that finds the manifest knows
every other file is complete; the checkpoint is removed after it. Each stage's wall time goes into
the manifest and the exit report; load_model, probe and extract overlap.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import videopipe

from . import formats, media, summarize
from .checkpoint import Checkpoint, checkpoint_key
from .errors import BadInput
from .progress import Progress
from .storage import InputObject, Output, S3Settings, open_input
from .transcribe import (
    Transcriber,
    TranscribeSettings,
    Transcript,
    WindowResult,
    choose_batch_size,
)
from .windows import windows as windows_of

log = logging.getLogger(__name__)

DEFAULT_MAX_DURATION = 10 * 3600.0


@dataclass(frozen=True)
class PipelineSettings:
    input: str
    output: str
    transcribe: TranscribeSettings = field(default_factory=TranscribeSettings)
    summary: bool = True
    gemini_model: str = summarize.DEFAULT_GEMINI_MODEL
    gemini_base_url: str | None = None
    gemini_api_key: str | None = None
    s3: S3Settings = field(default_factory=S3Settings)
    max_duration: float = DEFAULT_MAX_DURATION
    quiet: bool = False  # no progress lines (`-q`)


@dataclass
class PipelineResult:
    input: InputObject
    info: media.MediaInfo
    transcript: Transcript
    summary: dict[str, Any] | None
    summary_status: str  # "written", or "skipped: <why>"
    files: dict[str, str]
    timings: dict[str, float]  # per stage; model loading overlaps probe and extract
    wall_seconds: float = 0.0
    windows: int = 1  # transcribed one after another (windows.py)
    resumed_windows: int = 0  # of those, taken from an earlier attempt's checkpoint

    @property
    def audio_seconds(self) -> float:
        return self.transcript.duration

    @property
    def realtime_factor(self) -> float:
        """Audio seconds per second of the worker's whole run (higher is faster)."""
        return round(self.audio_seconds / self.wall_seconds, 2) if self.wall_seconds else 0.0


@contextlib.contextmanager
def timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = round(time.perf_counter() - started, 3)


def run(settings: PipelineSettings, transcriber: Transcriber | None = None) -> PipelineResult:
    started = time.perf_counter()
    timings: dict[str, float] = {}
    transcriber = transcriber or Transcriber(settings.transcribe)
    transcriber.resolve()  # a model the cache lacks fails before the input is opened
    window_seconds = settings.transcribe.window_seconds
    # Read-ahead: the next window decodes while this one is transcribed.
    read_ahead = max(window_seconds, 60.0) + 30.0 if window_seconds > 0 else 0.0
    with contextlib.ExitStack() as stack:
        pool = stack.enter_context(ThreadPoolExecutor(max_workers=2, thread_name_prefix="startup"))
        loading = None
        if transcriber.model is None:
            loading = pool.submit(_timed_call, timings, "load_model", transcriber.load)
        packages = pool.submit(package_versions)
        output = Output(settings.output, settings.s3)
        source = stack.enter_context(open_input(settings.input, settings.s3))
        log.info("probing and decoding %s", source.uri)
        # Both ffmpeg runs read the input at once; a refusal from the probe wins.
        decoder = stack.enter_context(media.AudioDecoder(source.source, read_ahead))
        with timed(timings, "probe"):
            info = media.probe(source.source, source.name, source.size)
            media.check_duration(info, settings.max_duration)
        if decoder.prefetch():  # all of a short input is decoded: check it before the model
            decoder.check(info)
        if loading is not None:
            loading.result()  # re-raises a model error here
        timings["startup"] = round(time.perf_counter() - started, 3)
        checkpoint = Checkpoint(
            output, checkpoint_key(source.identity, _text_settings(settings, transcriber))
        )
        with timed(timings, "transcribe"):
            try:
                windows, resumed = _transcribe_windows(
                    settings, transcriber, info, decoder, checkpoint
                )
            except BadInput:
                checkpoint.remove()  # no attempt can use it
                raise
        timings["extract"] = decoder.seconds
    transcript = transcriber.assemble(windows)
    log.info(
        "heard %.0f s of %s speech in %d segments (%d dropped as non-speech)",
        transcript.duration_after_vad,
        transcript.language,
        len(transcript.segments),
        transcript.dropped_segments,
    )
    files: dict[str, str] = {}
    with timed(timings, "write"):
        files["transcript.json"] = output.write(
            "transcript.json", formats.to_json(transcript).encode()
        )
        files["transcript.srt"] = output.write(
            "transcript.srt", formats.to_srt(transcript).encode()
        )
        files["transcript.vtt"] = output.write(
            "transcript.vtt", formats.to_vtt(transcript).encode()
        )
        files["transcript.txt"] = output.write(
            "transcript.txt", formats.to_txt(transcript).encode()
        )
    summary, skip_reason = None, _summary_skip_reason(settings, transcript)
    if skip_reason is None:
        with timed(timings, "summarize"):
            summary = summarize.summarize(
                transcript,
                api_key=settings.gemini_api_key or "",
                model=settings.gemini_model,
                base_url=settings.gemini_base_url,
            )
            files["summary.json"] = output.write(
                "summary.json", (json.dumps(summary, ensure_ascii=False, indent=2) + "\n").encode()
            )
        status = "written"
    else:
        status = f"skipped: {skip_reason}"
        log.info("summary %s", status)
    result = PipelineResult(source, info, transcript, summary, status, files, timings)
    result.windows, result.resumed_windows = len(windows), resumed
    result.wall_seconds = round(time.perf_counter() - started, 3)
    manifest = build_manifest(settings, result, output.uri, packages.result())
    files["manifest.json"] = output.write(
        "manifest.json", (json.dumps(manifest, ensure_ascii=False, indent=2) + "\n").encode()
    )
    checkpoint.remove()
    return result


def _transcribe_windows(
    settings: PipelineSettings,
    transcriber: Transcriber,
    info: media.MediaInfo,
    decoder: media.AudioDecoder,
    checkpoint: Checkpoint,
) -> tuple[list[WindowResult], int]:
    """Every window's result, the first ones from the checkpoint; and how many those were."""
    done = checkpoint.load()
    if done:
        log.info(
            "resuming: %d windows (%.0f s of audio) were transcribed by an earlier attempt",
            len(done),
            done[-1].end / media.SAMPLE_RATE,
        )
    if done and done[-1].last:
        return done, len(done)
    results = list(done)
    requested = settings.transcribe
    batch_size = done[0].batch_size if done else None
    progress: Progress | None = None
    start = done[-1].end if done else 0
    for window in windows_of(
        decoder, info, requested.window_seconds, start=start, first_index=len(done)
    ):
        seconds = window.end / media.SAMPLE_RATE
        if not window.last:  # longer than this window: the probe's figure is the best guess
            seconds = max(seconds, info.expected_audio_seconds or 0.0)
        if batch_size is None:
            batch_size = choose_batch_size(transcriber.device, requested.batch_size, seconds)
        if progress is None:
            progress = Progress(info.name, seconds, quiet=settings.quiet)
        language = requested.language or (results[0].language if results else None)
        kept, dropped, raw_info = transcriber.transcribe_window(
            window.audio, window.start / media.SAMPLE_RATE, batch_size, language, progress
        )
        result = WindowResult.from_info(
            window.index, window.start, window.end, window.last, batch_size, kept, dropped, raw_info
        )
        del window  # its audio: at most one window is held while the next one decodes
        checkpoint.save(result)
        results.append(result)
    if progress is not None:
        progress.close()
    return results, len(done)


def _text_settings(settings: PipelineSettings, transcriber: Transcriber) -> dict[str, Any]:
    """Settings that change the transcript's text or times: what a checkpoint must match."""
    text = asdict(settings.transcribe)
    del text["cpu_threads"], text["model_cache"]  # where the model is read from: same text
    text.update(device=transcriber.device, compute_type=transcriber.compute_type)
    return text


def _timed_call(timings: dict[str, float], stage: str, call: Any) -> None:
    with timed(timings, stage):
        call()


def _summary_skip_reason(settings: PipelineSettings, transcript: Transcript) -> str | None:
    if not settings.summary:
        return "disabled (--no-summary)"
    if not settings.gemini_api_key:
        return "no Gemini API key (set GEMINI_API_KEY or GOOGLE_API_KEY)"
    if not transcript.segments:
        return "no speech in the audio"
    return None


def build_manifest(
    settings: PipelineSettings, result: PipelineResult, output_uri: str, packages: dict[str, str]
) -> dict[str, Any]:
    return {
        "input": {
            "uri": result.input.uri,
            "etag": result.input.etag,
            "size": result.input.size,
            "format": result.info.format_name,
            "duration": result.info.duration,
            "audio_codec": result.info.audio_codec,
            "has_video": result.info.has_video,
        },
        "output": output_uri,
        "files": sorted(result.files),
        "transcript": {
            "language": result.transcript.language,
            "audio_seconds": result.audio_seconds,
            "speech_seconds": result.transcript.duration_after_vad,
            "segments": len(result.transcript.segments),
        },
        "model": result.transcript.model,
        "device": result.transcript.device,
        "compute_type": result.transcript.compute_type,
        "settings": {
            **asdict(settings.transcribe),
            "batch_size": result.transcript.batch_size,
            "summary": settings.summary,
            "gemini_model": settings.gemini_model if settings.summary else None,
        },
        "summary": result.summary_status,
        "windows": {"count": result.windows, "resumed": result.resumed_windows},
        "timings": result.timings,
        "wall_seconds": result.wall_seconds,
        "realtime_factor": result.realtime_factor,
        "versions": {**packages, "ffmpeg": result.info.ffmpeg_version},
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def package_versions() -> dict[str, str]:
    """Reading package metadata takes ~35 ms: done in a thread during start-up."""
    from importlib import metadata

    found = {"videopipe": videopipe.__version__}
    for package in ("faster-whisper", "ctranslate2", "google-genai"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[package] = metadata.version(package)
    return found


__all__ = ["PipelineResult", "PipelineSettings", "run"]
