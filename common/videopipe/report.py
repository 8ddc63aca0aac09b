"""The worker's exit report: exit codes and the one-line JSON termination message.

This is the contract between the worker and whoever runs it (docs/architecture.md, "The worker
report"). The worker writes the report to `$VIDEOPIPE_TERMINATION_LOG` (a pod's
`/dev/termination-log`); the operator reads it back from the pod status, and `videopipe run`
from the file. Kubernetes keeps at most 4096 bytes of a termination message, so the line is kept
under that by shortening the free-text message.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

TERMINATION_LOG_ENV = "VIDEOPIPE_TERMINATION_LOG"
MAX_REPORT_BYTES = 4096


class ExitCode(IntEnum):
    OK = 0
    RETRYABLE = 1  # anything else: a retry may fix it (S3 hiccup, OOM, Gemini outage)
    CONFIG = 2  # usage or configuration error: fix the settings, then retry
    BAD_INPUT = 3  # not a video, no audio stream, corrupt, too long: no retry can fix it


@dataclass
class WorkerReport:
    """What one worker run did, small enough for a termination message."""

    outcome: str  # "succeeded" or "failed"
    exit_code: int
    reason: str = ""  # CamelCase, bounded set: NoAudioStream, NotMedia, ...
    message: str = ""  # for people: what is wrong and how to fix it
    input: str = ""
    results: str = ""
    audio_seconds: float | None = None
    language: str | None = None
    realtime_factor: float | None = None
    model: str | None = None
    device: str | None = None
    summary: bool = False
    timings: dict[str, float] = field(default_factory=dict)

    def to_line(self) -> str:
        data = {k: v for k, v in asdict(self).items() if v not in (None, "", {})}
        line = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        overflow = len(line.encode()) - MAX_REPORT_BYTES
        if overflow > 0:
            data["message"] = _shorten(self.message, overflow + 8)
            line = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        return line

    @classmethod
    def from_text(cls, text: str | None) -> WorkerReport | None:
        """Parse a termination message; None when it is absent or not ours."""
        if not text:
            return None
        try:
            data: Any = json.loads(text.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return None
        if not isinstance(data, dict) or "outcome" not in data or "exit_code" not in data:
            return None
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def write(self, path: str | os.PathLike[str] | None = None) -> None:
        """Write to `path`, or to `$VIDEOPIPE_TERMINATION_LOG` when set; never raises."""
        target = path or os.environ.get(TERMINATION_LOG_ENV)
        if not target:
            return
        with contextlib.suppress(OSError):  # a report must never turn success into failure
            Path(target).write_text(self.to_line() + "\n", encoding="utf-8")


def _shorten(text: str, drop_bytes: int) -> str:
    encoded = text.encode()
    keep = max(0, len(encoded) - drop_bytes - 3)
    return encoded[:keep].decode(errors="ignore") + "..."


__all__ = ["MAX_REPORT_BYTES", "TERMINATION_LOG_ENV", "ExitCode", "WorkerReport"]
