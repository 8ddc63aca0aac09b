"""Webhooks of `videopipe run`: each outcome is delivered on a thread of its own.

The events are those the operator sends (`videopipe.webhooks`: the same CloudEvent, the same
signature, the same id for the same outcome of the same attempt), with the run's location as
their `source`. The runner keeps no state between runs, so a delivery is retried in process
only, for `--notify-give-up` seconds, and a run waits for the deliveries still going for up to
`--grace` seconds before it exits; what is still undelivered then is logged as lost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from videopipe import webhooks
from videopipe.layout import result_uris
from videopipe.report import WorkerReport

log = logging.getLogger(__name__)
MAX_THREADS = 4  # deliveries in flight at once


def source_uri(location: object) -> str:
    """The CloudEvents `source` of a run: its bucket URI, or its folder as a file URI."""
    return location.as_uri() if isinstance(location, Path) else str(location)


def event_data(
    *,
    bucket: str,
    key: str,
    path: str,
    attempt: int,
    reason: str = "",
    message: str = "",
    report: WorkerReport | None = None,
    seconds: float | None = None,
) -> dict[str, Any]:
    """The same fields the operator sends, from what a trip knows."""
    data: dict[str, Any] = {"key": key, "path": path, "attempt": attempt}
    if bucket:  # a folder on this machine has none
        data["bucket"] = bucket
    if reason:
        data["reason"] = reason
    if message:
        data["message"] = message
    if report is not None:
        if report.audio_seconds is not None:
            data["audioSeconds"] = report.audio_seconds
        if report.language:
            data["language"] = report.language
        if report.outcome == "succeeded" and report.results:
            base = report.results if report.results.endswith("/") else report.results + "/"
            data["results"] = result_uris(base, report.summary)
    if seconds is not None:
        data["processingSeconds"] = round(seconds, 3)
    return data


class Notifier:
    def __init__(
        self,
        notifications: tuple[webhooks.Notification, ...],
        source: str,
        guard: webhooks.Guard,
        policy: webhooks.DeliveryPolicy,
    ) -> None:
        self._notifications, self._source = notifications, source
        self._guard, self._policy = guard, policy
        self._slots = threading.Semaphore(MAX_THREADS)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.results: list[webhooks.Delivery] = []

    def tell(
        self,
        outcome: webhooks.Outcome,
        *,
        path: str,
        identity: str,
        attempt: int,
        data: Mapping[str, Any],
    ) -> None:
        """Send `outcome` to every webhook that wants it, off the caller's thread."""
        wanted = [n for n in self._notifications if n.wants(outcome)]
        if not wanted:
            return
        event = webhooks.cloud_event(
            outcome,
            source=self._source,
            path=path,
            identity=identity,
            attempt=attempt,
            data=data,
            time=datetime.now(UTC),
        )
        for notification in wanted:
            thread = threading.Thread(
                target=self._deliver, args=(notification, event), name="webhook", daemon=True
            )
            with self._lock:
                self._threads.append(thread)
            thread.start()

    def _deliver(self, notification: webhooks.Notification, event: Mapping[str, Any]) -> None:
        with self._slots:
            result = webhooks.deliver(notification, event, self._guard, self._policy)
        with self._lock:
            self.results.append(result)
        where = notification.url.split("?", 1)[0]
        if result.state is webhooks.DeliveryState.DELIVERED:
            log.info("%s: %s delivered to %s", event["subject"], event["type"], where)
        else:
            log.warning(
                "%s: webhook to %s abandoned after %d tries: %s",
                event["subject"],
                where,
                result.tries,
                result.reason or result.last.error,
            )

    def close(self, wait: float) -> int:
        """Wait up to `wait` seconds for deliveries still going; how many never ended."""
        deadline = time.monotonic() + wait
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        lost = sum(1 for t in threads if t.is_alive())
        if lost:
            log.warning("%d webhook deliveries were still being tried at exit: they are lost", lost)
        return lost


__all__ = ["Notifier", "event_data", "source_uri"]
