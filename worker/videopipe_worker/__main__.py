"""`videopipe transcribe`: the worker's command line and its one exit-code policy.

`main(argv) -> int` is callable from tests. It is the only place that turns errors
into exit codes (`videopipe.report.ExitCode`: 0 done, 1 retryable, 2 configuration, 3 bad input),
prints the reason for people, and writes the one-line JSON report that the
operator reads from the pod's termination message.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback

from videopipe.reasons import Reason
from videopipe.report import ExitCode, WorkerReport
from videopipe.s3 import endpoint_from_env

from . import models
from .errors import WorkerError
from .memory import keep_freed_memory
from .pipeline import DEFAULT_MAX_DURATION, PipelineResult, PipelineSettings, run
from .storage import S3Settings
from .summarize import DEFAULT_GEMINI_MODEL, api_key_from_env
from .transcribe import DEFAULT_MODEL, TranscribeSettings
from .windows import DEFAULT_WINDOW_SECONDS, MIN_WINDOW_SECONDS

log = logging.getLogger("videopipe")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="videopipe transcribe",
        description="Transcribe one video and summarise it. INPUT is a file or s3://bucket/key; "
        "OUTPUT a folder or s3://bucket/prefix/.",
    )
    parser.add_argument("input", metavar="INPUT")
    parser.add_argument("-o", "--output", required=True, metavar="OUTPUT")
    model = parser.add_argument_group("transcription")
    model.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help="Whisper model name or CTranslate2 folder (default: %(default)s)",
    )
    model.add_argument(
        "--model-cache",
        default=os.environ.get(models.CACHE_ENV) or None,
        metavar="DIR",
        help="folder of models by name, read before the hub; with it the hub is never called "
        f"(default: ${models.CACHE_ENV}; fill it with `videopipe models pull`)",
    )
    model.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    model.add_argument("--compute-type", default="auto", help="auto: float16 on CUDA, int8 on CPU")
    model.add_argument("--language", default=None, help="language code; default: detect")
    model.add_argument("--beam-size", type=int, default=5)
    model.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="batched pipeline size; 1: sequential; default: by device and length",
    )
    model.add_argument("--word-timestamps", action="store_true")
    model.add_argument("--cpu-threads", type=int, default=0, help="0: the CPUs this pod may use")
    model.add_argument(
        "--window-seconds",
        type=_window_seconds,
        default=DEFAULT_WINDOW_SECONDS,
        help="audio transcribed at a time, cut at a pause; bounds memory and is what an "
        "interrupted attempt resumes from; 0: the whole input at once (default: %(default)s)",
    )
    model.add_argument(
        "--max-duration",
        type=float,
        default=DEFAULT_MAX_DURATION,
        help="reject longer inputs, seconds; 0: no limit (default: %(default)s)",
    )
    gemini = parser.add_argument_group("summary")
    gemini.add_argument(
        "--summary",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="summarise with Gemini (needs GEMINI_API_KEY or GOOGLE_API_KEY)",
    )
    gemini.add_argument("--gemini-model", default=DEFAULT_GEMINI_MODEL)
    gemini.add_argument(
        "--gemini-base-url",
        default=os.environ.get("VIDEOPIPE_GEMINI_BASE_URL"),
        help="Gemini API endpoint (env VIDEOPIPE_GEMINI_BASE_URL)",
    )
    s3 = parser.add_argument_group("S3")
    s3.add_argument(
        "--endpoint-url",
        default=None,
        help="S3-compatible endpoint (default: AWS_ENDPOINT_URL, else AWS)",
    )
    s3.add_argument("--region", default=None, help="default: AWS_REGION")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    return parser


def _window_seconds(text: str) -> float:
    seconds = float(text)
    if seconds != 0 and seconds < MIN_WINDOW_SECONDS:
        raise argparse.ArgumentTypeError(f"0 or at least {MIN_WINDOW_SECONDS:g} seconds")
    return seconds


def settings_from_args(args: argparse.Namespace) -> PipelineSettings:
    return PipelineSettings(
        input=args.input,
        output=args.output,
        transcribe=TranscribeSettings(
            model=args.model,
            device=args.device,
            compute_type=args.compute_type,
            language=args.language,
            beam_size=args.beam_size,
            batch_size=args.batch_size,
            word_timestamps=args.word_timestamps,
            cpu_threads=args.cpu_threads,
            window_seconds=args.window_seconds,
            model_cache=args.model_cache,
        ),
        summary=args.summary,
        gemini_model=args.gemini_model,
        gemini_base_url=args.gemini_base_url,
        gemini_api_key=api_key_from_env(),
        s3=S3Settings(endpoint=args.endpoint_url or endpoint_from_env(), region=args.region),
        max_duration=args.max_duration,
        quiet=args.quiet,
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse: --help is 0, a usage error 2
        code = int(exit_.code or 0)
        if code:
            WorkerReport("failed", ExitCode.CONFIG, Reason.USAGE, "invalid command line").write()
        return code
    # Our own progress at INFO; libraries (boto3, faster-whisper) only when they warn.
    logging.basicConfig(level=logging.WARNING, format="videopipe: %(message)s", stream=sys.stderr)
    for name in ("videopipe", "videopipe_worker"):
        logging.getLogger(name).setLevel(logging.WARNING if args.quiet else logging.INFO)
    keep_freed_memory()
    if args.model_cache:
        models.go_offline()  # before faster-whisper and huggingface_hub are imported
    report = WorkerReport("failed", ExitCode.RETRYABLE, input=args.input)
    try:
        result = run(settings_from_args(args))
    except WorkerError as err:
        report.exit_code, report.reason, report.message = (
            int(err.exit_code),
            err.reason,
            err.message,
        )
        log.error("error: %s", err.message)
    except MemoryError:
        report.reason, report.message = Reason.OUT_OF_MEMORY, "the worker ran out of memory"
        log.error("error: %s", report.message)
    except KeyboardInterrupt:
        report.reason, report.message = Reason.INTERRUPTED, "interrupted"
        log.error("interrupted")
        report.exit_code = 130
    except Exception as err:  # a bug or an unforeseen failure: retryable, with a traceback
        report.reason, report.message = Reason.INTERNAL_ERROR, f"{type(err).__name__}: {err}"
        log.error("unexpected error:\n%s", traceback.format_exc())
    else:
        report = success_report(args.input, result)
        print(
            f"{result.input.name}: {result.audio_seconds:.0f} s of {result.transcript.language} "
            f"audio in {result.wall_seconds:.1f} s ({result.realtime_factor:.1f}x real time); "
            f"summary {result.summary_status}; results in {args.output}"
        )
    report.write()
    return report.exit_code


def success_report(input_uri: str, result: PipelineResult) -> WorkerReport:
    return WorkerReport(
        outcome="succeeded",
        exit_code=ExitCode.OK,
        input=input_uri,
        results=result.files["manifest.json"].rsplit("manifest.json", 1)[0],
        audio_seconds=result.audio_seconds,
        language=result.transcript.language,
        realtime_factor=result.realtime_factor,
        model=result.transcript.model,
        device=result.transcript.device,
        summary=result.summary is not None,
        timings=result.timings,
    )


if __name__ == "__main__":
    sys.exit(main())
