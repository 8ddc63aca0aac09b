"""Progress on stderr: position / duration and speed, so a long video is not silent.

On a terminal the line is redrawn in place; in a pod's log (not a terminal) one line
per 10 % keeps `kubectl logs` readable.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

MIN_SECONDS = 30.0  # shorter inputs finish before progress would help


class Progress:
    def __init__(
        self, name: str, duration: float, stream: TextIO | None = None, *, quiet: bool = False
    ) -> None:
        self.name = name
        self.duration = max(duration, 1e-6)
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty()
        self.enabled = duration >= MIN_SECONDS and not quiet
        self.started = time.monotonic()
        self._last_decile = 0

    def __call__(self, position: float) -> None:
        if not self.enabled:
            return
        share = min(position / self.duration, 1.0)
        elapsed = max(time.monotonic() - self.started, 1e-6)
        line = (
            f"{self.name}: {_clock(position)} / {_clock(self.duration)} "
            f"({share:4.0%}, {position / elapsed:.1f}x real time)"
        )
        if self.interactive:
            self.stream.write(f"\r{line}\x1b[K")
            self.stream.flush()
            return
        decile = int(share * 10)
        if decile > self._last_decile:
            self._last_decile = decile
            self.stream.write(line + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.interactive:
            self.stream.write("\n")
            self.stream.flush()


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


__all__ = ["Progress"]
