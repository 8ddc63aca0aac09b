"""Run `videopipe transcribe` on one video as a child process, exactly as a pod would.

A subprocess per video, not a function call: a crash, a hung decoder or a memory leak in one
video ends with that process and cannot take the runner (or the other videos) down, and the
runner learns the outcome the same way the operator does, from the exit code and the one-line
JSON report in `$VIDEOPIPE_TERMINATION_LOG` (`videopipe.report`).

The child gets its own session, so a Ctrl-C at the terminal reaches only the runner, which then
decides whether the video in flight may finish (`--grace`). Its stdout and stderr go to a log
file: the last line is shown as the video's progress, and the tail is kept in
`failed/<path>.error.json` when the worker dies without writing a report.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from videopipe import settle
from videopipe.report import TERMINATION_LOG_ENV, WorkerReport

TAIL_BYTES = 4096
KILL_AFTER_SECONDS = 5.0


def worker_argv(
    input_uri: str,
    output_uri: str,
    *,
    endpoint: str | None = None,
    region: str | None = None,
    options: Sequence[str] = (),
) -> list[str]:
    """The worker's command line for one video (pure: the tests read it back)."""
    argv = [sys.executable, "-m", "videopipe", "transcribe", input_uri, "--output", output_uri]
    if endpoint:
        argv += ["--endpoint-url", endpoint]
    if region:
        argv += ["--region", region]
    return argv + list(options)


@dataclass
class WorkerResult:
    exit_code: int  # negative: killed by that signal
    report: WorkerReport | None
    log_tail: str
    seconds: float

    @property
    def reason(self) -> str:
        return settle.failure_reason(self.report, self.exit_code)

    @property
    def message(self) -> str:
        return settle.failure_message(self.report, self.exit_code)


class WorkerProcess:
    """One running worker; `log` and `report` are files in the runner's work folder."""

    def __init__(self, argv: Sequence[str], log: Path, report: Path) -> None:
        self.log_path, self.report_path = log, report
        report.unlink(missing_ok=True)
        env = dict(os.environ)
        env[TERMINATION_LOG_ENV] = str(report)
        env["PYTHONUNBUFFERED"] = "1"
        self.started = time.monotonic()
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait(self, timeout: float) -> int | None:
        """The exit code, or None if still running after `timeout` seconds."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, kill_after: float = KILL_AFTER_SECONDS) -> int:
        """SIGTERM, then SIGKILL if it has not ended in `kill_after` seconds."""
        for sig, wait in ((signal.SIGTERM, kill_after), (signal.SIGKILL, 30.0)):
            if self.proc.poll() is not None:
                break
            try:
                os.killpg(self.proc.pid, sig)  # the worker and anything it started (ffmpeg)
            except ProcessLookupError:
                break
            if self.wait(wait) is not None:
                break
        return self.proc.wait()

    def last_line(self) -> str:
        lines = [line for line in self.tail(512).splitlines() if line.strip()]
        return lines[-1].removeprefix("videopipe: ").strip() if lines else ""

    def tail(self, size: int = TAIL_BYTES) -> str:
        try:
            with self.log_path.open("rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - size))
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def result(self) -> WorkerResult:
        code = self.proc.wait()
        try:
            report = WorkerReport.from_text(self.report_path.read_text(encoding="utf-8"))
        except OSError:
            report = None
        return WorkerResult(code, report, self.tail(), round(time.monotonic() - self.started, 3))


__all__ = ["WorkerProcess", "WorkerResult", "worker_argv"]
