"""In-process coordination between a source's daemon and the handlers that touch its VideoJobs.

Nothing here is state: after a restart it is empty and everything is re-read from the cluster.
It holds four conveniences:

- a lock per source, so the daemon's pass and a VideoJob's cancellation (kopf's delete handler,
  another thread) never move the same video at the same time; one operator process serves a
  source (kopf peering or `--standalone`), so a process-local lock is enough;
- a wake-up per source, so a Job that finishes, a cancelled VideoJob or an edited VideoSource
  gets a pass now instead of at the next poll;
- the invalid keys already reported, so a bad key gives one Event, not one per poll;
- when each source last listed `pending/` in full, so that a pass woken by bucket events looks
  only at the keys they name until the poll interval is up (a restart lists at once).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable

SourceKey = tuple[str, str]  # (namespace, name)


class Coordination:
    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[SourceKey, threading.RLock] = {}
        self._wakers: dict[SourceKey, threading.Event] = {}
        self._reported: dict[SourceKey, set[str]] = defaultdict(set)
        self._listed_at: dict[SourceKey, float] = {}

    def lock(self, key: SourceKey) -> threading.RLock:
        with self._guard:
            return self._locks.setdefault(key, threading.RLock())

    def _waker(self, key: SourceKey) -> threading.Event:
        with self._guard:
            return self._wakers.setdefault(key, threading.Event())

    def wake(self, key: SourceKey) -> None:
        self._waker(key).set()

    def wait(
        self,
        key: SourceKey,
        seconds: float,
        stopped: Callable[[], bool],
        step: float = 0.5,
    ) -> bool:
        """Sleep up to `seconds`, ending early on a wake-up (True) or when `stopped()` (False)."""
        waker = self._waker(key)
        deadline = time.monotonic() + seconds
        while not stopped():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if waker.wait(min(step, remaining)):
                waker.clear()
                return True
        return False

    def newly_reported(self, key: SourceKey, items: list[str]) -> list[str]:
        """The items not reported before for this source; remembers them (and forgets the rest)."""
        with self._guard:
            seen = self._reported[key]
            fresh = [i for i in items if i not in seen]
            self._reported[key] = set(items)
            return fresh

    def list_due(self, key: SourceKey, interval: float) -> bool:
        """True if the source has not listed `pending/` in full for `interval` seconds."""
        with self._guard:
            last = self._listed_at.get(key)
        return last is None or time.monotonic() - last >= interval

    def listed(self, key: SourceKey) -> None:
        with self._guard:
            self._listed_at[key] = time.monotonic()

    def forget(self, key: SourceKey) -> None:
        with self._guard:
            self._reported.pop(key, None)
            self._wakers.pop(key, None)
            self._listed_at.pop(key, None)


__all__ = ["Coordination", "SourceKey"]
