"""Is kopf's watch still delivering? A liveness check that compares the watch with plain reads.

kopf learns about changes only through its watch streams, and a stream can stop delivering with
no error anywhere: the watcher task ends and is never restarted (kopf #1276), re-connecting
gives up after a few resets (#996), a watch forbidden at start never comes back (#1077), or a
middlebox stops forwarding a long-lived connection. The process looks fine, the source loops
keep polling S3, but deletions are no longer handled (finalizers hang), new VideoSources get no
loop and finished Jobs wake nobody. Only a restart helps, so `/healthz` must fail.

Silence cannot be told from an idle cluster by looking at the stream alone (kopf drops the
server's BOOKMARKs before any handler sees them). So this module compares two views of the same
objects: every source pass reads its VideoSource, VideoJobs and Jobs over plain REST (`listed`),
and kopf's event handlers report each event the watch delivered (`delivered`). A version seen
over REST that the watch has not followed with any event for that object within
`silence_seconds` means the stream is silent. An object that does not change raises no
expectation, so a quiet cluster never looks broken; and since every pass patches its
VideoSource's status, the VideoSource stream is exercised once per poll interval.

The default allowance (120 s) is above kopf's own inactivity timeout (70 s without an event or
a bookmark, then it re-connects and re-lists), so what kopf repairs itself does not restart
the pod, and far below the hours an unnoticed zombie operator used to last.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from videopipe_operator import metrics
from videopipe_operator.constants import LABEL_MANAGED_BY, MANAGER

Key = tuple[str, str, str]  # (resource plural, namespace, name)
JOBS = "jobs"


def _key(resource: str, obj: Mapping[str, Any]) -> tuple[Key, str]:
    meta = obj.get("metadata") or {}
    return (resource, meta.get("namespace", ""), meta.get("name", "")), str(
        meta.get("resourceVersion", "")
    )


def watched(resource: str, obj: Mapping[str, Any]) -> bool:
    """Whether kopf's watch sees `obj` at all: Jobs are selected by label (`kopf_settings.py`)."""
    if resource != JOBS:
        return True
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return labels.get(LABEL_MANAGED_BY) == MANAGER


class WatchAudit:
    def __init__(
        self, silence_seconds: float = 120.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.silence_seconds = silence_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._delivered: dict[Key, str] = {}  # latest version the watch delivered
        self._expected: dict[Key, tuple[str, float]] = {}  # version read over REST, since when

    # -- reporting --

    def delivered(self, resource: str, event: Mapping[str, Any]) -> None:
        """A watch event reached a kopf handler (called from the event loop: stays cheap)."""
        key, version = _key(resource, event.get("object") or {})
        metrics.WATCH_EVENTS.labels(resource=resource).inc()
        with self._lock:
            self._expected.pop(key, None)  # the stream spoke about this object since
            if event.get("type") == "DELETED":
                self._delivered.pop(key, None)
            else:
                self._delivered[key] = version

    def listed(self, resource: str, objects: Iterable[Mapping[str, Any]]) -> None:
        """Objects just read over REST: each version must reach the watch soon."""
        now = self.clock()
        with self._lock:
            for obj in objects:
                if not watched(resource, obj):
                    continue
                key, version = _key(resource, obj)
                if self._delivered.get(key) == version:
                    self._expected.pop(key, None)
                elif key not in self._expected:
                    self._expected[key] = (version, now)
                else:  # changed again meanwhile: still waiting since the first change
                    self._expected[key] = (version, self._expected[key][1])

    def has_delivered(self, resource: str, namespace: str, name: str) -> bool:
        with self._lock:
            return (resource, namespace, name) in self._delivered

    # -- judging --

    def check(self) -> str | None:
        """None while the watch keeps up; else what it has failed to deliver (for /healthz)."""
        now = self.clock()
        with self._lock:
            late = sorted(
                (since, key, version)
                for key, (version, since) in self._expected.items()
                if now - since > self.silence_seconds
            )
        if not late:
            return None
        since, (resource, namespace, name), version = late[0]
        return (
            f"silent: {len(late)} change(s) read over REST never arrived through kopf's watch; "
            f"oldest {resource} {namespace}/{name} (resourceVersion {version}) for "
            f"{now - since:.0f} s (allowed {self.silence_seconds:.0f} s)"
        )


__all__ = ["WatchAudit", "watched"]
