"""The VideoJob state machine, pure: (phase, observation of its Job) → outcome → status.

Pending → Queued → Running → Succeeded | Failed, and Failed/Succeeded → Pending again when a
video is moved back to `pending/` (a retry; see `specs.VideoJobView.effective_phase`). The
decision "has the Job finished, and how" reads only what Kubernetes recorded: the Job's
`Complete`/`Failed` condition and its reason, the last pod's exit code, and the worker's one-line
JSON report from the termination message (`videopipe.report`). The status builders turn a
decision into the merge patch written to the VideoJob's status subresource, so that what
`kubectl get videojobs` shows is computed in one place and unit-tested without a server.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from videopipe import settle
from videopipe.reasons import safe_reason
from videopipe.report import WorkerReport

from videopipe_operator import conditions
from videopipe_operator.constants import Condition, Phase, Reason

Json = dict[str, Any]

MAX_MESSAGE = settle.MAX_MESSAGE

# Fields of one attempt; cleared when the next attempt starts.
ATTEMPT_FIELDS = (
    "startedAt",
    "finishedAt",
    "duration",
    "durationSeconds",
    "audioSeconds",
    "language",
    "realtimeFactor",
    "results",
    "exitCode",
    "reason",
    "message",
)


@dataclass(frozen=True)
class PodOutcome:
    """The worker container's last termination, as the pod status tells it."""

    exit_code: int | None
    reason: str | None = None  # Completed, Error, OOMKilled, DeadlineExceeded...
    message: str | None = None  # the termination message (our JSON line, or a log tail)
    node: str | None = None


@dataclass(frozen=True)
class Observation:
    job_found: bool
    complete: bool = False
    failed: bool = False
    failed_reason: str | None = None  # the Job's Failed condition reason
    failed_message: str | None = None
    pod: PodOutcome | None = None
    results_complete: bool = False  # consulted only when the Job is gone


@dataclass(frozen=True)
class Decision:
    phase: Phase
    reason: str
    message: str
    exit_code: int | None = None
    report: WorkerReport | None = None

    @property
    def succeeded(self) -> bool:
        return self.phase is Phase.SUCCEEDED


_clip = settle.clip


def decide(phase: Phase, obs: Observation) -> Decision | None:
    """The outcome of a Running VideoJob, or None while its Job is still at work."""
    if phase is not Phase.RUNNING:
        return None
    pod = obs.pod
    report = WorkerReport.from_text(pod.message) if pod else None
    exit_code = pod.exit_code if pod else None
    if not obs.job_found:
        if obs.results_complete:
            return Decision(
                Phase.SUCCEEDED,
                Reason.SUCCEEDED,
                "The Job was gone before its outcome was recorded; its results are complete.",
            )
        return Decision(
            Phase.FAILED,
            Reason.JOB_LOST,
            "The Job disappeared before it finished (deleted, or expired while the operator was "
            "down). Move the video from failed/ back to pending/ to run it again.",
        )
    if obs.complete:
        return Decision(
            Phase.SUCCEEDED,
            Reason.SUCCEEDED,
            _clip(report.message if report and report.message else "Transcribed."),
            exit_code=exit_code if exit_code is not None else 0,
            report=report,
        )
    if not obs.failed:
        return None
    return Decision(
        Phase.FAILED,
        _failure_reason(obs, report, exit_code),
        _failure_message(obs, report),
        exit_code=exit_code,
        report=report,
    )


def _failure_reason(obs: Observation, report: WorkerReport | None, exit_code: int | None) -> str:
    """The shared rule (`settle.failure_reason`) with what only Kubernetes knows: a deadline
    beats everything, OOMKilled comes from the pod, and a Job out of retries says so."""
    if obs.failed_reason == Reason.DEADLINE_EXCEEDED:
        return Reason.DEADLINE_EXCEEDED
    oom = obs.pod is not None and obs.pod.reason == Reason.OOM_KILLED
    reason = settle.failure_reason(report, exit_code, platform=Reason.OOM_KILLED if oom else None)
    if reason == Reason.WORKER_FAILED and obs.failed_reason == Reason.BACKOFF_LIMIT_EXCEEDED:
        return Reason.BACKOFF_LIMIT_EXCEEDED
    return reason


def _failure_message(obs: Observation, report: WorkerReport | None) -> str:
    """The worker's message, else the Job's Failed condition with the pod's termination
    message when that is a log tail rather than a report."""
    tail = obs.pod.message if obs.pod else None
    if tail and WorkerReport.from_text(tail) is not None:
        tail = None
    return settle.failure_message(
        report,
        obs.pod.exit_code if obs.pod else None,
        platform=obs.failed_message or ("The worker failed" if tail else None),
        log_tail=tail,
    )


# -- status builders (merge patches for the status subresource) --


def iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def human_duration(seconds: float) -> str:
    """`42s`, `3m5s`, `2h1m`: what kubectl prints for a Job's duration."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def queued_status(
    status: Json, generation: int, now: datetime, *, retry: bool, message: str
) -> Json:
    """Waiting for a slot; a retry clears the previous attempt's outcome."""
    patch: Json = {
        "phase": Phase.QUEUED.value,
        "observedGeneration": generation,
        "queuedAt": iso(now),
        "reason": Reason.RETRYING.value if retry else Reason.QUEUED.value,
        "message": message,
    }
    if retry:
        patch.update({name: None for name in ATTEMPT_FIELDS if name not in patch})
        patch["jobName"] = None
    conds = status.get("conditions") or []
    if retry:
        conds = [c for c in conds if c.get("type") == Condition.STARTED]
        conds = conditions.set_condition(
            conds, Condition.STARTED, False, Reason.RETRYING, message, iso(now), generation
        )
    patch["conditions"] = conds
    return patch


def running_status(
    status: Json, generation: int, now: datetime, *, job_name: str, attempt: int
) -> Json:
    conds = [
        c
        for c in status.get("conditions") or []
        if c.get("type") not in (Condition.COMPLETE, Condition.FAILED)
    ]
    message = f"Job {job_name} created (attempt {attempt})."
    patch: Json = {name: None for name in ATTEMPT_FIELDS}
    patch.update(
        {
            "phase": Phase.RUNNING.value,
            "observedGeneration": generation,
            "jobName": job_name,
            "attempts": attempt,
            "startedAt": iso(now),
            "reason": Reason.STARTED.value,
            "message": message,
            "conditions": conditions.set_condition(
                conds, Condition.STARTED, True, Reason.STARTED, message, iso(now), generation
            ),
        }
    )
    return patch


def terminal_status(
    status: Json,
    generation: int,
    now: datetime,
    outcome: Decision,
    *,
    results: Json | None,
) -> Json:
    """Succeeded or Failed, with the worker's figures and where the results are."""
    started = status.get("startedAt")
    patch: Json = {
        "phase": outcome.phase.value,
        "observedGeneration": generation,
        "finishedAt": iso(now),
        "reason": outcome.reason,
        "message": outcome.message,
    }
    if started:
        seconds = (now - datetime.fromisoformat(started.replace("Z", "+00:00"))).total_seconds()
        patch["durationSeconds"] = round(max(0.0, seconds), 3)
        patch["duration"] = human_duration(seconds)
    if outcome.exit_code is not None:
        patch["exitCode"] = outcome.exit_code
    report = outcome.report
    if report:
        if report.audio_seconds is not None:
            patch["audioSeconds"] = report.audio_seconds
        if report.language:
            patch["language"] = report.language
        if report.realtime_factor is not None:
            patch["realtimeFactor"] = report.realtime_factor
    if outcome.succeeded and results:
        patch["results"] = results
    ok = outcome.succeeded
    conds = conditions.set_condition(
        status.get("conditions"),
        Condition.COMPLETE,
        ok,
        outcome.reason,
        outcome.message,
        iso(now),
        generation,
    )
    conds = conditions.set_condition(
        conds, Condition.FAILED, not ok, outcome.reason, outcome.message, iso(now), generation
    )
    patch["conditions"] = conds
    return patch


__all__ = [
    "Decision",
    "Observation",
    "PodOutcome",
    "decide",
    "human_duration",
    "iso",
    "queued_status",
    "running_status",
    "safe_reason",
    "terminal_status",
]
