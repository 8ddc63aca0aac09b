"""Crashes, retries, cancellations and edits: every video ends in one final folder, once."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from kubernetes import client

from tests.e2e.conftest import GROUP, VERSION, WORKER_IMAGE, Videopipe

pytestmark = pytest.mark.cluster


def phase_of(videopipe: Videopipe, path: str) -> str | None:
    return ((videopipe.videojob_for(path) or {}).get("status") or {}).get("phase")


def job_finished(job: client.V1Job) -> bool:
    return any(
        c.type in ("Complete", "Failed") and c.status == "True" for c in job.status.conditions or []
    )


def worker_process(videopipe: Videopipe) -> int | None:
    """The process group of the namespace's one running worker pod (the stand-in runs it here)."""
    kubelet = videopipe.cluster.kubelet
    assert kubelet is not None
    for pod in videopipe.cluster.core.list_namespaced_pod(videopipe.namespace).items:
        run = kubelet.run_for(videopipe.namespace, pod.metadata.name)
        if pod.status.phase == "Running" and run is not None and run.proc is not None:
            return run.proc.pid
    return None


def test_operator_killed_and_restarted_mid_run(
    videopipe: Videopipe, talk_videos: dict[str, Path]
) -> None:
    started = time.monotonic()
    videopipe.create_source(maxConcurrentJobs=2, queueWindow=2)
    for name, path in talk_videos.items():
        videopipe.upload(f"{name}.mp4", path)
    expected = sorted(f"{n}.mp4" for n in talk_videos)

    # Kill it at different moments of its work: each time right after it made progress.
    total = len(talk_videos)
    progress = [
        ("a VideoJob created", lambda: len(videopipe.videojobs())),
        ("a Job created", lambda: len(videopipe.jobs())),
        ("a video completed", lambda: len(videopipe.keys("completed"))),
        ("another video completed", lambda: len(videopipe.keys("completed"))),
    ]
    kills = 0
    for what, measure in progress:
        before = measure()
        if before >= total:
            continue  # already past this point
        op = videopipe.start_operator()
        videopipe.wait(lambda m=measure, b=before: m() > b, timeout=120, message=what)
        op.kill()
        kills += 1
    assert kills >= 3

    # With the operator dead, the Jobs it started keep running and finish.
    videopipe.wait(
        lambda: any(job_finished(j) for j in videopipe.jobs()),
        timeout=120,
        message="a Job finished while the operator was down",
    )
    videopipe.start_operator()
    videopipe.wait(lambda: videopipe.keys("completed") == expected, timeout=400)
    videopipe.wait(
        lambda: all(
            (v.get("status") or {}).get("phase") == "Succeeded" for v in videopipe.videojobs()
        )
    )
    folders = videopipe.folders()
    assert folders["pending"] == [] and folders["processing"] == [] and folders["failed"] == []
    for name in talk_videos:
        assert f"{name}.mp4/manifest.json" in videopipe.keys("results")
    vjs = videopipe.videojobs()
    assert len(vjs) == len(talk_videos)
    assert all(v["status"]["attempts"] == 1 for v in vjs)
    jobs = sorted(j.metadata.name for j in videopipe.jobs())
    assert len(jobs) == len(talk_videos) and all(j.endswith("-1") for j in jobs), jobs
    pods = videopipe.cluster.core.list_namespaced_pod(videopipe.namespace).items
    assert len(pods) == len(talk_videos)  # one worker run per video: nothing duplicated
    print(f"\n6 videos through {kills} SIGKILLs in {time.monotonic() - started:.1f} s")


def test_retry_by_moving_back_to_pending(
    videopipe: Videopipe, talk_videos: dict[str, Path], corrupt_video: Path
) -> None:
    # A configuration error fails the first attempt (exit 2, no pod retries)...
    videopipe.create_source(worker={"image": WORKER_IMAGE, "model": "no-such-model"})
    videopipe.start_operator()
    videopipe.upload("hello.mp4", talk_videos["hello"])
    videopipe.upload("corrupt.mp4", corrupt_video)
    failed = ["corrupt.mp4", "corrupt.mp4.error.json", "hello.mp4", "hello.mp4.error.json"]
    videopipe.wait(lambda: videopipe.keys("failed") == failed, timeout=120)
    report = json.loads(videopipe.read("failed/hello.mp4.error.json"))
    assert report["attempt"] == 1 and report["exitCode"] == 2
    videopipe.wait(lambda: phase_of(videopipe, "hello.mp4") == "Failed")
    first = videopipe.videojob_for("hello.mp4")

    # ...the user fixes the source and moves both videos back.
    videopipe.patch_source("talks", {"worker": {"model": None}})
    videopipe.move("failed/hello.mp4", "pending/hello.mp4")
    videopipe.move("failed/corrupt.mp4", "pending/corrupt.mp4")

    videopipe.wait(lambda: videopipe.keys("completed") == ["hello.mp4"], timeout=120)
    videopipe.wait(
        lambda: json.loads(videopipe.read("failed/corrupt.mp4.error.json"))["attempt"] == 2,
        timeout=120,
    )
    videopipe.wait(lambda: phase_of(videopipe, "hello.mp4") == "Succeeded")
    assert videopipe.keys("failed") == ["corrupt.mp4", "corrupt.mp4.error.json"]
    again = videopipe.videojob_for("hello.mp4")
    assert again["metadata"]["name"] == first["metadata"]["name"]  # the same VideoJob, re-armed
    assert again["spec"]["attempt"] == 2 and again["status"]["attempts"] == 2
    assert "model" not in again["spec"]["worker"]  # settings refreshed from the source
    name = first["metadata"]["name"]
    jobs = {j.metadata.name for j in videopipe.jobs()}
    assert {f"{name}-1", f"{name}-2"} <= jobs
    assert videopipe.events("Retrying")
    videopipe.wait(lambda: phase_of(videopipe, "corrupt.mp4") == "Failed")
    assert videopipe.videojob_for("corrupt.mp4")["status"]["attempts"] == 2


def test_retry_after_the_videojob_was_pruned(videopipe: Videopipe, corrupt_video: Path) -> None:
    """Attempts are counted on the object too, so pruning the history does not reset them."""
    videopipe.create_source(
        jobs={"failedHistoryLimit": 0, "ttlSecondsAfterFinished": 600, "backoffLimit": 0}
    )
    videopipe.start_operator()
    videopipe.upload("corrupt.mp4", corrupt_video)
    videopipe.wait(lambda: videopipe.keys("failed") == ["corrupt.mp4", "corrupt.mp4.error.json"])
    videopipe.wait(lambda: videopipe.videojobs() == [], message="the failed VideoJob pruned")
    videopipe.move("failed/corrupt.mp4", "pending/corrupt.mp4")
    videopipe.wait(
        lambda: (
            videopipe.keys("failed") == ["corrupt.mp4", "corrupt.mp4.error.json"]
            and json.loads(videopipe.read("failed/corrupt.mp4.error.json"))["attempt"] == 2
        ),
        timeout=120,
    )


def test_deleting_videojobs_cancels_them(
    videopipe: Videopipe, talk_videos: dict[str, Path], long_video: Path
) -> None:
    videopipe.create_source(maxConcurrentJobs=1, queueWindow=2)
    videopipe.start_operator()
    videopipe.upload("long.mp4", long_video)
    running = videopipe.wait(
        lambda: phase_of(videopipe, "long.mp4") == "Running" and videopipe.videojob_for("long.mp4")
    )
    # Hold the worker still until both VideoJobs are deleted: a worker that finished first (a
    # loaded machine makes the wait below long) would leave nothing to cancel.
    worker = videopipe.wait(lambda: worker_process(videopipe), message="the worker pod running")
    os.killpg(worker, signal.SIGSTOP)
    try:
        videopipe.upload("hello.mp4", talk_videos["hello"])
        queued = videopipe.wait(
            lambda: (
                phase_of(videopipe, "hello.mp4") == "Queued" and videopipe.videojob_for("hello.mp4")
            )
        )
        for vj in (running, queued):
            videopipe.custom.delete_namespaced_custom_object(
                GROUP, VERSION, videopipe.namespace, "videojobs", vj["metadata"]["name"]
            )
    finally:
        os.killpg(worker, signal.SIGCONT)
    expected = ["hello.mp4", "hello.mp4.error.json", "long.mp4", "long.mp4.error.json"]
    videopipe.wait(lambda: videopipe.keys("failed") == expected, timeout=60)
    videopipe.wait(lambda: videopipe.videojobs() == [], message="VideoJobs gone")
    videopipe.wait(lambda: videopipe.jobs() == [], message="Job deleted")
    videopipe.wait(
        lambda: videopipe.cluster.core.list_namespaced_pod(videopipe.namespace).items == [],
        message="worker pod gone",
    )
    for path in ("long.mp4", "hello.mp4"):
        report = json.loads(videopipe.read(f"failed/{path}.error.json"))
        assert report["reason"] == "Cancelled"
    folders = videopipe.folders()
    assert folders["pending"] == [] and folders["processing"] == []
    assert folders["completed"] == []
    # Not re-created: a cancelled video stays cancelled until moved back.
    videopipe.wait_polls(2)
    assert videopipe.videojobs() == []


def test_running_jobs_survive_a_source_edit(videopipe: Videopipe, long_video: Path) -> None:
    videopipe.create_source(maxConcurrentJobs=2)
    videopipe.start_operator()
    videopipe.upload("long.mp4", long_video)
    videopipe.wait(lambda: phase_of(videopipe, "long.mp4") == "Running")
    (job,) = videopipe.jobs()
    videopipe.patch_source(
        "talks",
        {"maxConcurrentJobs": 1, "worker": {"language": "de"}, "pollIntervalSeconds": 2},
    )
    videopipe.wait(lambda: videopipe.keys("completed") == ["long.mp4"], timeout=120)
    (after,) = videopipe.jobs()
    assert after.metadata.uid == job.metadata.uid  # the same Job ran to the end
    assert "--language" not in after.spec.template.spec.containers[0].args


def test_history_limits_prune_finished_videojobs(
    videopipe: Videopipe, talk_videos: dict[str, Path]
) -> None:
    videopipe.create_source(
        maxConcurrentJobs=3, jobs={"successfulHistoryLimit": 1, "ttlSecondsAfterFinished": 600}
    )
    videopipe.start_operator()
    names = ["hello", "weather", "numbers"]
    for name in names:
        videopipe.upload(f"{name}.mp4", talk_videos[name])
    videopipe.wait(
        lambda: videopipe.keys("completed") == sorted(f"{n}.mp4" for n in names), timeout=180
    )
    vjs = videopipe.wait(lambda: len(videopipe.videojobs()) == 1 and videopipe.videojobs())
    assert vjs[0]["status"]["phase"] == "Succeeded"
    videopipe.wait(lambda: len(videopipe.jobs()) == 1)  # Jobs go with their VideoJob (GC)
