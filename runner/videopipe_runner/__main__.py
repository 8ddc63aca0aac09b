"""`videopipe run`: the command line, and the one place that turns errors into exit codes.

`main(argv) -> int` parses the options into `RunnerSettings`, checks what a run needs before
claiming anything (the worker is installed, the bucket answers, whether the store's locks can be
exclusive), chooses the display (a live table on a terminal, log lines elsewhere), runs the loop,
prints the summary and returns the exit code (policy.RunExit, documented in the README).

Worker options (`--model`, `--no-summary`, ...) are forwarded to every `videopipe transcribe`
only when given, so the worker's own defaults stay the single source of truth.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import shutil
import sys
import tempfile
from dataclasses import MISSING, fields
from pathlib import Path

from rich.console import Console
from rich.logging import RichHandler
from videopipe import webhooks
from videopipe.reasons import Reason
from videopipe.s3 import S3Uri, endpoint_from_env, is_s3_uri
from videopipe.store import StoreError

from videopipe_runner.display import Display, LiveDisplay, LogDisplay, print_summary
from videopipe_runner.notifier import Notifier, source_uri
from videopipe_runner.policy import RunExit, Support
from videopipe_runner.runner import Runner, exit_code, open_claims, open_store
from videopipe_runner.settings import RunnerSettings
from videopipe_runner.shutdown import Shutdown
from videopipe_runner.status import VideoStatus
from videopipe_runner.video import TripContext

log = logging.getLogger("videopipe_runner")
# The command line's defaults are RunnerSettings' own: one source for each.
DEFAULTS = {f.name: f.default for f in fields(RunnerSettings) if f.default is not MISSING}

# Worker options forwarded as given: (flag, argparse keyword arguments).
WORKER_OPTIONS: tuple[tuple[str, dict[str, object]], ...] = (
    ("--model", {"help": "Whisper model name or CTranslate2 folder (worker default: tiny.en)"}),
    ("--device", {"choices": ["auto", "cpu", "cuda"]}),
    ("--compute-type", {}),
    ("--language", {"help": "language code; default: detect"}),
    ("--beam-size", {"type": int}),
    ("--batch-size", {"type": int}),
    ("--cpu-threads", {"type": int, "help": "default: the CPUs shared among --concurrency"}),
    ("--max-duration", {"type": float}),
    ("--gemini-model", {}),
    ("--gemini-base-url", {}),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="videopipe run",
        description="Process the videos in an S3 bucket's pending/ folder, or a local folder's, "
        "on this machine: claim each one, run the worker on it, and move it to completed/ or "
        "failed/, exactly as the Kubernetes operator does.",
    )
    parser.add_argument(
        "uri",
        metavar="s3://BUCKET[/PREFIX] | FOLDER",
        help="a bucket, or a local folder with pending/ (the other folders are created)",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--once",
        dest="once",
        action="store_true",
        default=DEFAULTS["once"],
        help="process what is in pending/, print a summary and exit (the default)",
    )
    mode.add_argument(
        "--watch",
        dest="once",
        action="store_false",
        help="keep polling pending/ until SIGTERM or SIGINT",
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=DEFAULTS["interval"],
        metavar="SECONDS",
        help="seconds between polls with --watch (default: %(default)s)",
    )
    parser.add_argument(
        "-j",
        "--concurrency",
        type=int,
        default=DEFAULTS["concurrency"],
        metavar="N",
        help="workers at once (default: %(default)s)",
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=DEFAULTS["grace"],
        metavar="SECONDS",
        help="seconds videos in flight may finish after SIGTERM/SIGINT (default: %(default)s)",
    )
    parser.add_argument(
        "--lease",
        type=float,
        default=DEFAULTS["lease"],
        metavar="SECONDS",
        help="seconds a claim lasts without renewal; a crashed runner's videos are taken over "
        "after it (default: %(default)s)",
    )
    parser.add_argument(
        "--max-attempts",
        type=int,
        default=DEFAULTS["max_attempts"],
        metavar="N",
        help="worker runs per video for retryable failures (default: %(default)s)",
    )
    parser.add_argument(
        "--backoff",
        type=float,
        default=DEFAULTS["backoff"],
        metavar="SECONDS",
        help="seconds before the first retry, doubled for each next (default: %(default)s)",
    )
    parser.add_argument(
        "--report", type=Path, metavar="FILE", help="write every video's outcome as JSON here"
    )
    parser.add_argument(
        "--plain", action="store_true", help="log lines instead of a live table on a terminal"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    notify = parser.add_argument_group("webhooks (signed CloudEvents, as the operator sends)")
    notify.add_argument(
        "--notify",
        action="append",
        default=[],
        metavar="URL",
        help="POST each outcome to this URL (repeatable)",
    )
    notify.add_argument(
        "--notify-secret-file",
        type=Path,
        metavar="FILE",
        help="the signing secret (whsec_ and base64, Standard Webhooks) for every --notify URL",
    )
    notify.add_argument(
        "--notify-events",
        default=",".join(sorted(webhooks.DEFAULT_EVENTS)),
        metavar="LIST",
        help="comma-separated outcomes to send: Started, Succeeded, Failed (default: %(default)s)",
    )
    notify.add_argument(
        "--notify-give-up",
        type=float,
        default=DEFAULTS["notify_give_up"],
        metavar="SECONDS",
        help="retry a delivery this long, then abandon it (default: %(default)s)",
    )
    s3 = parser.add_argument_group("S3")
    s3.add_argument(
        "--endpoint",
        "--endpoint-url",
        dest="endpoint",
        metavar="URL",
        help="S3-compatible endpoint (default: AWS_ENDPOINT_URL, else AWS)",
    )
    s3.add_argument("--region", help="default: AWS_REGION")
    worker = parser.add_argument_group("worker options (passed to `videopipe transcribe`)")
    for flag, kwargs in WORKER_OPTIONS:
        worker.add_argument(flag, default=None, **kwargs)  # type: ignore[arg-type]
    worker.add_argument("--word-timestamps", action="store_true", default=None)
    worker.add_argument(
        "--summary",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="summarise with Gemini (needs GEMINI_API_KEY); worker default: on",
    )
    return parser


def worker_options(args: argparse.Namespace) -> tuple[str, ...]:
    """The worker flags the user gave; CPU threads shared among parallel workers."""
    options: list[str] = []
    for flag, _ in WORKER_OPTIONS:
        value = getattr(args, flag.lstrip("-").replace("-", "_"))
        if value is not None:
            options += [flag, str(value)]
    if args.cpu_threads is None and args.concurrency > 1:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        options += ["--cpu-threads", str(max(1, (cpus or 1) // args.concurrency))]
    if args.word_timestamps:
        options.append("--word-timestamps")
    if args.summary is not None:
        options.append("--summary" if args.summary else "--no-summary")
    return tuple(options)


def location(text: str) -> S3Uri | Path:
    """`s3://bucket[/prefix]`, or an existing local folder; ValueError otherwise."""
    if is_s3_uri(text):
        return S3Uri.parse(text)
    folder = Path(text).expanduser()
    if not folder.is_dir():
        raise ValueError(f"not an S3 URI (s3://bucket[/prefix]) nor a folder: {text!r}")
    return folder.resolve()


def settings_from_args(args: argparse.Namespace) -> RunnerSettings:
    uri = location(args.uri)
    for name in ("concurrency", "max_attempts"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("interval", "grace", "lease", "backoff"):
        if getattr(args, name) < 0:
            raise ValueError(f"--{name} must not be negative")
    return RunnerSettings(
        notifications=notifications_from_args(args),
        notify_give_up=args.notify_give_up,
        uri=uri,
        endpoint=args.endpoint or endpoint_from_env(),
        region=args.region,
        once=args.once,
        interval=args.interval,
        concurrency=args.concurrency,
        grace=args.grace,
        lease=args.lease,
        max_attempts=args.max_attempts,
        backoff=args.backoff,
        worker_options=worker_options(args),
        report=args.report,
    )


def notifications_from_args(args: argparse.Namespace) -> tuple[webhooks.Notification, ...]:
    """The --notify webhooks; ValueError (a WebhookConfigError) says what is wrong."""
    if not args.notify:
        return ()
    if args.notify_secret_file is None:
        raise ValueError(
            f"--notify needs --notify-secret-file with the signing secret; make one with: "
            f"{webhooks.MAKE_SECRET}"
        )
    try:
        secret = args.notify_secret_file.read_text().strip()
    except OSError as e:
        raise ValueError(f"--notify-secret-file: {e}") from None
    events = webhooks.parse_events(e.strip() for e in args.notify_events.split(",") if e.strip())
    guard = webhooks.Guard.from_env()
    for url in args.notify:
        try:
            guard.check(url)  # a refused URL is said now, not after the first video
        except webhooks.Refused as e:
            raise ValueError(f"--notify {url}: {e}") from None
        except webhooks.Unresolved as e:  # the name may resolve later: say so, go on
            log.warning("--notify %s: %s", url, e)
    return tuple(webhooks.Notification(url, secret, events) for url in args.notify)


def setup_logging(console: Console, live: bool, quiet: bool) -> None:
    level = logging.WARNING if quiet else logging.INFO
    if live:
        handler: logging.Handler = RichHandler(
            console=console, show_path=False, show_level=False, markup=False
        )
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            logging.Formatter("%(asctime)s videopipe run: %(message)s", "%H:%M:%S")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    for name in ("videopipe", "videopipe_runner"):
        logging.getLogger(name).setLevel(level)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    try:
        settings = settings_from_args(args)
    except ValueError as e:
        print(f"videopipe run: {e}", file=sys.stderr)
        return RunExit.CONFIG
    err = Console(stderr=True)
    live = err.is_terminal and not args.plain
    setup_logging(err, live, args.quiet)
    if importlib.util.find_spec("videopipe_worker") is None or not _worker_deps():
        log.error("videopipe run needs the worker: pip install 'videopipe[runner]'")
        return RunExit.CONFIG
    shutdown = Shutdown()
    shutdown.install()  # from here on a signal is a clean stop, never a traceback
    try:
        store = open_store(settings)
        claims, support = open_claims(store, settings)
    except StoreError as e:
        log.error("%s: %s", settings.uri, e.message)
        config = {Reason.BUCKET_NOT_FOUND, Reason.ACCESS_DENIED}
        return RunExit.CONFIG if e.reason in config else RunExit.NOT_ALL_DONE
    title = (
        f"videopipe run {settings.uri} · {'once' if settings.once else 'watching'} · "
        f"{settings.concurrency} at a time"
    )
    display: Display = LiveDisplay(err, title) if live else LogDisplay()
    if not live:
        log.info("%s; runner %s", title, claims.owner)
    workdir = Path(tempfile.mkdtemp(prefix="videopipe-run-"))
    notifier = (
        Notifier(
            settings.notifications,
            source_uri(settings.uri),
            webhooks.Guard.from_env(),
            webhooks.DeliveryPolicy(give_up_after_seconds=settings.notify_give_up),
        )
        if settings.notifications
        else None
    )
    ctx = TripContext(store, claims, settings, shutdown, workdir, display.update, notifier)
    display.start()
    statuses: list[VideoStatus] = []
    failure: StoreError | None = None
    try:
        statuses = Runner(settings, store, claims, ctx, shutdown).run()
    except StoreError as e:
        failure = e
    finally:
        display.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    if notifier is not None:
        notifier.close(settings.grace)
    print_summary(statuses, Console(width=None if sys.stdout.isatty() else 120))
    code = exit_code(statuses, settings, shutdown)
    if failure is not None:
        log.error("%s failed: %s", failure.operation, failure.message)
        code = max(code, RunExit.NOT_ALL_DONE)
    if settings.report is not None:
        write_report(settings, claims.owner, support, statuses, code)
    return code


def write_report(
    settings: RunnerSettings,
    owner: str,
    support: Support,
    statuses: list[VideoStatus],
    code: int,
) -> None:
    report = {
        "source": str(settings.uri),
        "runner": owner,
        "conditionalWrites": str(support),
        "exitCode": code,
        "videos": [s.to_json() for s in statuses],
    }
    settings.report.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")  # type: ignore[union-attr]


def _worker_deps() -> bool:
    return importlib.util.find_spec("faster_whisper") is not None


if __name__ == "__main__":
    sys.exit(main())
