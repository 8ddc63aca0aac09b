"""A finished Job becomes S3 folder moves, VideoJob status, an Event and metrics.

Order matters for crash safety: first the S3 work (move `processing/<path>` to `completed/` or
`failed/`, write `<path>.error.json`), which is idempotent; then the VideoJob status, which is
the commit point; then the Event and the metrics, which happen once per commit. A crash before
the status write repeats the S3 work harmlessly on the next pass; a crash after it changes
nothing, because a finished VideoJob is not finished again. Cancellation ends here too.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from videopipe.settle import Claim, finish, results_of, worker_fields
from videopipe.store import MoveResult, Store
from videopipe.webhooks import Outcome

from videopipe_operator import manifests, metrics, naming, notifications, phases
from videopipe_operator.constants import LABEL_VIDEOJOB, WORKER_CONTAINER, Phase, Reason
from videopipe_operator.context import Context
from videopipe_operator.specs import VideoJobView

log = logging.getLogger(__name__)
Json = dict[str, Any]


def _job_condition(job: Json, type_: str) -> Json | None:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_ and cond.get("status") == "True":
            return cond
    return None


def _last_pod(pods: Iterable[Json], job_name: str) -> Json | None:
    """The Job's most recently created pod."""
    mine = [
        p
        for p in pods
        if (p.get("metadata", {}).get("labels") or {}).get("batch.kubernetes.io/job-name")
        == job_name
        or (p.get("metadata", {}).get("labels") or {}).get("job-name") == job_name
    ]
    mine.sort(key=lambda p: p["metadata"].get("creationTimestamp") or "")
    return mine[-1] if mine else None


def pod_outcome(pod: Json | None) -> phases.PodOutcome | None:
    if pod is None:
        return None
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    for cs in statuses:
        if cs.get("name") != WORKER_CONTAINER:
            continue
        term = (cs.get("state") or {}).get("terminated") or (cs.get("lastState") or {}).get(
            "terminated"
        )
        if term:
            return phases.PodOutcome(
                exit_code=term.get("exitCode"),
                reason=term.get("reason"),
                message=term.get("message"),
                node=(pod.get("spec") or {}).get("nodeName"),
            )
    return phases.PodOutcome(exit_code=None, node=(pod.get("spec") or {}).get("nodeName"))


def observe(job: Json | None, pods: Iterable[Json], job_name: str) -> phases.Observation:
    """What Kubernetes recorded about one attempt's Job."""
    if job is None:
        return phases.Observation(job_found=False)
    failed = _job_condition(job, "Failed")
    return phases.Observation(
        job_found=True,
        complete=_job_condition(job, "Complete") is not None,
        failed=failed is not None,
        failed_reason=(failed or {}).get("reason"),
        failed_message=(failed or {}).get("message"),
        pod=pod_outcome(_last_pod(pods, job_name)),
    )


def finish_if_done(
    ctx: Context, store: Store, vj: VideoJobView, job: Json | None, pods: Iterable[Json]
) -> bool:
    """Settle a Running VideoJob whose Job has finished (or vanished); True if it did."""
    job_name = vj.job_name or naming.job_name(vj.name, vj.attempt)
    obs = observe(job, pods, job_name)
    if not obs.job_found:
        made_here = results_of(store, _claim(vj)) is not None
        obs = phases.Observation(job_found=False, results_complete=made_here)
    outcome = phases.decide(vj.effective_phase, obs)
    if outcome is None:
        return False
    settle(ctx, store, vj, outcome)
    return True


def settle(
    ctx: Context,
    store: Store,
    vj: VideoJobView,
    outcome: phases.Decision,
    *,
    only_if_found: bool = False,
) -> MoveResult:
    """Put the video in its final folder, then commit the VideoJob status, then tell people.

    `only_if_found`: when the video is in none of the folders this VideoJob may take it from,
    record nothing (a cancellation of a VideoJob that never held its video).
    """
    now = ctx.now()
    moved = _move_to_final(store, vj, outcome, now)
    if moved is MoveResult.MISSING and only_if_found:
        return moved
    results = (
        manifests.result_uris(vj, bool(vj.worker.get("summary"))) if outcome.succeeded else None
    )
    if moved is MoveResult.MISSING and outcome.reason != Reason.CANCELLED:
        outcome = phases.Decision(
            outcome.phase,
            outcome.reason,
            f"{outcome.message} (the video was not found in processing/ to move it)",
            outcome.exit_code,
            outcome.report,
        )
    patch = phases.terminal_status(vj.status, vj.generation, now, outcome, results=results)
    told = Outcome.SUCCEEDED if outcome.succeeded else Outcome.FAILED
    patch = notifications.with_notifications(vj, told, patch, now)
    written = ctx.kube.patch_videojob_status(vj.namespace, vj.name, patch)
    if written is not None and ctx.deliveries is not None:  # deliver now, not after the pass
        ctx.deliveries.offer(VideoJobView.parse(written))
    where = "completed/" if outcome.succeeded else "failed/"
    ctx.kube.post_event(
        vj.raw,
        outcome.reason,
        f"{vj.path}: {outcome.message} Video in {where}."
        if moved is not MoveResult.MISSING
        else f"{vj.path}: {outcome.message}",
        warning=not outcome.succeeded,
    )
    _record_metrics(vj, outcome, patch)
    log.info("%s/%s %s (%s)", vj.namespace, vj.name, outcome.phase.value, outcome.reason)
    return moved


def _claim(vj: VideoJobView) -> Claim:
    return Claim(vj.path, vj.identity, vj.attempt, claimant=vj.name)


def _move_to_final(
    store: Store, vj: VideoJobView, outcome: phases.Decision, now: datetime
) -> MoveResult:
    # A VideoJob cancelled before it started still has its video in pending/.
    not_started = vj.effective_phase in (Phase.PENDING, Phase.QUEUED)
    return finish(
        store,
        _claim(vj),
        succeeded=outcome.succeeded,
        reason=outcome.reason,
        message=outcome.message,
        exit_code=outcome.exit_code,
        worker=worker_fields(outcome.report),
        source=vj.source,
        job=vj.job_name,
        when=now,
        pending_etag=vj.object_etag if not_started else None,
    )


def _record_metrics(vj: VideoJobView, outcome: phases.Decision, patch: Json) -> None:
    source = metrics.source_label(vj.namespace, vj.source)
    accel = vj.accelerator.value
    outcome_label = "succeeded" if outcome.succeeded else "failed"
    metrics.VIDEOJOBS_FINISHED.labels(
        source=source, accelerator=accel, outcome=outcome_label, reason=outcome.reason
    ).inc()
    if patch.get("durationSeconds") is not None:
        metrics.PROCESSING_DURATION.labels(
            source=source, accelerator=accel, outcome=outcome_label
        ).observe(patch["durationSeconds"])
    report = outcome.report
    if outcome.succeeded and report is not None:
        if report.audio_seconds:
            metrics.AUDIO_SECONDS.labels(source=source, accelerator=accel).inc(report.audio_seconds)
        if report.realtime_factor:
            metrics.REALTIME_FACTOR.labels(source=source, accelerator=accel).observe(
                report.realtime_factor
            )


def videojob_of(job: Json) -> str | None:
    return (job.get("metadata", {}).get("labels") or {}).get(LABEL_VIDEOJOB)


__all__ = ["finish_if_done", "observe", "pod_outcome", "settle", "videojob_of"]
