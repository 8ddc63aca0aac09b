"""Stopping in two steps: SIGTERM/SIGINT stops claiming, the grace period or a second signal
stops the workers.

`stopping` is set by the first signal: no new video is claimed, videos waiting to retry go back
to `pending/` at once, and workers already running may finish for up to `--grace` seconds.
`aborting` is set when the grace period is over, or by a second signal (an impatient Ctrl-C):
running workers get SIGTERM (then SIGKILL) and their videos go back to `pending/`, their locks
released, so nothing is lost and the next run picks them up. `wake` lets the main loop sleep
until something happens (a signal, a finished video) rather than for a fixed time.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

log = logging.getLogger(__name__)


class Shutdown:
    def __init__(self) -> None:
        self.stopping = threading.Event()
        self.aborting = threading.Event()
        self.wake = threading.Event()
        self.signal: int | None = None

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()

    def abort(self) -> None:
        self.stopping.set()
        self.aborting.set()
        self.wake.set()

    def install(self) -> None:
        """Handle SIGTERM and SIGINT (call from the main thread)."""
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.stopping.is_set():
            log.warning(
                "%s again: stopping the workers now; their videos go back to pending/", name
            )
            self.abort()
            return
        self.signal = signum
        log.warning(
            "%s: no new videos; letting the ones in flight finish (%s again to stop them now)",
            name,
            "Ctrl-C" if signum == signal.SIGINT else name,
        )
        self.stop()


__all__ = ["Shutdown"]
