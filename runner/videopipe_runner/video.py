"""One video's trip, from a won lock to its final folder, on the runner's thread pool.

The order is what makes crashes harmless:

1. The lock is already ours (claims.py). Read the video again: the listing may be stale.
2. Move `pending/<path>` → `processing/<path>` with `Store.move`, which records the video's
   identity (its ETag at discovery) and the attempt number in the copy's metadata, exactly
   as the operator does; attempt = attempts already recorded + 1, so a video a user moved back
   from `failed/` continues its count.
3. Run the worker (worker.py). Exit 0 → `completed/`; 2 or 3 → `failed/` at once; anything
   else → run again after a backoff, up to `--max-attempts` runs, then `failed/`.
   `failed/<path>.error.json` says why, which attempt, and what the worker reported.
4. Check the lease is still ours, then make the final move, then release the lock. A video
   therefore leaves `processing/` only under a live lock, and a runner that lost its lease
   (it stalled longer than the lease) touches nothing.

A video found in `processing/` with no live lock was left by a crashed runner: it is resumed in
place. If its results are complete and were made from this very upload (`settle.results_of`), only
the final move was missing; otherwise the worker runs again. At shutdown a video is
given back to `pending/` unless a new upload already waits there under the same name; then it
stays in `processing/` (lock released) and the next runner resumes it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videopipe import settle, webhooks
from videopipe.layout import Folder
from videopipe.localstore import LocalStore
from videopipe.reasons import Reason
from videopipe.store import MoveResult, ObjectInfo, Store, StoreError

from videopipe_runner import policy
from videopipe_runner.claims import Claims, Lease, LeaseLost
from videopipe_runner.folderclaims import FolderClaims
from videopipe_runner.notifier import Notifier, event_data
from videopipe_runner.policy import Action, Outcome
from videopipe_runner.settings import RunnerSettings
from videopipe_runner.shutdown import Shutdown
from videopipe_runner.status import Step, VideoStatus
from videopipe_runner.worker import WorkerProcess, WorkerResult, worker_argv

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5  # how often a running worker is checked (log line, abort, lost lease)
LOG_TAIL_CHARS = 2000  # of a crashed worker's log, kept in error.json


@dataclass
class TripContext:
    """What every trip shares."""

    store: Store | LocalStore  # a bucket, or a folder on this machine
    claims: Claims | FolderClaims
    settings: RunnerSettings
    shutdown: Shutdown
    workdir: Path
    publish: Callable[[VideoStatus], None]  # the display
    notifier: Notifier | None = None  # --notify: webhooks on Started, Succeeded, Failed


class Trip:
    def __init__(self, ctx: TripContext, lease: Lease, origin: Folder) -> None:
        self.ctx, self.lease, self.origin = ctx, lease, origin
        self.path = lease.path
        self.status = VideoStatus(self.path, resumed=origin is Folder.PROCESSING)
        self.store = ctx.store
        self.identity = ""
        self.runs = 0

    def run(self) -> VideoStatus | None:
        """Carry the video to its final folder; None if it was gone (nothing to report)."""
        try:
            status = self._run()
            if status is None:
                self._set(Step.GONE)
            return status
        except LeaseLost:
            return self._end(
                Outcome.SKIPPED,
                Reason.LEASE_LOST,
                "another runner took the lock over (this one did not renew it in time); "
                "the video is left to that runner",
            )
        except StoreError as e:
            log.error("%s: %s failed: %s", self.path, e.operation, e.message)
            return self._end(Outcome.ERROR, str(e.reason), f"{e.operation}: {e.message}")
        except Exception as e:  # a bug: report it on this video, keep the runner going
            log.exception("%s: unexpected error", self.path)
            return self._end(Outcome.ERROR, Reason.INTERNAL_ERROR, f"{type(e).__name__}: {e}")
        finally:
            try:
                self.ctx.claims.release(self.lease)
            except StoreError as e:
                log.warning("%s: could not release the lock (%s); it expires", self.path, e)

    def _run(self) -> VideoStatus | None:
        self._publish()
        obj = self._take()
        if obj is None:
            return None
        if self.status.outcome is not None:
            return self.status
        if self.origin is Folder.PROCESSING and self._results_of():
            return self._finish(Action.COMPLETE, None)
        while True:
            if self.ctx.shutdown.stopping.is_set():
                return self._give_back(self.status.attempt - 1)
            result = self._run_worker(obj)
            if self.lease.lost.is_set():
                raise LeaseLost(self.path)
            if result is None:  # stopped by shutdown
                return self._give_back(self.status.attempt - 1)
            decision = policy.after_worker(
                result.exit_code,
                self.runs,
                self.ctx.settings.max_attempts,
                self.ctx.settings.backoff,
            )
            if decision.action is not Action.RETRY:
                return self._finish(decision.action, result)
            self._set(
                Step.WAITING,
                detail=f"{result.reason}; run {self.runs + 1} in {decision.delay:.0f} s",
            )
            log.warning(
                "%s: %s (exit %d): %s; retrying in %.0f s",
                self.path,
                result.reason,
                result.exit_code,
                result.message,
                decision.delay,
            )
            if self.ctx.shutdown.stopping.wait(decision.delay):
                return self._give_back(self.status.attempt)
            self.status.attempt += 1

    # -- steps --

    def _take(self) -> ObjectInfo | None:
        """Bring the video into processing/ (or find it there); None if it is gone."""
        if self.origin is Folder.PROCESSING:
            obj = self.store.head(self.store.layout.key(Folder.PROCESSING, self.path))
            if obj is None:
                return None
            self.identity, self.status.attempt = obj.identity, settle.next_attempt(obj)
            log.info("%s: resuming a video left in processing/ by a stopped runner", self.path)
            return obj
        listed = self.store.head(self.store.layout.key(Folder.PENDING, self.path))
        if listed is None:
            return None
        if not self.store.fits(self.path):
            self._end(Outcome.SKIPPED, Reason.KEY_TOO_LONG, settle.KEY_TOO_LONG_MESSAGE)
            return listed
        self.identity, self.status.attempt = listed.identity, settle.next_attempt(listed)
        self._set(Step.MOVING)
        moved = self.store.move(
            self.path,
            Folder.PENDING,
            Folder.PROCESSING,
            identity=self.identity,
            expect_etag=listed.etag,
            attempts=self.status.attempt,
        )
        if moved is MoveResult.MISSING:
            return None
        return self.store.head(self.store.layout.key(Folder.PROCESSING, self.path))

    def _results_of(self) -> bool:
        """True if results/<path>/ is complete and was made from this upload."""
        manifest = settle.results_of(self.store, self._claim())
        if manifest is None:
            return False
        self.status.audio_seconds = manifest.get("transcript", {}).get("audio_seconds")
        log.info("%s: its results are complete; only the final move was missing", self.path)
        return True

    def _claim(self) -> settle.Claim:
        return settle.Claim(self.path, self.identity, self.status.attempt)

    def _run_worker(self, obj: ObjectInfo) -> WorkerResult | None:
        """One worker run; None if it was stopped (shutdown, or the lease was lost)."""
        settings, layout = self.ctx.settings, self.store.layout
        self.runs += 1
        self.status.worker_runs = self.runs
        argv = worker_argv(
            self.store.location(obj.key),
            self.store.location(layout.results_prefix(self.path)),
            endpoint=settings.endpoint,
            region=settings.region,
            options=settings.worker_options,
        )
        stem = self.ctx.workdir / f"worker-{uuid.uuid4().hex[:12]}"
        worker = WorkerProcess(argv, stem.with_suffix(".log"), stem.with_suffix(".report"))
        self._set(Step.RUNNING, detail="starting")
        self._tell(webhooks.Outcome.STARTED)
        log.debug("%s: worker pid %d: %s", self.path, worker.pid, " ".join(argv))
        while worker.wait(POLL_SECONDS) is None:
            if self.ctx.shutdown.aborting.is_set() or self.lease.lost.is_set():
                self._set(Step.RETURNING, detail="stopping the worker")
                worker.stop()
                return None
            line = worker.last_line()
            if line and line != self.status.detail:
                self.status.detail = line
                self._publish()
        result = worker.result()
        if result.report is not None and result.report.audio_seconds is not None:
            self.status.audio_seconds = result.report.audio_seconds
        return result

    def _finish(self, action: Action, result: WorkerResult | None) -> VideoStatus:
        self.ctx.claims.renew(self.lease)  # the lease must be ours for the final move
        self._set(Step.FINISHING)
        succeeded = action is Action.COMPLETE
        assert succeeded or result is not None
        moved = settle.finish(
            self.store,
            self._claim(),
            succeeded=succeeded,
            reason=result.reason if result else "",
            message=result.message if result else "",
            exit_code=result.exit_code if result else None,
            worker=self._worker_fields(result) if result else None,
            source=str(self.ctx.settings.uri),
        )
        if moved is MoveResult.MISSING:
            return self._vanished()
        self._tell(webhooks.Outcome.SUCCEEDED if succeeded else webhooks.Outcome.FAILED, result)
        if succeeded:
            return self._end(Outcome.COMPLETED, Reason.RESUMED if result is None else "")
        assert result is not None
        return self._end(Outcome.FAILED, result.reason, result.message)

    def _give_back(self, attempts: int) -> VideoStatus:
        """Shutdown: back to pending/, not counting a run that was cut short."""
        self._set(Step.RETURNING, detail="back to pending/")
        waiting = self.store.head(self.store.layout.key(Folder.PENDING, self.path))
        if waiting is not None and waiting.identity != self.identity:
            return self._end(
                Outcome.RETURNED,
                Reason.NEW_UPLOAD_WAITING,
                "a new upload waits in pending/ under this name; this video stays in "
                "processing/ and the next run resumes it",
            )
        self.store.move(
            self.path,
            Folder.PROCESSING,
            Folder.PENDING,
            identity=self.identity,
            attempts=max(attempts, 0),
        )
        return self._end(
            Outcome.RETURNED, Reason.SHUTDOWN, "stopped before it finished; in pending/"
        )

    def _vanished(self) -> VideoStatus:
        return self._end(
            Outcome.ERROR,
            Reason.VIDEO_VANISHED,
            "the video disappeared from processing/ while it was being worked on",
        )

    def _tell(self, told: webhooks.Outcome, result: WorkerResult | None = None) -> None:
        notifier = self.ctx.notifier
        if notifier is None:
            return
        folder = {
            webhooks.Outcome.STARTED: Folder.PROCESSING,
            webhooks.Outcome.SUCCEEDED: Folder.COMPLETED,
            webhooks.Outcome.FAILED: Folder.FAILED,
        }[told]
        failed = told is webhooks.Outcome.FAILED and result is not None
        data = event_data(
            bucket=self.ctx.settings.bucket,
            key=self.store.layout.key(folder, self.path),
            path=self.path,
            attempt=self.status.attempt,
            reason=result.reason if failed and result else "",
            message=result.message if failed and result else "",
            report=result.report if result else None,
            seconds=result.seconds if result else None,
        )
        notifier.tell(
            told, path=self.path, identity=self.identity, attempt=self.status.attempt, data=data
        )

    # -- status --

    def _worker_fields(self, result: WorkerResult) -> dict[str, Any] | None:
        return settle.worker_fields(
            result.report,
            runner=self.ctx.claims.owner,
            runs=self.runs,
            exitCode=result.exit_code,
            seconds=result.seconds,
            logTail=None if result.report is not None else result.log_tail[-LOG_TAIL_CHARS:],
        )

    def _set(self, step: Step, detail: str = "") -> None:
        self.status.step, self.status.detail = step, detail
        self._publish()

    def _end(self, outcome: Outcome, reason: str = "", message: str = "") -> VideoStatus:
        self.status.finish(outcome, reason, message)
        self._publish()
        return self.status

    def _publish(self) -> None:
        self.ctx.publish(self.status)


__all__ = ["Trip", "TripContext"]
