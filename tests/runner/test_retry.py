"""Retries: bounded in-place retries of a retryable failure, then a user's retry from failed/.

The retryable failure is real: Gemini (the local stand-in) answers in a shape that is not a
summary, so the worker exits 1 (GeminiBadResponse). The runner runs it again after a backoff,
then gives up into `failed/`. The user fixes the cause and moves the video back to `pending/`
(a server-side copy, as `aws s3 mv` does, which keeps the metadata): the next run counts on
from the recorded attempts, succeeds, and removes the stale error report.
"""

from __future__ import annotations

from pathlib import Path

from tests.runner.helpers import keys, move_back_to_pending, read_json, run_runner, upload
from tests.support.gemini import FakeGemini


def test_retryable_failure_is_retried_then_failed_then_retried_by_the_user(
    s3, bucket: str, s3_endpoint: str, clips: dict[str, Path], gemini: FakeGemini, tmp_path
) -> None:
    upload(s3, bucket, "pending/board/review.mp4", clips["delta"])
    env = {"GEMINI_API_KEY": "test-key", "VIDEOPIPE_GEMINI_BASE_URL": gemini.url}
    args = (f"s3://{bucket}", "--endpoint", s3_endpoint, "--once", "--max-attempts", "2")
    gemini.answer_text = "this is not JSON"

    run = run_runner(tmp_path / "1", *args, "--backoff", "0.2", env=env)

    assert run.code == 1, run
    video = run.videos["board/review.mp4"]
    assert (video["outcome"], video["reason"]) == ("failed", "GeminiBadResponse")
    assert (video["workerRuns"], video["attempt"]) == (2, 2)
    error = read_json(s3, bucket, "failed/board/review.mp4.error.json")
    assert (error["reason"], error["exitCode"], error["attempt"]) == ("GeminiBadResponse", 1, 2)
    assert error["worker"]["runs"] == 2
    assert "retrying in" in run.stderr

    gemini.answer_text = None  # the cause is fixed
    move_back_to_pending(s3, bucket, "board/review.mp4")
    run = run_runner(tmp_path / "2", *args, env=env)

    assert run.code == 0, run
    video = run.videos["board/review.mp4"]
    assert (video["outcome"], video["attempt"], video["workerRuns"]) == ("completed", 3, 1)
    meta = s3.head_object(Bucket=bucket, Key="completed/board/review.mp4")["Metadata"]
    assert meta["videopipe-attempts"] == "3"
    assert keys(s3, bucket, "failed/") == set()  # the old error report is gone
    summary = read_json(s3, bucket, "results/board/review.mp4/summary.json")
    assert summary["title"]
