"""Reconcile passes on the real control plane and real S3, the operator's code in-process.

Real: the API server (CRDs, defaults, status subresource, label selection, Events), the Job
controller and the kubelet stand-in running `videopipe transcribe` on each Job's video, and the
moto S3 server. The operator is built as `__main__` builds it and runs one pass at a time
(`replay.Replay`), so a test can change the world between passes; no crash is injected here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.e2e.conftest import WORKER_IMAGE
from tests.operator.conftest import Clips
from tests.operator.replay import SOURCE, Replay, job_finished

pytestmark = pytest.mark.cluster
Json = dict[str, Any]
SUMMARY: Json = {"image": WORKER_IMAGE, "summary": True, "geminiSecret": "gemini"}


def phases(replay: Replay) -> list[str]:
    return sorted((v.get("status") or {}).get("phase", "") for v in replay.videojobs())


def reasons(replay: Replay) -> list[str]:
    return [e.reason for e in replay.vp.events()]


@pytest.mark.slow
def test_a_big_backlog_waits_in_s3(new_world: Callable[..., Replay], s3: Any) -> None:
    count = 2500  # three pages of 1,000
    replay = new_world(maxConcurrentJobs=4, queueWindow=2)
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda i: s3.put_object(
                    Bucket=replay.vp.bucket, Key=f"pending/v{i:05d}.mp4", Body=b"x"
                ),
                range(count),
            )
        )
    ctx = replay.operator()
    started = time.monotonic()
    result = replay.one_pass(ctx)
    elapsed = time.monotonic() - started
    assert result is not None and result.backlog == count  # as listed, before 4 started
    assert len(replay.videojobs()) == 6 and len(replay.vp.jobs()) == 4
    status = replay.vp.source()["status"]
    assert status["running"] == 4 and status["queued"] == 2
    assert status["backlog"] == count
    # The oldest uploads first (same second here, so by key).
    paths = sorted(v["spec"]["path"] for v in replay.videojobs())
    assert paths == [f"v{i:05d}.mp4" for i in range(6)]
    print(f"\none pass over {count} pending objects: {elapsed:.2f} s")


def test_status_reports_a_missing_secret_and_claims_nothing(
    new_world: Callable[..., Replay], clips: Clips
) -> None:
    replay = new_world(credentialsSecret="absent")
    replay.vp.upload("a.mp4", clips.hello)
    ctx = replay.operator()
    result = replay.one_pass(ctx)
    assert result is not None and not result.ready
    ready = replay.vp.source()["status"]["conditions"][0]
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "False", "SecretNotFound")
    assert replay.videojobs() == []
    replay.one_pass(replay.operator())  # even a restarted operator does not repeat the Event
    assert reasons(replay) == ["SecretNotFound"]  # one Event, not one per pass


def test_gemini_secret_missing_blocks_starts_not_discovery(
    new_world: Callable[..., Replay], clips: Clips
) -> None:
    replay = new_world(worker=SUMMARY)
    replay.vp.upload("a.mp4", clips.not_media)
    ctx = replay.operator()
    replay.one_pass(ctx)
    (vj,) = replay.videojobs()
    assert vj["status"]["phase"] == "Queued" and replay.vp.jobs() == []
    replay.vp.create_secret("gemini", GEMINI_API_KEY="k")
    replay.one_pass(ctx)
    (job,) = replay.vp.jobs()
    env = {e.name: e for e in job.spec.template.spec.containers[0].env}
    assert env["GEMINI_API_KEY"].value_from.secret_key_ref.name == "gemini"


def test_new_content_over_a_busy_path_waits_its_turn(
    new_world: Callable[..., Replay], clips: Clips
) -> None:
    replay = new_world()
    replay.vp.upload("a.mp4", clips.hello)
    ctx = replay.operator()
    replay.one_pass(ctx)
    replay.vp.upload("a.mp4", clips.morning)
    replay.one_pass(ctx)
    assert len(replay.videojobs()) == 1  # the second version waits while the first runs
    replay.wait_jobs()
    replay.one_pass(ctx)  # settles v1, creates and starts v2
    replay.wait_jobs()
    replay.one_pass(ctx)
    assert phases(replay) == ["Succeeded", "Succeeded"]
    assert len(replay.faults.jobs_created) == 2 and len(replay.vp.jobs()) == 2
    assert replay.vp.read("completed/a.mp4") == clips.morning.read_bytes()
    transcript = replay.vp.read("results/a.mp4/transcript.txt").decode().lower()
    assert "morning" in transcript  # the results are the second version's


def test_a_running_video_finishes_where_it_started_after_a_source_edit(
    new_world: Callable[..., Replay], clips: Clips
) -> None:
    replay = new_world()
    replay.vp.upload("a.mp4", clips.hello)
    ctx = replay.operator()
    replay.one_pass(ctx)
    assert len(replay.vp.jobs()) == 1
    # The source now points at a bucket that does not exist: it is broken, the Job is not.
    replay.vp.patch_source(SOURCE, {"bucket": "no-such-bucket"})
    replay.wait_jobs()
    result = replay.one_pass(ctx)
    assert result is not None and not result.ready and result.finished == 1
    (vj,) = replay.videojobs()
    assert vj["status"]["phase"] == "Succeeded"
    assert replay.vp.keys("completed") == ["a.mp4"]


def test_two_sources_over_one_bucket_process_each_video_once(
    new_world: Callable[..., Replay], clips: Clips
) -> None:
    # "talks" discovers the video but cannot start it yet (its Gemini Secret is missing)...
    replay = new_world(worker=SUMMARY)
    replay.vp.create_source("twin")
    replay.vp.upload("a.mp4", clips.hello)
    ctx = replay.operator()
    replay.one_pass(ctx, SOURCE)
    replay.one_pass(ctx, "twin")  # ...while "twin" claims and starts it.
    assert len(replay.videojobs()) == 2 and len(replay.vp.jobs()) == 1
    replay.vp.create_secret("gemini", GEMINI_API_KEY="k")
    for _ in range(3):
        for source in (SOURCE, "twin"):
            replay.one_pass(ctx, source)  # then kopf's delete handler: must not take twin's video
        replay.wait_jobs()
    assert len(replay.faults.jobs_created) == 1
    assert [v["spec"]["source"] for v in replay.videojobs()] == ["twin"]
    assert replay.vp.keys("completed") == ["a.mp4"] and replay.vp.keys("failed") == []
    assert "VideoMissing" in reasons(replay)
    assert "Cancelled" not in reasons(replay)


def test_results_of_an_earlier_upload_never_settle_a_lost_job(
    new_world: Callable[..., Replay], clips: Clips
) -> None:
    replay = new_world()
    replay.vp.upload("a.mp4", clips.hello)
    ctx = replay.operator()
    replay.one_pass(ctx)
    replay.wait_jobs()
    replay.one_pass(ctx)  # hello succeeded: results/a.mp4/manifest.json is hello's
    assert phases(replay) == ["Succeeded"]
    # The next upload of a.mp4 gets a Job whose pod cannot be scheduled, and the Job is gone
    # before it ran (as when its TTL passed while the operator was down).
    worker = {**replay.vp.source_spec()["worker"], "nodeSelector": {"videopipe.dev/none": "x"}}
    replay.vp.patch_source(SOURCE, {"worker": worker})
    replay.vp.upload("a.mp4", clips.morning)
    replay.one_pass(ctx)
    (second,) = [j for j in replay.vp.jobs() if not job_finished(j)]
    replay.vp.cluster.batch.delete_namespaced_job(
        second.metadata.name, replay.namespace, propagation_policy="Background"
    )
    replay.vp.wait(lambda: len(replay.vp.jobs()) == 1, timeout=60, message="the Job gone")
    replay.one_pass(ctx)
    statuses = sorted((v["status"]["phase"], v["status"]["reason"]) for v in replay.videojobs())
    assert statuses == [("Failed", "JobLost"), ("Succeeded", "Succeeded")]
    assert replay.vp.read("failed/a.mp4") == clips.morning.read_bytes()
    assert replay.vp.read("completed/a.mp4") == clips.hello.read_bytes()
