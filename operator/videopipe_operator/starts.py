"""Start one attempt: move the video to `processing/`, create its Job, record it.

Each step may be interrupted and repeated. The move finds its own earlier copy (identity in
the object metadata) and reports it as done; the Job has a deterministic name, so a second create
answers AlreadyExists; the status write is last, so until it lands the VideoJob still looks
startable and the next pass repeats the (now no-op) steps. The Job is created only after the
video has left `pending/`, so discovery can never see a running video as a new upload.

If the video is no longer in `pending/` as discovered (deleted, or replaced by new content before
it was claimed), the VideoJob is deleted with an Event: the new content, if any, gets its own.
"""

from __future__ import annotations

import logging
from datetime import datetime

from videopipe.layout import Folder
from videopipe.store import MoveResult, Store
from videopipe.webhooks import Outcome

from videopipe_operator import manifests, metrics, naming, notifications, phases
from videopipe_operator.constants import Phase, Reason
from videopipe_operator.context import Context
from videopipe_operator.specs import SourceSpec, VideoJobView

log = logging.getLogger(__name__)


def start(
    ctx: Context, store: Store, source: SourceSpec, vj: VideoJobView, job_exists: bool
) -> bool:
    """Start `vj`'s current attempt; False if its video is gone (and the VideoJob deleted)."""
    job_name = naming.job_name(vj.name, vj.attempt)
    created = False
    if not job_exists:
        moved = store.move(
            vj.path,
            Folder.PENDING,
            Folder.PROCESSING,
            identity=vj.identity,
            expect_etag=vj.object_etag,
            attempts=vj.attempt,
            videojob=vj.name,
        )
        if moved is MoveResult.MISSING:
            _drop(ctx, source, vj)
            return False
        created = ctx.kube.create_job(manifests.build_job(vj, ctx.config))
    now = ctx.now()
    patch = phases.running_status(
        vj.status, vj.generation, now, job_name=job_name, attempt=vj.attempt
    )
    patch = notifications.with_notifications(vj, Outcome.STARTED, patch, now)
    written = ctx.kube.patch_videojob_status(vj.namespace, vj.name, patch)
    if written is not None and ctx.deliveries is not None:  # deliver now, not after the pass
        ctx.deliveries.offer(VideoJobView.parse(written))
    ctx.kube.post_event(
        vj.raw,
        Reason.STARTED,
        f"{vj.path}: Job {job_name} created for a {vj.accelerator.value.upper()} node "
        f"(attempt {vj.attempt}).",
    )
    if created:
        _record(vj, now)
    log.info("%s/%s started Job %s", vj.namespace, vj.name, job_name)
    return True


def _record(vj: VideoJobView, now: datetime) -> None:
    source = metrics.source_label(vj.namespace, vj.source)
    metrics.JOBS_STARTED.labels(source=source, accelerator=vj.accelerator.value).inc()
    if vj.uploaded_at:
        uploaded = datetime.fromisoformat(vj.uploaded_at.replace("Z", "+00:00"))
        metrics.QUEUE_WAIT.labels(source=source, accelerator=vj.accelerator.value).observe(
            max(0.0, (now - uploaded).total_seconds())
        )


def _drop(ctx: Context, source: SourceSpec, vj: VideoJobView) -> None:
    message = (
        f"{vj.path}: the video is no longer in pending/ as discovered (removed or replaced "
        f"before it started); VideoJob {vj.name} deleted."
    )
    ctx.kube.post_event(
        manifests.source_reference(source), Reason.VIDEO_MISSING, message, warning=True
    )
    ctx.kube.delete_videojob(vj.namespace, vj.name)
    log.warning("%s/%s %s", vj.namespace, vj.name, message)


def queue(ctx: Context, vj: VideoJobView, running: int, limit: int) -> None:
    """Record that a VideoJob waits for a slot (only when that is news)."""
    if vj.phase is Phase.QUEUED and vj.observed_generation == vj.generation:
        return
    patch = phases.queued_status(
        vj.status,
        vj.generation,
        ctx.now(),
        retry=vj.attempt > 1,
        message=f"Waiting for a free slot ({running} of {limit} Jobs running).",
    )
    ctx.kube.patch_videojob_status(vj.namespace, vj.name, patch)


__all__ = ["queue", "start"]
