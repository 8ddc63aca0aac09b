"""Deleting an unfinished VideoJob cancels it: Job stopped, video to `failed/`, reason Cancelled.

Runs from kopf's delete handler while the finalizer holds the object, under the source's lock so
that it never races the daemon over the same video. It re-reads the VideoJob first: a finished
one (pruned by the history limits, or deleted by a user) needs nothing. A VideoJob that never
started has its video in `pending/`; it goes to `failed/` too, or the next poll would simply
create the VideoJob again. If S3 cannot be reached the handler raises a temporary error: the
finalizer keeps the VideoJob until the video is safe.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf
from videopipe.store import MoveResult, StoreError

from videopipe_operator import metrics, naming, outcomes, phases, sources
from videopipe_operator.constants import Phase, Reason
from videopipe_operator.context import Context
from videopipe_operator.specs import VideoJobView

log = logging.getLogger(__name__)
RETRY_SECONDS = 15


def cancel(ctx: Context, body: dict[str, Any]) -> None:
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    source = body.get("spec", {}).get("source", "")
    with ctx.coordination.lock((namespace, source)):
        fresh = ctx.kube.get_videojob(namespace, name)
        if fresh is None:
            return
        try:
            vj = VideoJobView.parse(fresh)
        except (KeyError, ValueError) as e:
            log.warning("%s/%s: malformed VideoJob deleted as is: %s", namespace, name, e)
            return
        if not vj.active:
            return  # finished: pruned or deleted by a user, nothing to undo
        ctx.kube.delete_job(namespace, naming.job_name(vj.name, vj.attempt))
        label = metrics.source_label(namespace, source)
        try:
            store = sources.connect(ctx.kube, ctx.clients, namespace, vj.storage, label)
            outcome = phases.Decision(
                Phase.FAILED,
                Reason.CANCELLED,
                f"The VideoJob was deleted during attempt {vj.attempt}; move the video from "
                "failed/ back to pending/ to run it again.",
            )
            moved = outcomes.settle(ctx, store, vj, outcome, only_if_found=True)
        except (StoreError, sources.SourceProblem) as e:
            raise kopf.TemporaryError(
                f"cannot move {vj.path!r} to failed/ yet: {e}", delay=RETRY_SECONDS
            ) from e
    if moved is MoveResult.MISSING:
        log.info("%s/%s deleted; its video was not in pending/ or processing/", namespace, name)
    ctx.coordination.wake((namespace, source))


__all__ = ["cancel"]
