"""The main loop of `videopipe run`: find videos, claim them, hand them to trips, stop cleanly.

One pass: resume videos that a stopped runner left in `processing/` (their lock gone or
expired), then claim videos from `pending/` (in key order) until `--concurrency` trips are in
flight. Each trip (video.py) runs on a thread of its own and carries its video to the end; the
worker itself is a child process. A heartbeat thread renews every lock this runner holds, every
quarter lease. The loop sleeps until a trip ends, a signal arrives, or `--interval` passes.

`--once` ends when a pass finds nothing it can claim and nothing is in flight; each path is taken
at most once per `--once` run, so a steady stream of uploads cannot keep it alive. `--watch` goes
on until SIGTERM/SIGINT (shutdown.py), then lets the trips in flight finish for `--grace`
seconds and stops the rest, whose videos go back to `pending/`.

The runner keeps no state that matters in memory: who works on what is in the lock objects, and
where each video is, in its folder. That is why a crash loses nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

from videopipe.layout import Folder, Layout
from videopipe.localstore import LocalStore
from videopipe.reasons import Reason
from videopipe.s3 import make_client
from videopipe.store import Store, StoreError

from videopipe_runner import policy
from videopipe_runner.claims import Claims, LeaseLost
from videopipe_runner.folderclaims import FolderClaims
from videopipe_runner.policy import Outcome, Support
from videopipe_runner.settings import RunnerSettings
from videopipe_runner.shutdown import Shutdown
from videopipe_runner.status import VideoStatus
from videopipe_runner.video import Trip, TripContext

log = logging.getLogger(__name__)

ONCE_WAKE_SECONDS = 5.0  # --once: look again at least this often while trips run
WATCH_MEMORY = 1000  # --watch: outcomes kept for the summary and --report at the end

UNSAFE_STORE_WARNING = (
    "this S3 store does not honour conditional writes (If-None-Match / If-Match): "
    "the locks that keep two runners off the same video are not exclusive here. "
    "Run only ONE `videopipe run` per bucket (and prefix) on this store. "
    "(GCS's S3 interoperability is one such store; AWS S3, MinIO and moto honour them.)"
)


def open_store(settings: RunnerSettings) -> Store | LocalStore:
    """The bucket or folder, checked: raises StoreError if it is absent, denied or unreachable."""
    store: Store | LocalStore
    if isinstance(settings.uri, Path):
        store = LocalStore(settings.uri)
    else:
        client = make_client(settings.endpoint, settings.region)
        store = Store(client, settings.bucket, Layout(settings.prefix))
    store.check_bucket()
    return store


def open_claims(
    store: Store | LocalStore, settings: RunnerSettings
) -> tuple[Claims | FolderClaims, Support]:
    """Claims on this store, after probing whether its locks can be exclusive."""
    if isinstance(store, LocalStore):
        return FolderClaims(store.root, lease_seconds=settings.lease), Support.HONOURED
    claims = Claims(store, lease_seconds=settings.lease)
    support = claims.probe()
    if support is not Support.HONOURED:
        claims.conditional = False
        log.warning("WARNING: %s (probe: conditions %s)", UNSAFE_STORE_WARNING, support)
    return claims, support


class Runner:
    def __init__(
        self,
        settings: RunnerSettings,
        store: Store | LocalStore,
        claims: Claims | FolderClaims,
        ctx: TripContext,
        shutdown: Shutdown,
    ) -> None:
        self.settings, self.store, self.claims = settings, store, claims
        self.ctx, self.shutdown = ctx, shutdown
        # Every video of a --once run; the latest ones of a long --watch.
        self.finished: deque[VideoStatus] = deque(maxlen=None if settings.once else WATCH_MEMORY)
        self._futures: dict[Future[VideoStatus | None], str] = {}
        self._taken: set[str] = set()  # --once: paths already handled; always: hopeless ones
        self._elsewhere: set[str] = set()  # paths locked by other runners in the last pass
        self._beat_stop = threading.Event()
        self._pool = ThreadPoolExecutor(settings.concurrency, thread_name_prefix="video")

    # -- the loop --

    def run(self) -> list[VideoStatus]:
        beat = threading.Thread(target=self._heartbeat, name="lease-heartbeat", daemon=True)
        beat.start()
        try:
            self._sweep()
            while not self.shutdown.stopping.is_set():
                self.shutdown.wake.clear()
                self._collect()
                self._elsewhere.clear()
                try:
                    self._resume_orphans()
                    self._claim_pending()
                except StoreError as e:
                    if self.settings.once:
                        raise
                    log.warning(
                        "%s failed (%s); trying again in %.0f s",
                        e.operation,
                        e.message,
                        self.settings.interval,
                    )
                if self.settings.once and not self._futures:
                    self._tell_elsewhere()
                    break
                timeout = ONCE_WAKE_SECONDS if self.settings.once else self.settings.interval
                self.shutdown.wake.wait(timeout)
        finally:
            self._drain()
            self._beat_stop.set()
            beat.join(timeout=10)
        return list(self.finished)

    def _free_slots(self) -> int:
        return self.settings.concurrency - len(self._futures)

    def _resume_orphans(self) -> None:
        """Videos in processing/ whose runner is gone: their lock is missing or expired."""
        for obj in self.store.list_folder(Folder.PROCESSING):
            if self._free_slots() <= 0 or self.shutdown.stopping.is_set():
                return
            path = self.store.layout.path_of(obj.key, Folder.PROCESSING)
            if self._busy(path):
                continue
            holder = self.claims.inspect(path)
            if holder is not None and not holder.expired:
                self._elsewhere.add(path)  # a live runner works on it
                continue
            lease = self.claims.acquire(path)
            if lease is not None:
                self._start(Trip(self.ctx, lease, Folder.PROCESSING))

    def _claim_pending(self) -> None:
        if self._free_slots() <= 0:
            return
        for obj in self.store.list_pending():
            if self.shutdown.stopping.is_set():
                return
            path = self.store.layout.path_of(obj.key, Folder.PENDING)
            if self._busy(path):
                continue
            lease = self.claims.acquire(path)
            if lease is None:
                self._elsewhere.add(path)  # another runner's
                continue
            self._start(Trip(self.ctx, lease, Folder.PENDING))
            if self._free_slots() <= 0:
                return

    def _busy(self, path: str) -> bool:
        return path in self._taken or path in self._futures.values()

    def _start(self, trip: Trip) -> None:
        future = self._pool.submit(trip.run)
        self._futures[future] = trip.path
        future.add_done_callback(lambda _f: self.shutdown.wake.set())

    def _collect(self) -> None:
        for future in [f for f in self._futures if f.done()]:
            path = self._futures.pop(future)
            status = future.result()
            if self.settings.once:
                self._taken.add(path)
            if status is None:
                continue  # gone before we got to it (another runner finished it)
            self.finished.append(status)
            if status.outcome is Outcome.SKIPPED and status.reason == Reason.KEY_TOO_LONG:
                self._taken.add(path)  # nothing will change that: do not try every poll

    def _drain(self) -> None:
        """Let trips in flight finish within the grace period, then stop the rest."""
        if self._futures and not self.shutdown.aborting.is_set():
            log.info(
                "waiting up to %.0f s for %d video(s) in flight",
                self.settings.grace,
                len(self._futures),
            )
            deadline = time.monotonic() + self.settings.grace
            while self._futures and not self.shutdown.aborting.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                wait(list(self._futures), timeout=min(remaining, 0.5), return_when=FIRST_COMPLETED)
                self._collect()
        if self._futures:
            log.warning(
                "stopping %d worker(s); their videos go back to pending/", len(self._futures)
            )
            self.shutdown.abort()
            wait(list(self._futures))
        self._collect()
        self._pool.shutdown(wait=True)

    def _tell_elsewhere(self) -> None:
        if self._elsewhere:
            log.info(
                "left %d video(s) to other runners: their locks are live (a stopped runner's "
                "videos are taken over once its lease expires)",
                len(self._elsewhere),
            )

    # -- leases --

    def _heartbeat(self) -> None:
        period = self.claims.lease_seconds / 4
        while not self._beat_stop.wait(period):
            for lease in self.claims.held():
                try:
                    self.claims.renew(lease)
                except LeaseLost:
                    log.warning(
                        "%s: lost the lock to another runner; stopping its worker", lease.path
                    )
                except StoreError as e:
                    if time.monotonic() - lease.renewed > lease.seconds:
                        lease.lost.set()
                        log.error(
                            "%s: could not renew the lock for a whole lease (%s)", lease.path, e
                        )
                    else:
                        log.warning("%s: could not renew the lock (%s); will retry", lease.path, e)

    def _sweep(self) -> None:
        """Start-up: remove expired locks of videos that are no longer in processing/."""
        try:
            in_processing = {
                self.store.layout.path_of(o.key, Folder.PROCESSING)
                for o in self.store.list_folder(Folder.PROCESSING)
            }
            removed = self.claims.sweep(in_processing)
        except StoreError as e:
            log.warning("could not clean up stale locks: %s", e.message)
            return
        if removed:
            log.info("removed %d stale lock(s) left by stopped runners", removed)


def exit_code(statuses: list[VideoStatus], settings: RunnerSettings, shutdown: Shutdown) -> int:
    interrupted = shutdown.signal is not None
    outcomes = [s.outcome for s in statuses if s.outcome is not None]
    return policy.run_exit_code(outcomes, once=settings.once, interrupted=interrupted)


__all__ = ["UNSAFE_STORE_WARNING", "Runner", "exit_code", "open_claims", "open_store"]
