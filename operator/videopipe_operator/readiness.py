"""When `/readyz` turns ready: the operator has connected and kopf has listed what it serves.

"kopf started" is not enough: its startup handlers run before any watch exists, and a watch
that is forbidden or never connects leaves an operator that looks up but serves nothing (kopf
#1077). So after startup a thread reads the served VideoSources over plain REST (connected,
with working credentials and RBAC) and waits until kopf's watch has delivered every one of them
(listed: their source loops are starting). A source deleted meanwhile simply drops out of the
next read. Readiness then stays on: a later failure is liveness's business (`health`), since a
restart, not traffic removal, is what fixes a stuck operator.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from videopipe_operator.constants import SOURCE_PLURAL
from videopipe_operator.health import Health
from videopipe_operator.watches import WatchAudit

log = logging.getLogger(__name__)
RETRY_SECONDS = 1.0


class Readiness:
    def __init__(
        self,
        list_sources: Callable[[], list[dict[str, Any]]],
        watches: WatchAudit,
        health: Health,
        retry_seconds: float = RETRY_SECONDS,
    ) -> None:
        self._list_sources = list_sources
        self._watches = watches
        self._health = health
        self._retry = retry_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> str | None:
        """None once everything served is listed by kopf; else what is still missing."""
        try:
            sources = self._list_sources()
        except Exception as e:  # unreachable API, expired token, RBAC: not connected
            return f"cannot list VideoSources over the API: {e}"
        missing = sorted(
            f"{meta.get('namespace')}/{meta.get('name')}"
            for meta in (s.get("metadata") or {} for s in sources)
            if not self._watches.has_delivered(
                SOURCE_PLURAL, meta.get("namespace", ""), meta.get("name", "")
            )
        )
        if missing:
            shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
            return f"kopf's watch has not delivered {len(missing)} VideoSource(s) yet: {shown}"
        return None

    def _run(self) -> None:
        while not self._stop.is_set():
            problem = self.check()
            if problem is None:
                self._health.mark_ready()
                log.info("ready: connected, and every served VideoSource is being watched")
                return
            self._health.waiting_for(problem)
            self._stop.wait(self._retry)

    def start(self) -> None:
        """Check in a thread until ready (the API calls block; kopf's event loop must not)."""
        self._thread = threading.Thread(target=self._run, name="readiness", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()


__all__ = ["Readiness"]
