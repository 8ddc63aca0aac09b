"""A runner that dies leaves its videos in processing/ under a lock; the next runner resumes them
once the lease has expired, and leaves alone what a live runner holds.

The crash is real in the first test (SIGKILL, nothing runs in the runner after it). Its worker,
in a session of its own, outlives it and finishes the results: the successor must see that the
results were made from this very object and only make the final move. In the second test a
runner "crashed" right after moving the video (the state is made with the runner's own claim
and move calls), and the results folder holds a manifest of an older video of the same name,
which must not be taken for this one's.
"""

from __future__ import annotations

import json
import signal

from videopipe.layout import Folder, Layout
from videopipe.store import Store
from videopipe_runner.claims import Claims

from tests.runner.conftest import SENTENCES
from tests.runner.helpers import RunnerProcess, keys, run_runner, upload, wait_for


def expired(store: Store, path: str) -> bool:
    holder = Claims(store).inspect(path)
    return holder is None or holder.expired


def test_killed_runner_is_taken_over_after_its_lease(s3, bucket, s3_endpoint, clips, tmp_path):
    upload(s3, bucket, "pending/talk.mp4", clips["alpha"])
    args = (f"s3://{bucket}", "--endpoint", s3_endpoint, "--no-summary", "--lease", "3")
    victim = RunnerProcess(tmp_path / "victim", *args, "--watch")
    wait_for("its worker to start", lambda: "running the worker" in victim.stderr)
    victim.signal(signal.SIGKILL)
    victim.wait()
    assert keys(s3, bucket, "processing/") == {"processing/talk.mp4"}
    assert keys(s3, bucket, ".videopipe/locks/") == {".videopipe/locks/talk.mp4"}
    # The orphaned worker finishes on its own; then the lease runs out on the store's clock.
    wait_for("the orphan's results", lambda: keys(s3, bucket, "results/talk.mp4/manifest.json"))
    store = Store(s3, bucket, Layout())
    wait_for("the lease to expire", lambda: expired(store, "talk.mp4"), timeout=30)

    run = run_runner(tmp_path / "successor", *args, "--once")

    assert run.code == 0, run
    video = run.videos["talk.mp4"]
    assert (video["outcome"], video["reason"], video["resumed"]) == ("completed", "Resumed", True)
    assert video["workerRuns"] == 0  # the results were whole: only the final move was missing
    assert keys(s3, bucket, "completed/") == {"completed/talk.mp4"}
    assert keys(s3, bucket, "processing/") | keys(s3, bucket, ".videopipe/") == set()


def test_video_moved_by_a_dead_runner_is_run_again_despite_stale_results(
    s3, bucket, s3_endpoint, clips, tmp_path
):
    store = Store(s3, bucket, Layout())
    upload(s3, bucket, "pending/weekly.mp4", clips["charlie"])
    etag = s3.head_object(Bucket=bucket, Key="pending/weekly.mp4")["ETag"].strip('"')
    # What a runner does before it starts the worker: lock, then move with identity and attempt.
    dead = Claims(store, lease_seconds=2)
    assert dead.acquire("weekly.mp4") is not None
    store.move("weekly.mp4", Folder.PENDING, Folder.PROCESSING, identity=etag, attempts=1)
    # Results of an older video that had the same name.
    old = {"input": {"etag": "0" * 32}, "transcript": {"audio_seconds": 99.0}}
    s3.put_object(Bucket=bucket, Key="results/weekly.mp4/manifest.json", Body=json.dumps(old))
    wait_for("the lease to expire", lambda: expired(store, "weekly.mp4"), timeout=30)

    run = run_runner(
        tmp_path, f"s3://{bucket}", "--endpoint", s3_endpoint, "--once", "--no-summary"
    )

    assert run.code == 0, run
    video = run.videos["weekly.mp4"]
    assert (video["outcome"], video["resumed"], video["workerRuns"]) == ("completed", True, 1)
    assert video["attempt"] == 2  # the dead runner's attempt counts
    text = s3.get_object(Bucket=bucket, Key="results/weekly.mp4/transcript.txt")["Body"].read()
    assert "office" in text.decode().lower(), SENTENCES["charlie"]
    assert keys(s3, bucket, "completed/") == {"completed/weekly.mp4"}
    assert keys(s3, bucket, "processing/") | keys(s3, bucket, ".videopipe/") == set()


def test_a_live_lock_is_left_alone(s3, bucket, s3_endpoint, clips, tmp_path):
    store = Store(s3, bucket, Layout())
    upload(s3, bucket, "pending/mine.mp4", clips["alpha"])
    other = Claims(store, lease_seconds=600)
    lease = other.acquire("mine.mp4")
    assert lease is not None

    run = run_runner(
        tmp_path, f"s3://{bucket}", "--endpoint", s3_endpoint, "--once", "--no-summary"
    )

    assert run.code == 0, run
    assert run.report["videos"] == []
    assert "Nothing to do" in run.stdout
    assert "left 1 video(s) to other runners" in run.stderr
    assert keys(s3, bucket) == {"pending/mine.mp4", ".videopipe/locks/mine.mp4"}
    other.release(lease)


def test_a_stalled_runner_that_lost_its_lease_touches_nothing(
    s3, bucket, s3_endpoint, clips, tmp_path
):
    """SIGSTOP is a stalled VM: its lease expires, another runner takes the video over, and
    when the stalled one wakes up its renewal fails, so it stops and leaves the video alone."""
    store = Store(s3, bucket, Layout())
    upload(s3, bucket, "pending/talk.mp4", clips["delta"])
    stalled = RunnerProcess(
        tmp_path,
        f"s3://{bucket}",
        "--endpoint",
        s3_endpoint,
        "--no-summary",
        "--watch",
        "--interval",
        "1",
        "--lease",
        "2",
    )
    wait_for("its worker to start", lambda: "running the worker" in stalled.stderr)
    stalled.signal(signal.SIGSTOP)
    try:
        wait_for("the lease to expire", lambda: expired(store, "talk.mp4"), timeout=30)
        successor = Claims(store, lease_seconds=600)
        lease = successor.acquire("talk.mp4")
        assert lease is not None
    finally:
        stalled.signal(signal.SIGCONT)
    wait_for("the stalled runner to notice", lambda: "LeaseLost" in stalled.stderr, timeout=30)
    stalled.signal(signal.SIGTERM)
    run = stalled.wait(timeout=60)

    assert run.code == 0, run
    assert (run.videos["talk.mp4"]["outcome"], run.videos["talk.mp4"]["reason"]) == (
        "skipped",
        "LeaseLost",
    )
    # The video stays where the successor expects it, under the successor's lock.
    assert keys(s3, bucket) - keys(s3, bucket, "results/") == {
        "processing/talk.mp4",
        ".videopipe/locks/talk.mp4",
    }
    holder = successor.inspect("talk.mp4")
    assert holder is not None and holder.owner == successor.owner
    successor.release(lease)
