"""What the runner knows about one video: its state now, and how it ended.

One `VideoStatus` per claimed video, written by the thread that carries the video and read
by the display and the summary. States before the end say where the video is in its trip;
the last state is an `Outcome` (policy.py), which is also what the summary table and
`--report` show.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from videopipe_runner.policy import Outcome


class Step(StrEnum):
    CLAIMED = "claimed"  # lock won, video still in pending/ (or processing/ when resumed)
    MOVING = "moving"  # pending/ → processing/
    RUNNING = "running"  # the worker is running
    WAITING = "waiting"  # a retryable failure: backing off before the next run
    FINISHING = "finishing"  # moving to completed/ or failed/
    RETURNING = "returning"  # shutting down: stopping the worker, back to pending/
    GONE = "gone"  # not there any more once claimed (another runner finished it): not reported


@dataclass
class VideoStatus:
    path: str
    step: Step = Step.CLAIMED
    outcome: Outcome | None = None
    attempt: int = 0  # attempt number across runs (recorded on the object), 1-based
    worker_runs: int = 0  # worker processes this runner started for the video
    resumed: bool = False  # taken from processing/ (a crashed runner's), not from pending/
    reason: str = ""
    message: str = ""
    detail: str = ""  # the worker's last log line, or why we wait
    audio_seconds: float | None = None
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None

    @property
    def done(self) -> bool:
        return self.outcome is not None

    @property
    def label(self) -> str:
        """The state as shown: the outcome once there is one."""
        return str(self.outcome) if self.outcome is not None else str(self.step)

    @property
    def wall_seconds(self) -> float:
        return round((self.ended or time.monotonic()) - self.started, 3)

    def finish(self, outcome: Outcome, reason: str = "", message: str = "") -> VideoStatus:
        self.outcome, self.reason, self.message = outcome, reason, message
        self.detail = ""
        self.ended = time.monotonic()
        return self

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "outcome": str(self.outcome) if self.outcome else None,
            "reason": self.reason,
            "message": self.message,
            "attempt": self.attempt,
            "workerRuns": self.worker_runs,
            "resumed": self.resumed,
            "audioSeconds": self.audio_seconds,
            "wallSeconds": self.wall_seconds,
        }


__all__ = ["Step", "VideoStatus"]
