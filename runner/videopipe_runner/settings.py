"""Every setting of `videopipe run` in one place, each with its default and meaning.

`__main__.py` fills this from the command line; the rest of the runner reads only this.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from videopipe.s3 import S3Uri
from videopipe.webhooks import Notification


@dataclass(frozen=True)
class RunnerSettings:
    # uri: the bucket and optional root prefix, `s3://bucket[/prefix]`, or a local folder.
    uri: S3Uri | Path
    # endpoint: S3-compatible endpoint; None: boto3's (AWS_ENDPOINT_URL, else AWS).
    endpoint: str | None = None
    # region: None: AWS_REGION, else us-east-1.
    region: str | None = None
    # once: process what is in pending/ and exit; False: watch until SIGTERM/SIGINT.
    once: bool = True
    # interval: seconds between polls of pending/ in watch mode.
    interval: float = 10.0
    # concurrency: workers running at once (each is a process with its own model).
    concurrency: int = 1
    # grace: seconds the videos in flight may finish after SIGTERM/SIGINT.
    grace: float = 60.0
    # lease: seconds a lock stays valid without renewal; renewed every quarter lease.
    lease: float = 60.0
    # max_attempts: worker runs per claim for retryable failures (exit 1).
    max_attempts: int = 3
    # backoff: seconds before the first retry, doubled for each further one.
    backoff: float = 10.0
    # worker_options: passed to every `videopipe transcribe` as they are.
    worker_options: tuple[str, ...] = field(default_factory=tuple)
    # report: write the outcome of every video as JSON to this file at the end.
    report: Path | None = None
    # notifications: webhooks told of outcomes (--notify, --notify-secret-file, --notify-events).
    notifications: tuple[Notification, ...] = ()
    # notify_give_up: seconds a webhook delivery is retried before it is abandoned.
    notify_give_up: float = 300.0

    @property
    def local(self) -> bool:
        """A folder on this machine rather than a bucket."""
        return isinstance(self.uri, Path)

    @property
    def bucket(self) -> str:
        return self.uri.bucket if isinstance(self.uri, S3Uri) else ""

    @property
    def prefix(self) -> str:
        return self.uri.key if isinstance(self.uri, S3Uri) else ""


__all__ = ["RunnerSettings"]
