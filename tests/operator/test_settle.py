"""`videopipe.settle` against a real S3 server (moto): the final move, error.json, stale copies,
whose results are whose, and the shared failure reasons."""

from __future__ import annotations

import json

import pytest
from videopipe import s3errors, settle
from videopipe.layout import Folder, Layout
from videopipe.reasons import Reason
from videopipe.report import WorkerReport
from videopipe.settle import Claim
from videopipe.store import META_ETAG, META_VIDEOJOB, MoveResult, Store


@pytest.fixture
def store(s3, bucket: str) -> Store:
    return Store(s3, bucket, Layout("root"))


def put(s3, bucket: str, key: str, body: bytes = b"video", **kwargs) -> str:
    return s3.put_object(Bucket=bucket, Key=key, Body=body, **kwargs)["ETag"].strip('"')


def claimed(store: Store, s3, bucket: str, body: bytes, claimant: str | None = "vj-1") -> Claim:
    """Upload `t.mp4` to pending/ and move it to processing/, as a claimant does."""
    identity = put(s3, bucket, "root/pending/t.mp4", body)
    claim = Claim("t.mp4", identity, 1, claimant)
    store.move(
        "t.mp4", Folder.PENDING, Folder.PROCESSING, identity=identity, attempts=1, videojob=claimant
    )
    return claim


def manifest(s3, bucket: str, made_from: str) -> None:
    body = json.dumps({"input": {"etag": made_from}, "transcript": {"audio_seconds": 1.5}})
    put(s3, bucket, "root/results/t.mp4/manifest.json", body.encode())


def test_results_of_an_earlier_upload_of_the_same_path_are_not_this_ones(
    s3, bucket: str, store: Store
) -> None:
    earlier = put(s3, bucket, "root/completed/t.mp4", b"the first talk")
    manifest(s3, bucket, earlier)
    claim = claimed(store, s3, bucket, b"a second talk under the same name")
    assert settle.results_of(store, claim) is None
    put(s3, bucket, "root/results/t.mp4/transcript.json", b"{}")
    assert settle.results_of(store, claim) is None  # still the earlier upload's manifest


def test_results_of_this_upload_count_in_processing_and_after_the_move(
    s3, bucket: str, store: Store
) -> None:
    claim = claimed(store, s3, bucket, b"the talk")
    copy = store.head("root/processing/t.mp4")
    assert copy is not None
    assert settle.results_of(store, claim) is None  # no manifest yet: not complete
    manifest(s3, bucket, copy.etag)
    found = settle.results_of(store, claim)
    assert found is not None and found["transcript"]["audio_seconds"] == 1.5
    assert settle.finish(store, claim, succeeded=True) is MoveResult.MOVED
    assert settle.results_of(store, claim) is not None  # a crash before the record: still ours
    other = Claim("t.mp4", claim.identity, 1, claimant="vj-other")
    assert settle.results_of(store, other) is None  # another claimant's copy is not ours


def test_failure_writes_error_json_and_drops_our_stale_success(
    s3, bucket: str, store: Store
) -> None:
    claim = claimed(store, s3, bucket, b"the talk")
    put(s3, bucket, "root/completed/t.mp4", b"the talk", Metadata={META_ETAG: claim.identity})
    report = WorkerReport("failed", 3, reason="NotMedia", message="not a video", model="tiny.en")
    moved = settle.finish(
        store,
        claim,
        succeeded=False,
        reason=settle.failure_reason(report, 3),
        message=settle.failure_message(report, 3),
        exit_code=3,
        worker=settle.worker_fields(report, runs=1),
    )
    assert moved is MoveResult.MOVED
    assert store.head("root/completed/t.mp4") is None
    error = store.read_error("t.mp4")
    assert error is not None
    assert (error["reason"], error["message"], error["attempt"]) == ("NotMedia", "not a video", 1)
    assert error["worker"] == {"reason": "NotMedia", "exitCode": 3, "model": "tiny.en", "runs": 1}
    assert error["videojob"] == "vj-1"


def test_success_deletes_error_json_but_not_another_claimants_copy(
    s3, bucket: str, store: Store
) -> None:
    claim = claimed(store, s3, bucket, b"the talk")
    theirs = {META_ETAG: claim.identity, META_VIDEOJOB: "vj-twin"}
    put(s3, bucket, "root/failed/t.mp4", b"the talk", Metadata=theirs)
    put(s3, bucket, "root/failed/t.mp4.error.json", b"{}")
    assert settle.finish(store, claim, succeeded=True) is MoveResult.MOVED
    assert store.head("root/failed/t.mp4") is not None  # the twin's, not ours
    assert store.read_error("t.mp4") is None
    assert settle.finish(store, claim, succeeded=True) is MoveResult.ALREADY_MOVED


def test_a_missing_video_touches_nothing(s3, bucket: str, store: Store) -> None:
    put(s3, bucket, "root/failed/t.mp4.error.json", b"{}")
    claim = Claim("t.mp4", "0" * 32, 1, "vj-1")
    assert settle.finish(store, claim, succeeded=True) is MoveResult.MISSING
    assert store.read_error("t.mp4") == {}


@pytest.mark.parametrize(
    ("report", "exit_code", "platform", "reason"),
    [
        (WorkerReport("failed", 3, reason="NoAudioStream"), 3, None, "NoAudioStream"),
        (WorkerReport("failed", 1, reason="not a word"), 1, None, Reason.WORKER_FAILED),
        (WorkerReport("failed", 1, reason="S3Error"), 137, Reason.OOM_KILLED, "S3Error"),
        (None, 137, Reason.OOM_KILLED, Reason.OOM_KILLED),
        (None, 3, None, Reason.BAD_INPUT),
        (None, 2, None, Reason.CONFIG_ERROR),
        (None, -9, None, Reason.WORKER_KILLED),
        (None, 1, None, Reason.WORKER_FAILED),
    ],
)
def test_failure_reason(
    report: WorkerReport | None, exit_code: int, platform: str | None, reason: str
) -> None:
    assert settle.failure_reason(report, exit_code, platform=platform) == reason


def test_failure_message() -> None:
    said = WorkerReport("failed", 3, message="not a video file")
    assert settle.failure_message(said, 3) == "not a video file"
    assert settle.failure_message(None, -9).startswith("The worker was killed by SIGKILL")
    assert settle.failure_message(None, 1) == "The worker exited 1 without a report."
    told = settle.failure_message(None, 1, platform="BackoffLimitExceeded", log_tail=" boom\n")
    assert told == "BackoffLimitExceeded: boom"
    assert len(settle.failure_message(None, 1, log_tail="x" * 5000)) == settle.MAX_MESSAGE


@pytest.mark.parametrize(
    ("code", "status", "reason"),
    [
        ("NoSuchBucket", 404, Reason.BUCKET_NOT_FOUND),
        ("NoSuchKey", 404, Reason.OBJECT_NOT_FOUND),
        ("", 404, Reason.OBJECT_NOT_FOUND),
        ("SignatureDoesNotMatch", 403, Reason.ACCESS_DENIED),
        ("", 403, Reason.ACCESS_DENIED),
        ("KeyTooLongError", 400, Reason.KEY_TOO_LONG),
        ("SlowDown", 503, Reason.THROTTLED),
        ("InternalError", 500, Reason.UNAVAILABLE),
        ("InvalidArgument", 400, Reason.STORAGE_ERROR),
    ],
)
def test_one_classifier_names_each_s3_error(code: str, status: int, reason: Reason) -> None:
    assert s3errors.classify_answer(code, status) is reason
