"""What goes wrong: bad videos fail at once with their reason; bad configuration never loses one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import Videopipe

pytestmark = pytest.mark.cluster


def status_of(videopipe: Videopipe, path: str) -> dict:
    return (videopipe.videojob_for(path) or {}).get("status") or {}


def test_corrupt_and_silent_videos_fail_at_once_with_the_reason(
    videopipe: Videopipe, corrupt_video: Path, no_audio_video: Path
) -> None:
    videopipe.create_source(jobs={"backoffLimit": 3, "ttlSecondsAfterFinished": 600})
    videopipe.start_operator()
    videopipe.upload("corrupt.mp4", corrupt_video)
    videopipe.upload("silent film.mp4", no_audio_video)
    expected = sorted(
        ["corrupt.mp4", "corrupt.mp4.error.json", "silent film.mp4", "silent film.mp4.error.json"]
    )
    # A move is a copy, then a delete: wait for the delete too, not only for the copy.
    videopipe.wait(
        lambda: videopipe.keys("failed") == expected and videopipe.keys("processing") == [],
        timeout=120,
    )
    assert videopipe.keys("completed") == []

    reasons = {}
    for path in ("corrupt.mp4", "silent film.mp4"):
        report = json.loads(videopipe.read(f"failed/{path}.error.json"))
        assert report["attempt"] == 1 and report["exitCode"] == 3 and report["message"]
        reasons[path] = report["reason"]
        status = videopipe.wait(
            lambda p=path: (
                status_of(videopipe, p).get("phase") == "Failed" and status_of(videopipe, p)
            )
        )
        assert status["reason"] == report["reason"] and status["exitCode"] == 3
        conds = {c["type"]: c["status"] for c in status["conditions"]}
        assert conds["Failed"] == "True" and conds["Complete"] == "False"
    assert reasons["corrupt.mp4"] in {"NotMedia", "Truncated", "Corrupt"}
    assert reasons["silent film.mp4"] == "NoAudioStream"
    # No retries despite backoffLimit 3: one pod per Job (podFailurePolicy FailJob on exit 3).
    pods = videopipe.cluster.core.list_namespaced_pod(videopipe.namespace).items
    assert len(pods) == 2, [p.metadata.name for p in pods]
    for job in videopipe.jobs():
        failed = [c for c in job.status.conditions or [] if c.type == "Failed"]
        assert failed and failed[0].reason == "PodFailurePolicy"
    warnings = {e.reason for e in videopipe.events() if e.type == "Warning"}
    assert set(reasons.values()) <= warnings


def test_missing_secret_then_fixed(videopipe: Videopipe, talk_videos: dict[str, Path]) -> None:
    videopipe.create_source(credentialsSecret="not-created-yet")
    op = videopipe.start_operator()
    videopipe.upload("hello.mp4", talk_videos["hello"])

    def ready_condition():
        conds = (videopipe.source().get("status") or {}).get("conditions") or []
        ready = [c for c in conds if c["type"] == "Ready"]
        return ready[0] if ready else None

    cond = videopipe.wait(lambda: (c := ready_condition()) and c["status"] == "False" and c)
    assert cond["reason"] == "SecretNotFound" and "not-created-yet" in cond["message"]
    videopipe.wait(lambda: videopipe.events("SecretNotFound"))
    # Several polls later: still waiting, nothing claimed, the operator healthy.
    videopipe.wait_polls(3)
    assert videopipe.keys("pending") == ["hello.mp4"] and videopipe.videojobs() == []
    assert op.alive() and op.get("/healthz")[0] == 200
    assert len(videopipe.events("SecretNotFound")) == 1  # an Event per change, not per poll

    videopipe.create_secret("not-created-yet")
    videopipe.wait(lambda: videopipe.keys("completed") == ["hello.mp4"], timeout=120)
    videopipe.wait(lambda: ready_condition()["status"] == "True")
    assert videopipe.events("SourceReady")


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({"bucket": "no-such-bucket"}, "BucketNotFound"),
        ({"endpoint": "http://127.0.0.1:9"}, "EndpointUnreachable"),
    ],
)
def test_unreachable_storage_is_a_condition_not_a_crash(
    videopipe: Videopipe, talk_videos: dict[str, Path], spec: dict, reason: str
) -> None:
    videopipe.create_source(**spec)
    op = videopipe.start_operator()
    videopipe.upload("hello.mp4", talk_videos["hello"])

    def condition():
        conds = (videopipe.source().get("status") or {}).get("conditions") or []
        return next((c for c in conds if c["type"] == "Ready" and c["status"] == "False"), None)

    cond = videopipe.wait(condition, timeout=60)
    assert cond["reason"] == reason, cond
    videopipe.wait(lambda: videopipe.events(reason))
    assert op.alive() and op.get("/healthz")[0] == 200
    assert videopipe.videojobs() == [] and videopipe.keys("pending") == ["hello.mp4"]
    # Fix it: the same source recovers and the waiting video goes through.
    videopipe.patch_source("talks", {"bucket": videopipe.bucket, "endpoint": videopipe.s3_endpoint})
    videopipe.wait(lambda: videopipe.keys("completed") == ["hello.mp4"], timeout=120)


def test_a_key_too_long_for_the_layout_stays_and_is_reported(
    videopipe: Videopipe, talk_videos: dict[str, Path]
) -> None:
    long_path = "x" * 1000 + ".mp4"  # pending/<path> fits in S3; results/<path>/… would not
    videopipe.create_source()
    videopipe.start_operator()
    videopipe.upload(long_path, talk_videos["hello"])
    videopipe.upload("fine.mp4", talk_videos["weather"])
    videopipe.wait(lambda: videopipe.keys("completed") == ["fine.mp4"], timeout=120)

    def keys_condition():
        status = videopipe.source().get("status") or {}
        conds = {c["type"]: c for c in status.get("conditions") or []}
        cond = conds.get("KeysValid")
        return cond if cond and cond["status"] == "False" else None

    cond = videopipe.wait(keys_condition)
    assert cond["reason"] == "InvalidKey"
    assert videopipe.keys("pending") == [long_path]
    assert len(videopipe.events("InvalidKey")) == 1
    assert videopipe.source()["status"]["conditions"][0]["status"] == "True"  # still Ready
