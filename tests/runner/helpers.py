"""Run `videopipe run` as its users do, and look at the bucket afterwards.

`run_runner` runs it to the end; `RunnerProcess` starts it in the background for tests that
race two runners or send signals. Either way it is the real command in a child process, with a
real exit code, its stdout/stderr, and the JSON written by `--report` (which lists every video
the runner took and how many worker processes it started for each). Polls have deadlines;
nothing here sleeps for a fixed time to wait for something.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tests.support.cli import GEMINI_KEYS

T = TypeVar("T")


@dataclass
class RunnerRun:
    code: int
    stdout: str
    stderr: str
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def videos(self) -> dict[str, dict[str, Any]]:
        return {v["path"]: v for v in self.report.get("videos", [])}

    def __str__(self) -> str:
        return f"exit {self.code}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"


def runner_env(env: dict[str, str] | None = None) -> dict[str, str]:
    full = {k: v for k, v in os.environ.items() if k not in GEMINI_KEYS}
    full.update(env or {})
    return full


class RunnerProcess:
    """`videopipe run` in the background; output goes to files so it can be read while it runs."""

    def __init__(self, tmp: Path, *args: str, env: dict[str, str] | None = None) -> None:
        tmp.mkdir(parents=True, exist_ok=True)
        self.report_path = tmp / "report.json"
        self.stdout_path, self.stderr_path = tmp / "stdout", tmp / "stderr"
        self.report_path.unlink(missing_ok=True)
        argv = [sys.executable, "-m", "videopipe", "run", *args, "--report", str(self.report_path)]
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=runner_env(env)
            )

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 300) -> RunnerRun:
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"videopipe run did not end in {timeout} s:\n{self.stderr}"
            ) from None
        report = json.loads(self.report_path.read_text()) if self.report_path.exists() else {}
        return RunnerRun(code, self.stdout_path.read_text(errors="replace"), self.stderr, report)


def run_runner(
    tmp: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> RunnerRun:
    return RunnerProcess(tmp, *args, env=env).wait(timeout)


def wait_for(
    what: str, check: Callable[[], T | None], timeout: float = 60, every: float = 0.1
) -> T:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def keys(s3, bucket: str, prefix: str = "") -> set[str]:
    paginator = s3.get_paginator("list_objects_v2")
    return {
        item["Key"]
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
        for item in page.get("Contents", [])
    }


def upload(s3, bucket: str, key: str, path: Path) -> None:
    s3.upload_file(str(path), bucket, key)


def read_json(s3, bucket: str, key: str) -> dict[str, Any]:
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def move_back_to_pending(s3, bucket: str, path: str) -> None:
    """What a user does to retry (`aws s3 mv`): a server-side copy keeps the metadata."""
    s3.copy_object(
        Bucket=bucket,
        Key=f"pending/{path}",
        CopySource={"Bucket": bucket, "Key": f"failed/{path}"},
    )
    s3.delete_object(Bucket=bucket, Key=f"failed/{path}")


__all__ = [
    "RunnerProcess",
    "RunnerRun",
    "keys",
    "move_back_to_pending",
    "read_json",
    "run_runner",
    "runner_env",
    "upload",
    "wait_for",
]
