"""The videopipe worker: one video in, transcript and summary out.

Stages, one module each: `storage` (local or S3 in and out), `media` (probe and
decode with ffmpeg), `transcribe` (faster-whisper), `summarize` (Gemini; the shape
of its answer in `schema`), `formats` (JSON, SRT, VTT, TXT) and `pipeline` (the
order and the manifest). `__main__` owns the command line and the exit codes.
Importing this package does not load kopf, faster-whisper, google-genai or
pydantic; the stages load them when they run.
"""

from .errors import BadInput, ConfigError, Retryable, WorkerError
from .pipeline import PipelineResult, PipelineSettings, run
from .transcribe import Transcriber, TranscribeSettings, Transcript

__all__ = [
    "BadInput",
    "ConfigError",
    "PipelineResult",
    "PipelineSettings",
    "Retryable",
    "TranscribeSettings",
    "Transcriber",
    "Transcript",
    "WorkerError",
    "run",
]
