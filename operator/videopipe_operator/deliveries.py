"""Webhook deliveries, run off the reconcile loop: a schedule of due tries and a bounded pool.

The state of every delivery lives in its VideoJob's status (`notifications`); this module only
runs the tries. Each reconcile pass offers its VideoJobs (`offer`), and the Pending entries not
already scheduled are scheduled at their `nextTryAt`; so after an operator restart the first pass
picks up every delivery that was still owed, with the same event and the same id. A try is one
HTTP request with a timeout, in a pool of a few threads, and its result is written back to the
entry before the next try is scheduled. A slow or dead receiver therefore costs at most one
thread per try and never a reconcile pass; no more than half the pool ever waits on one host.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from videopipe import webhooks

from videopipe_operator import metrics, notifications
from videopipe_operator.constants import Reason
from videopipe_operator.kube import Kube
from videopipe_operator.specs import VideoJobView

log = logging.getLogger(__name__)
Json = dict[str, Any]
FORGET_AFTER_SECONDS = 600.0  # how long a finished delivery is remembered (stale listings)
RETRY_SECONDS = 30.0  # after a try that could not be recorded


@dataclass(order=True)
class _Due:
    at: float
    key: tuple[str, str, str] = field(compare=True)  # (namespace, videojob, delivery id)


@dataclass
class _Task:
    namespace: str
    videojob: str
    source: str
    did: str
    entry: Json
    involved: Json  # the VideoJob as last seen, for Events


class Deliveries:
    def __init__(
        self,
        kube: Kube,
        guard: webhooks.Guard,
        policy: webhooks.DeliveryPolicy,
        workers: int = 4,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._kube, self._guard, self._policy, self._now = kube, guard, policy, now
        self._workers = max(1, workers)
        self._per_host = max(1, self._workers // 2)
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="webhook")
        self._cond = threading.Condition()
        self._due: list[_Due] = []
        self._tasks: dict[tuple[str, str, str], _Task] = {}
        self._finished: dict[tuple[str, str, str], float] = {}
        self._busy_hosts: dict[str, int] = {}
        self._busy = 0
        self._closed = False
        self._thread = threading.Thread(target=self._dispatch, name="webhook-dispatch", daemon=True)
        self._thread.start()

    def offer(self, vj: VideoJobView) -> None:
        """Schedule the VideoJob's Pending deliveries that are not scheduled yet."""
        with self._cond:
            for did, entry in notifications.pending(vj.status):
                key = (vj.namespace, vj.name, did)
                if key in self._tasks or key in self._finished:
                    continue
                self._tasks[key] = _Task(vj.namespace, vj.name, vj.source, did, entry, vj.raw)
                heapq.heappush(self._due, _Due(_epoch(entry.get("nextTryAt")), key))
            self._cond.notify()

    def close(self, wait: float = 5.0) -> None:
        """Stop scheduling; tries in flight get up to `wait` seconds (the rest stay Pending)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(wait)
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- the dispatcher thread --

    def _dispatch(self) -> None:
        with self._cond:
            while not self._closed:
                self._forget_old()
                ready = self._next_ready()
                if ready is None:
                    timeout = (self._due[0].at - time.time()) if self._due else 60.0
                    self._cond.wait(max(0.05, min(timeout, 60.0)))
                    continue
                task = self._tasks[ready]
                host = _host(task.entry.get("url", ""))
                self._busy += 1
                self._busy_hosts[host] = self._busy_hosts.get(host, 0) + 1
                self._pool.submit(self._run, ready, task, host)

    def _next_ready(self) -> tuple[str, str, str] | None:
        """The earliest due task that a free thread may take (host limit), or None."""
        if self._busy >= self._workers:
            return None
        now, skipped, found = time.time(), [], None
        while self._due and self._due[0].at <= now:
            due = heapq.heappop(self._due)
            task = self._tasks.get(due.key)
            if task is None:
                continue
            if self._busy_hosts.get(_host(task.entry.get("url", "")), 0) >= self._per_host:
                skipped.append(due)
                continue
            found = due.key
            break
        for due in skipped:
            heapq.heappush(self._due, _Due(now + 0.2, due.key))
        return found

    def _forget_old(self) -> None:
        cutoff = time.time() - FORGET_AFTER_SECONDS
        for key in [k for k, at in self._finished.items() if at < cutoff]:
            del self._finished[key]

    # -- one try, in a pool thread --

    def _run(self, key: tuple[str, str, str], task: _Task, host: str) -> None:
        try:
            patch = self._try(task)
            written = self._write(task, patch)
        except Exception:  # an API hiccup or a bug: try again later, from the same entry
            log.exception("%s/%s: webhook delivery %s failed", task.namespace, task.videojob, key)
            patch = {"nextTryAt": notifications.iso(self._now() + timedelta(seconds=RETRY_SECONDS))}
            written = True
        with self._cond:
            self._busy -= 1
            self._busy_hosts[host] -= 1
            if not self._busy_hosts[host]:
                del self._busy_hosts[host]
            state = patch.get("state")
            if not written or state in (notifications.DELIVERED, notifications.ABANDONED):
                self._tasks.pop(key, None)
                self._finished[key] = time.time()
            else:  # due again: the entry as now recorded
                task.entry = {**task.entry, **patch}
                heapq.heappush(self._due, _Due(_epoch(patch.get("nextTryAt")), key))
            self._cond.notify()

    def _try(self, task: _Task) -> Json:
        entry, now = task.entry, self._now()
        label = metrics.source_label(task.namespace, task.source)
        try:
            notification = webhooks.Notification(str(entry.get("url") or ""), self._secret(task))
        except webhooks.WebhookConfigError as e:
            attempt = webhooks.Attempt("retry", error=str(e))  # the Secret can still be fixed
        else:
            body = webhooks.encode(entry["event"])
            attempt = webhooks.post(
                notification,
                body,
                entry["event"]["id"],
                self._guard,
                timeout=self._policy.timeout_seconds,
                timestamp=int(now.timestamp()),
            )
        patch = notifications.after_try(entry, attempt, self._now(), self._policy)
        host = _host(entry.get("url", ""))
        state = patch.get("state")
        if state == notifications.DELIVERED:
            metrics.NOTIFICATIONS.labels(source=label, outcome="delivered").inc()
            created = notifications.parse_time(entry.get("createdAt")) or now
            metrics.NOTIFICATION_LATENCY.labels(source=label).observe(
                max(0.0, (self._now() - created).total_seconds())
            )
            log.info("%s/%s: webhook delivered to %s", task.namespace, task.videojob, host)
        elif state == notifications.ABANDONED:
            metrics.NOTIFICATIONS.labels(source=label, outcome="abandoned").inc()
            log.warning(
                "%s/%s: webhook to %s abandoned: %s",
                task.namespace,
                task.videojob,
                host,
                patch.get("lastError"),
            )
            self._kube.post_event(
                task.involved,
                Reason.NOTIFICATION_ABANDONED,
                f"Webhook to {host} abandoned after {patch['tries']} tries: "
                f"{patch.get('lastError')}",
                warning=True,
            )
        else:
            metrics.NOTIFICATIONS.labels(source=label, outcome="retried").inc()
            log.info(
                "%s/%s: webhook to %s failed (%s); next try at %s",
                task.namespace,
                task.videojob,
                host,
                attempt.error,
                patch.get("nextTryAt"),
            )
        return patch

    def _secret(self, task: _Task) -> str:
        ref = task.entry.get("secretRef") or {}
        name, key = ref.get("name", ""), ref.get("key", "")
        value = (self._kube.secret_data(task.namespace, name) or {}).get(key)
        if not value:
            raise webhooks.WebhookConfigError(
                f"Secret {name!r} has no key {key!r} in namespace {task.namespace}: create it "
                f"with the webhook's signing secret ({webhooks.MAKE_SECRET})"
            )
        return value

    def _write(self, task: _Task, patch: Json) -> bool:
        """Record the try on the entry; False if the VideoJob is gone (nothing left to record)."""
        written = self._kube.patch_videojob_status(
            task.namespace, task.videojob, {"notifications": {task.did: patch}}
        )
        return written is not None


def _host(url: str) -> str:
    return urlsplit(url).hostname or url


def _epoch(value: Any) -> float:
    when = notifications.parse_time(value)
    return when.timestamp() if when else time.time()


__all__ = ["Deliveries"]
