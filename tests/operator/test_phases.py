"""The VideoJob state machine: Job conditions, exit codes and worker reports → outcome → status."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from videopipe.report import WorkerReport
from videopipe_operator.constants import Condition, Phase, Reason
from videopipe_operator.phases import (
    Decision,
    Observation,
    PodOutcome,
    decide,
    human_duration,
    queued_status,
    running_status,
    safe_reason,
    terminal_status,
)

NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)


def report_line(**fields) -> str:
    base = {"outcome": "failed", "exit_code": 3}
    base.update(fields)
    return WorkerReport(**base).to_line()


OK_REPORT = WorkerReport(
    outcome="succeeded", exit_code=0, audio_seconds=61.2, language="en", realtime_factor=28.5
).to_line()


@pytest.mark.parametrize(
    ("obs", "phase", "reason"),
    [
        # still running: no decision
        (Observation(job_found=True), None, None),
        # complete
        (
            Observation(job_found=True, complete=True, pod=PodOutcome(0, "Completed", OK_REPORT)),
            Phase.SUCCEEDED,
            Reason.SUCCEEDED,
        ),
        # bad input: the worker's own reason wins
        (
            Observation(
                job_found=True,
                failed=True,
                failed_reason="PodFailurePolicy",
                pod=PodOutcome(3, "Error", report_line(reason="NoAudioStream", message="no audio")),
            ),
            Phase.FAILED,
            "NoAudioStream",
        ),
        # exit 3 without a report (crashed before writing it)
        (
            Observation(
                job_found=True, failed=True, failed_reason="PodFailurePolicy", pod=PodOutcome(3)
            ),
            Phase.FAILED,
            Reason.BAD_INPUT,
        ),
        (
            Observation(
                job_found=True, failed=True, failed_reason="PodFailurePolicy", pod=PodOutcome(2)
            ),
            Phase.FAILED,
            Reason.CONFIG_ERROR,
        ),
        # retries exhausted
        (
            Observation(
                job_found=True,
                failed=True,
                failed_reason="BackoffLimitExceeded",
                pod=PodOutcome(1, "Error", "Traceback ... boom"),
            ),
            Phase.FAILED,
            Reason.BACKOFF_LIMIT_EXCEEDED,
        ),
        (
            Observation(
                job_found=True,
                failed=True,
                failed_reason="BackoffLimitExceeded",
                pod=PodOutcome(137, "OOMKilled"),
            ),
            Phase.FAILED,
            Reason.OOM_KILLED,
        ),
        # deadline beats whatever the pod said
        (
            Observation(
                job_found=True,
                failed=True,
                failed_reason="DeadlineExceeded",
                pod=PodOutcome(1, "Error", report_line(exit_code=1, reason="S3Error")),
            ),
            Phase.FAILED,
            Reason.DEADLINE_EXCEEDED,
        ),
        # a reason that is not a CamelCase word never reaches a label
        (
            Observation(
                job_found=True,
                failed=True,
                pod=PodOutcome(1, "Error", report_line(exit_code=1, reason="oops: {weird}")),
            ),
            Phase.FAILED,
            Reason.WORKER_FAILED,
        ),
        # Job vanished: results decide
        (Observation(job_found=False, results_complete=True), Phase.SUCCEEDED, Reason.SUCCEEDED),
        (Observation(job_found=False), Phase.FAILED, Reason.JOB_LOST),
    ],
)
def test_decide(obs: Observation, phase: Phase | None, reason: str | None) -> None:
    outcome = decide(Phase.RUNNING, obs)
    if phase is None:
        assert outcome is None
    else:
        assert outcome is not None
        assert (outcome.phase, outcome.reason) == (phase, reason)


@pytest.mark.parametrize("phase", [Phase.PENDING, Phase.QUEUED, Phase.SUCCEEDED, Phase.FAILED])
def test_decide_only_moves_running_videojobs(phase: Phase) -> None:
    assert decide(phase, Observation(job_found=True, complete=True)) is None


def test_failure_message_prefers_the_worker_report_then_the_log_tail() -> None:
    with_report = Observation(
        job_found=True,
        failed=True,
        pod=PodOutcome(3, "Error", report_line(reason="NotMedia", message="not a video file")),
    )
    assert decide(Phase.RUNNING, with_report).message == "not a video file"
    with_log = Observation(
        job_found=True,
        failed=True,
        failed_message="Job has reached the specified backoff limit",
        pod=PodOutcome(1, "Error", "ImportError: no module named x"),
    )
    message = decide(Phase.RUNNING, with_log).message
    assert "backoff limit" in message and "ImportError" in message


def test_long_messages_are_clipped() -> None:
    obs = Observation(job_found=True, failed=True, pod=PodOutcome(1, "Error", "x" * 10_000))
    assert len(decide(Phase.RUNNING, obs).message) <= 1024


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("NoAudioStream", True),
        ("S3Error", True),
        ("lower", False),
        ("Has Space", False),
        ("", False),
    ],
)
def test_safe_reason(text: str, ok: bool) -> None:
    assert (safe_reason(text) == text) is ok


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (42.4, "42s"), (185, "3m5s"), (7260, "2h1m")]
)
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_running_then_terminal_status() -> None:
    running = running_status({}, 1, NOW, job_name="talk-1", attempt=1)
    assert running["phase"] == "Running" and running["jobName"] == "talk-1"
    assert running["attempts"] == 1 and running["startedAt"] == "2025-01-01T12:00:00Z"
    started = {c["type"]: c for c in running["conditions"]}[Condition.STARTED]
    assert started["status"] == "True"

    report = WorkerReport.from_text(OK_REPORT)
    outcome = Decision(Phase.SUCCEEDED, Reason.SUCCEEDED, "Transcribed.", 0, report)
    later = NOW.replace(minute=1, second=12)
    done = terminal_status(running, 1, later, outcome, results={"prefix": "s3://b/results/x/"})
    assert done["phase"] == "Succeeded"
    assert done["duration"] == "1m12s" and done["durationSeconds"] == 72
    assert done["audioSeconds"] == 61.2 and done["language"] == "en"
    assert done["realtimeFactor"] == 28.5 and done["results"]["prefix"].startswith("s3://")
    conds = {c["type"]: c["status"] for c in done["conditions"]}
    assert conds == {"Started": "True", "Complete": "True", "Failed": "False"}


def test_failed_status_has_no_results_and_says_why() -> None:
    outcome = Decision(Phase.FAILED, "NoAudioStream", "no audio", 3, None)
    done = terminal_status({"startedAt": "2025-01-01T11:59:00Z"}, 2, NOW, outcome, results=None)
    assert done["reason"] == "NoAudioStream" and done["exitCode"] == 3
    assert "results" not in done and done["observedGeneration"] == 2
    conds = {c["type"]: c for c in done["conditions"]}
    assert conds["Failed"]["status"] == "True" and conds["Failed"]["reason"] == "NoAudioStream"


def test_retry_queued_status_clears_the_previous_attempt() -> None:
    finished = {
        "phase": "Failed",
        "reason": "NoAudioStream",
        "exitCode": 3,
        "jobName": "talk-1",
        "conditions": [
            {
                "type": "Started",
                "status": "True",
                "reason": "Started",
                "message": "",
                "lastTransitionTime": "x",
            },
            {
                "type": "Failed",
                "status": "True",
                "reason": "NoAudioStream",
                "message": "",
                "lastTransitionTime": "x",
            },
        ],
    }
    patch = queued_status(finished, 2, NOW, retry=True, message="waiting")
    assert patch["phase"] == "Queued" and patch["reason"] == "Retrying"
    assert patch["exitCode"] is None and patch["jobName"] is None
    assert [c["type"] for c in patch["conditions"]] == ["Started"]
    assert patch["conditions"][0]["status"] == "False"
