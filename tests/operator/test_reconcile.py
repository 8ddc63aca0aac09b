"""One reconcile pass against the in-memory Kubernetes (`world.FakeKube`) and real S3 (moto)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from videopipe_operator.config import Config
from videopipe_operator.context import Context
from videopipe_operator.reconcile import reconcile_source

from tests.operator.world import FakeKube, Faults, run_jobs

NS, SOURCE = "media", "talks"


def make_world(s3_endpoint: str, bucket: str, **spec: Any) -> FakeKube:
    kube = FakeKube(Faults())
    kube.secrets[(NS, "creds")] = {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t"}
    kube.add_source(
        {
            "metadata": {"name": SOURCE, "namespace": NS},
            "spec": {
                "bucket": bucket,
                "endpoint": s3_endpoint,
                "credentialsSecret": "creds",
                **spec,
            },
        }
    )
    return kube


def context(kube: FakeKube) -> Context:
    return Context(kube=kube, config=Config())  # type: ignore[arg-type]


@pytest.mark.slow
def test_a_big_backlog_waits_in_s3(s3, s3_endpoint: str, bucket: str) -> None:
    count = 2500  # three pages of 1,000
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda i: s3.put_object(Bucket=bucket, Key=f"pending/v{i:05d}.mp4", Body=b"x"),
                range(count),
            )
        )
    kube = make_world(s3_endpoint, bucket, maxConcurrentJobs=4, queueWindow=2)
    started = time.monotonic()
    result = reconcile_source(context(kube), NS, SOURCE)
    elapsed = time.monotonic() - started
    assert result is not None and result.backlog == count  # as listed, before 4 started
    assert len(kube.videojobs) == 6 and len(kube.jobs) == 4
    status = kube.sources[(NS, SOURCE)]["status"]
    assert status["running"] == 4 and status["queued"] == 2
    assert status["backlog"] == count
    # The oldest uploads first (same second here, so by key).
    paths = sorted(v["spec"]["path"] for v in kube.videojobs.values())
    assert paths == [f"v{i:05d}.mp4" for i in range(6)]
    print(f"\none pass over {count} pending objects: {elapsed:.2f} s")


def test_status_reports_a_missing_secret_and_claims_nothing(
    s3, s3_endpoint: str, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="pending/a.mp4", Body=b"x")
    kube = make_world(s3_endpoint, bucket, credentialsSecret="absent")
    result = reconcile_source(context(kube), NS, SOURCE)
    assert result is not None and not result.ready
    ready = kube.sources[(NS, SOURCE)]["status"]["conditions"][0]
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "False", "SecretNotFound")
    assert kube.videojobs == {}
    reconcile_source(context(kube), NS, SOURCE)
    assert [e[1] for e in kube.events] == ["SecretNotFound"]  # one Event, not one per pass


def test_gemini_secret_missing_blocks_starts_not_discovery(
    s3, s3_endpoint: str, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="pending/a.mp4", Body=b"x")
    kube = make_world(s3_endpoint, bucket, worker={"summary": True, "geminiSecret": "gemini"})
    reconcile_source(context(kube), NS, SOURCE)
    assert len(kube.videojobs) == 1 and kube.jobs == {}
    (vj,) = kube.videojobs.values()
    assert vj["status"]["phase"] == "Queued"
    kube.secrets[(NS, "gemini")] = {"GEMINI_API_KEY": "k"}
    reconcile_source(context(kube), NS, SOURCE)
    assert len(kube.jobs) == 1
    env = {
        e["name"]: e
        for e in next(iter(kube.jobs.values()))["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["GEMINI_API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "gemini"


def test_new_content_over_a_busy_path_waits_its_turn(s3, s3_endpoint: str, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="pending/a.mp4", Body=b"version 1")
    kube = make_world(s3_endpoint, bucket)
    reconcile_source(context(kube), NS, SOURCE)
    s3.put_object(Bucket=bucket, Key="pending/a.mp4", Body=b"version 2")
    reconcile_source(context(kube), NS, SOURCE)
    assert len(kube.videojobs) == 1  # the second version waits while the first runs
    run_jobs(kube, s3, bucket)
    reconcile_source(context(kube), NS, SOURCE)  # settles v1, creates and starts v2
    run_jobs(kube, s3, bucket)
    reconcile_source(context(kube), NS, SOURCE)
    phases = sorted(v["status"]["phase"] for v in kube.videojobs.values())
    assert phases == ["Succeeded", "Succeeded"] and len(kube.jobs_created) == 2
    body = s3.get_object(Bucket=bucket, Key="completed/a.mp4")["Body"].read()
    assert body == b"version 2"


def test_a_running_video_finishes_where_it_started_after_a_source_edit(
    s3, s3_endpoint: str, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="pending/a.mp4", Body=b"x")
    kube = make_world(s3_endpoint, bucket)
    reconcile_source(context(kube), NS, SOURCE)
    assert len(kube.jobs) == 1
    # The source now points at a bucket that does not exist: it is broken, the Job is not.
    kube.sources[(NS, SOURCE)]["spec"]["bucket"] = "no-such-bucket"
    run_jobs(kube, s3, bucket)
    result = reconcile_source(context(kube), NS, SOURCE)
    assert result is not None and not result.ready and result.finished == 1
    (vj,) = kube.videojobs.values()
    assert vj["status"]["phase"] == "Succeeded"
    s3.head_object(Bucket=bucket, Key="completed/a.mp4")


def test_two_sources_over_one_bucket_process_each_video_once(
    s3, s3_endpoint: str, bucket: str
) -> None:
    from videopipe_operator import cancel

    s3.put_object(Bucket=bucket, Key="pending/a.mp4", Body=b"x")
    # "talks" discovers the video but cannot start it yet (its Gemini Secret is missing)...
    kube = make_world(s3_endpoint, bucket, worker={"summary": True, "geminiSecret": "gemini"})
    kube.add_source(
        {
            "metadata": {"name": "twin", "namespace": NS},
            "spec": {"bucket": bucket, "endpoint": s3_endpoint, "credentialsSecret": "creds"},
        }
    )
    reconcile_source(context(kube), NS, SOURCE)
    reconcile_source(context(kube), NS, "twin")  # ...while "twin" claims and starts it.
    assert len(kube.videojobs) == 2 and len(kube.jobs) == 1
    kube.secrets[(NS, "gemini")] = {"GEMINI_API_KEY": "k"}
    for _ in range(3):
        for source in (SOURCE, "twin"):
            reconcile_source(context(kube), NS, source)
        for key, body in list(kube.videojobs.items()):
            if body["metadata"].get("deletionTimestamp"):
                cancel.cancel(context(kube), body)  # must not take twin's video
                kube.release(*key)
        run_jobs(kube, s3, bucket)
    assert len(kube.jobs_created) == 1
    assert [v["spec"]["source"] for v in kube.videojobs.values()] == ["twin"]
    assert s3.list_objects_v2(Bucket=bucket, Prefix="completed/")["KeyCount"] == 1
    assert s3.list_objects_v2(Bucket=bucket, Prefix="failed/")["KeyCount"] == 0
    assert "VideoMissing" in [e[1] for e in kube.events]
    assert "Cancelled" not in [e[1] for e in kube.events]
