"""`videopipe.store` against a real S3 server (moto): listing, idempotent moves, error reports."""

from __future__ import annotations

import json

import pytest
from videopipe.layout import Folder, Layout
from videopipe.reasons import Reason
from videopipe.s3 import make_client
from videopipe.store import (
    META_ATTEMPTS,
    META_ETAG,
    MoveResult,
    Store,
    StoreError,
    error_report,
)


@pytest.fixture
def store(s3, bucket: str) -> Store:
    return Store(s3, bucket, Layout("root"))


def put(s3, bucket: str, key: str, body: bytes = b"video", **kwargs) -> str:
    return s3.put_object(Bucket=bucket, Key=key, Body=body, **kwargs)["ETag"].strip('"')


def test_list_pending_is_paginated_filtered_and_limited(s3, bucket: str) -> None:
    store = Store(s3, bucket, Layout("root"), page_size=2)
    for i in range(5):
        put(s3, bucket, f"root/pending/v{i}.mp4")
    put(s3, bucket, "root/pending/sub/")  # folder marker
    put(s3, bucket, "root/pending/v0.mp4.error.json")  # not a video
    put(s3, bucket, "root/processing/busy.mp4")
    put(s3, bucket, "pending/outside-root.mp4")
    keys = [o.key for o in store.list_pending()]
    assert keys == [f"root/pending/v{i}.mp4" for i in range(5)]
    assert len(list(store.list_pending(limit=3))) == 3


def test_move_records_identity_and_attempts(s3, bucket: str, store: Store) -> None:
    etag = put(
        s3,
        bucket,
        "root/pending/talk.mp4",
        b"data",
        ContentType="video/mp4",
        Metadata={"duration": "12"},
    )
    result = store.move(
        "talk.mp4", Folder.PENDING, Folder.PROCESSING, identity=etag, attempts=2, videojob="vj"
    )
    assert result is MoveResult.MOVED
    assert store.head("root/pending/talk.mp4") is None
    moved = store.head("root/processing/talk.mp4")
    assert moved is not None and moved.identity == etag and moved.attempts == 2
    assert moved.metadata["duration"] == "12" and moved.content_type == "video/mp4"
    body = s3.get_object(Bucket=bucket, Key="root/processing/talk.mp4")["Body"].read()
    assert body == b"data"
    # a second run finds its own copy
    again = store.move("talk.mp4", Folder.PENDING, Folder.PROCESSING, identity=etag)
    assert again is MoveResult.ALREADY_MOVED


def test_move_repairs_a_crash_between_copy_and_delete(s3, bucket: str, store: Store) -> None:
    etag = put(s3, bucket, "root/pending/a.mp4")
    s3.copy_object(
        Bucket=bucket,
        Key="root/processing/a.mp4",
        CopySource={"Bucket": bucket, "Key": "root/pending/a.mp4"},
        Metadata={META_ETAG: etag},
        MetadataDirective="REPLACE",
    )
    assert store.move("a.mp4", Folder.PENDING, Folder.PROCESSING, identity=etag) is (
        MoveResult.MOVED
    )
    assert store.head("root/pending/a.mp4") is None
    assert store.head("root/processing/a.mp4").identity == etag


def test_a_copy_claimed_by_another_videojob_is_not_ours(s3, bucket: str, store: Store) -> None:
    etag = put(s3, bucket, "root/pending/a.mp4")
    first = store.move("a.mp4", Folder.PENDING, Folder.PROCESSING, identity=etag, videojob="one")
    assert first is MoveResult.MOVED
    second = store.move("a.mp4", Folder.PENDING, Folder.PROCESSING, identity=etag, videojob="two")
    assert second is MoveResult.MISSING
    again = store.move("a.mp4", Folder.PENDING, Folder.PROCESSING, identity=etag, videojob="one")
    assert again is MoveResult.ALREADY_MOVED
    # Out of processing/, only its claimant may take it.
    steal = store.move("a.mp4", Folder.PROCESSING, Folder.FAILED, identity=etag, videojob="two")
    assert steal is MoveResult.MISSING and store.head("root/processing/a.mp4") is not None
    done = store.move("a.mp4", Folder.PROCESSING, Folder.COMPLETED, identity=etag, videojob="one")
    assert done is MoveResult.MOVED


def test_move_leaves_other_content_alone(s3, bucket: str, store: Store) -> None:
    put(s3, bucket, "root/pending/a.mp4", b"new upload")
    result = store.move(
        "a.mp4", Folder.PENDING, Folder.PROCESSING, identity="old", expect_etag="old"
    )
    assert result is MoveResult.MISSING
    assert store.head("root/pending/a.mp4") is not None
    assert store.head("root/processing/a.mp4") is None


def test_move_by_identity_after_a_users_move_back(s3, bucket: str, store: Store) -> None:
    """failed/ → pending/ by copy keeps our metadata: the identity, not the ETag, matches."""
    put(s3, bucket, "root/failed/a.mp4", b"x", Metadata={META_ETAG: "first", META_ATTEMPTS: "1"})
    s3.copy_object(
        Bucket=bucket,
        Key="root/pending/a.mp4",
        CopySource={"Bucket": bucket, "Key": "root/failed/a.mp4"},
    )
    listed = store.head("root/pending/a.mp4")
    assert listed.identity == "first" and listed.attempts == 1
    assert store.move("a.mp4", Folder.PENDING, Folder.PROCESSING, identity="first") is (
        MoveResult.MOVED
    )


def test_delete_spares_a_reupload_between_copy_and_delete(s3, bucket: str, store: Store) -> None:
    old = put(s3, bucket, "root/pending/a.mp4", b"v1")
    put(s3, bucket, "root/pending/a.mp4", b"v2 uploaded meanwhile")
    store._delete_if_unchanged("root/pending/a.mp4", old)
    assert store.head("root/pending/a.mp4") is not None


def test_multipart_identity_survives_the_copy(s3, bucket: str, store: Store) -> None:
    key = "root/pending/big.mp4"
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)
    parts = []
    for number in (1, 2):
        body = bytes([number]) * (5 * 1024 * 1024)
        part = s3.upload_part(
            Bucket=bucket, Key=key, UploadId=upload["UploadId"], PartNumber=number, Body=body
        )
        parts.append({"ETag": part["ETag"], "PartNumber": number})
    s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
    )
    etag = store.head(key).etag
    assert etag.endswith("-2")
    store.move("big.mp4", Folder.PENDING, Folder.PROCESSING, identity=etag)
    assert store.head("root/processing/big.mp4").identity == etag


@pytest.mark.parametrize(
    ("path", "fits"),
    [
        ("talk.mp4", True),
        ("Überraschung café/Vortrag über Öl.mp4", True),
        ("a/" * 400 + "x.mp4", True),  # 805 bytes
        ("a" * 990, True),  # root/results/<990>/transcript.json is 1,019 bytes
        ("a" * 1000, False),  # fits pending/, not results/<path>/transcript.json
        ("é" * 500, False),  # bytes, not characters
    ],
)
def test_fits(store: Store, path: str, fits: bool) -> None:
    assert store.fits(path) is fits


def test_error_report_roundtrip(s3, bucket: str, store: Store) -> None:
    report = error_report(path="a b/ü.mp4", reason="NoAudioStream", message="no audio", attempt=1)
    key = store.write_error("a b/ü.mp4", report)
    assert key == "root/failed/a b/ü.mp4.error.json"
    assert store.read_error("a b/ü.mp4")["reason"] == "NoAudioStream"
    raw = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert raw["attempt"] == 1 and "failedAt" in raw and "retry" in raw
    store.delete_error("a b/ü.mp4")
    assert store.read_error("a b/ü.mp4") is None
    store.delete_error("a b/ü.mp4")  # deleting twice is fine


def test_missing_bucket(s3) -> None:
    with pytest.raises(StoreError) as err:
        Store(s3, "no-such-bucket-here").check_bucket()
    assert err.value.reason is Reason.BUCKET_NOT_FOUND
    with pytest.raises(StoreError) as err:
        list(Store(s3, "no-such-bucket-here").list_pending())
    assert err.value.reason is Reason.BUCKET_NOT_FOUND


def test_unreachable_endpoint() -> None:
    client = make_client("http://127.0.0.1:9", max_attempts=1, connect_timeout=1)
    with pytest.raises(StoreError) as err:
        Store(client, "bucket").check_bucket()
    assert err.value.reason is Reason.ENDPOINT_UNREACHABLE
