"""SIGTERM/SIGINT during a run loses nothing: each video ends in completed/ or back in pending/.

The signal is sent while a worker is running (the runner's own log line says so). With a grace
period the video in flight finishes; without one its worker is stopped and the video goes back
to `pending/` with its attempt count unchanged. Either way no lock is left, and the runner exits
with the documented code.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.runner.helpers import RunnerProcess, keys, upload, wait_for


def start_and_wait_for_a_worker(
    tmp_path: Path, bucket: str, s3_endpoint: str, *args: str
) -> RunnerProcess:
    runner = RunnerProcess(
        tmp_path, f"s3://{bucket}", "--endpoint", s3_endpoint, "--no-summary", *args
    )
    wait_for("a worker to start", lambda: "running the worker" in runner.stderr, timeout=60)
    return runner


@pytest.mark.parametrize(
    ("mode", "signum", "code"),
    [("--watch", signal.SIGTERM, 0), ("--once", signal.SIGINT, 130)],
    ids=["watch-sigterm", "once-sigint"],
)
def test_stop_without_grace_returns_the_video_to_pending(
    s3, bucket, s3_endpoint, clips, tmp_path, mode, signum, code
) -> None:
    upload(s3, bucket, "pending/talk.mp4", clips["alpha"])
    runner = start_and_wait_for_a_worker(tmp_path, bucket, s3_endpoint, mode, "--grace", "0")
    runner.signal(signum)
    run = runner.wait(timeout=120)

    assert run.code == code, run
    assert keys(s3, bucket) == {"pending/talk.mp4"}  # not in processing/, no lock left
    head = s3.head_object(Bucket=bucket, Key="pending/talk.mp4")
    assert head["Metadata"]["videopipe-attempts"] == "0"  # the cut-short run does not count
    assert run.videos["talk.mp4"]["outcome"] == "returned"
    assert "go back to pending/" in run.stderr


def test_watch_lets_the_video_in_flight_finish_within_the_grace_period(
    s3, bucket, s3_endpoint, clips, tmp_path
) -> None:
    upload(s3, bucket, "pending/first.mp4", clips["alpha"])
    upload(s3, bucket, "pending/second.mp4", clips["bravo"])
    runner = start_and_wait_for_a_worker(
        tmp_path, bucket, s3_endpoint, "--watch", "--interval", "1", "--grace", "120"
    )
    runner.signal(signal.SIGTERM)
    run = runner.wait(timeout=180)

    assert run.code == 0, run
    # The one in flight finished; the other was never claimed after the signal.
    assert {p: v["outcome"] for p, v in run.videos.items()} == {"first.mp4": "completed"}
    assert keys(s3, bucket, "completed/") == {"completed/first.mp4"}
    assert keys(s3, bucket, "pending/") == {"pending/second.mp4"}
    assert keys(s3, bucket, "processing/") | keys(s3, bucket, ".videopipe/") == set()


def test_a_second_signal_stops_the_worker_at_once(s3, bucket, s3_endpoint, clips, tmp_path):
    upload(s3, bucket, "pending/talk.mp4", clips["charlie"])
    runner = start_and_wait_for_a_worker(tmp_path, bucket, s3_endpoint, "--watch", "--grace", "600")
    runner.signal(signal.SIGINT)
    wait_for("the first signal to be noticed", lambda: "no new videos" in runner.stderr)
    runner.signal(signal.SIGINT)
    run = runner.wait(timeout=120)

    assert run.code == 0, run
    outcome = run.videos["talk.mp4"]["outcome"]
    # The worker may have finished just before the second signal; nothing is lost either way.
    assert outcome in {"returned", "completed"}
    folder = "pending" if outcome == "returned" else "completed"
    assert keys(s3, bucket, f"{folder}/") == {f"{folder}/talk.mp4"}
    assert keys(s3, bucket, "processing/") | keys(s3, bucket, ".videopipe/") == set()
