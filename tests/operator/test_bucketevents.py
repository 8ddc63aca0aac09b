"""Event bodies as the stores send them, to the keys a source's loop is hinted with.

The bodies follow the published shapes: AWS's notification and EventBridge pages, MinIO's
webhook body (its `EventName`/`Key` summary beside the records), SNS's envelope and a Pub/Sub
push request for a Cloud Storage notification.
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote_plus

import pytest
from videopipe.layout import Layout
from videopipe_operator.bucketevents import CREATED, MalformedEvent, ObjectEvent, hint_keys, parse


def s3_record(key: str, bucket: str = "videos", name: str = "ObjectCreated:Put") -> dict:
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-01-01T00:00:00.000Z",
        "eventName": name,
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "videopipe",
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {"key": key, "size": 5, "eTag": "b1946ac92492d2347c6235b4d2611184"},
        },
    }


def body(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def minio_body(key: str) -> bytes:
    """MinIO's webhook body: a summary, then the S3 records with the key URL-encoded."""
    record = s3_record(quote_plus(key), name="s3:ObjectCreated:Put")
    record["eventSource"] = "minio:s3"
    record["s3"]["object"]["userMetadata"] = {"content-type": "video/mp4"}
    record["source"] = {"host": "10.0.0.1", "port": "", "userAgent": "MinIO (linux; amd64)"}
    return body({"EventName": "s3:ObjectCreated:Put", "Key": f"videos/{key}", "Records": [record]})


def sns(inner: Any) -> bytes:
    return body(
        {
            "Type": "Notification",
            "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:videos",
            "Subject": "Amazon S3 Notification",
            "Message": json.dumps(inner),
            "Timestamp": "2026-01-01T00:00:00.000Z",
        }
    )


def eventbridge(key: str, detail_type: str = "Object Created") -> bytes:
    return body(
        {
            "version": "0",
            "id": "17793124-05d4-b198-2fde-7ededc63b103",
            "detail-type": detail_type,
            "source": "aws.s3",
            "account": "111122223333",
            "time": "2026-01-01T00:00:00Z",
            "region": "us-east-1",
            "resources": ["arn:aws:s3:::videos"],
            "detail": {
                "version": "0",
                "bucket": {"name": "videos"},
                "object": {"key": key, "size": 5, "etag": "b1946ac9", "sequencer": "617f0829"},
                "request-id": "N4N7GDK58NMKJ12R",
                "requester": "111122223333",
                "reason": "PutObject",
            },
        }
    )


def pubsub(attributes: dict[str, str], resource: dict | None = None) -> bytes:
    data = base64.b64encode(json.dumps(resource).encode()).decode() if resource else ""
    return body(
        {
            "message": {
                "attributes": {"notificationConfig": "projects/_/buckets/videos/x", **attributes},
                "data": data,
                "messageId": "2070443601311540",
                "publishTime": "2026-01-01T00:00:00.000Z",
            },
            "subscription": "projects/p/subscriptions/videopipe",
        }
    )


def created(*keys: str, bucket: str = "videos") -> list[ObjectEvent]:
    return [ObjectEvent(bucket, k, CREATED) for k in keys]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (body({"Records": [s3_record("pending/a.mp4")]}), created("pending/a.mp4")),
        (body({"Records": [s3_record("pending/my+talk.mp4")]}), created("pending/my talk.mp4")),
        (body({"Records": [s3_record("pending/a%2Bb.mp4")]}), created("pending/a+b.mp4")),
        (
            body({"Records": [s3_record("pending/%D0%9B%D0%B5%D0%BA.mp4")]}),
            created("pending/Лек.mp4"),
        ),
        (
            body(
                {
                    "Records": [
                        s3_record("pending/x.mp4", name="ObjectCreated:CompleteMultipartUpload")
                    ]
                }
            ),
            created("pending/x.mp4"),
        ),
        (minio_body("pending/лекция 1.mp4"), created("pending/лекция 1.mp4")),
        (
            body({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "videos"}),
            [],
        ),
        (sns({"Records": [s3_record("pending/b+c.mp4")]}), created("pending/b c.mp4")),
        (sns({"Service": "Amazon S3", "Event": "s3:TestEvent"}), []),
        (eventbridge("pending/talk.mp4"), created("pending/talk.mp4")),
        (eventbridge("pending/my%20talk+1.mp4"), created("pending/my talk+1.mp4")),
        (eventbridge("pending/talk.mp4", detail_type="Object Deleted"), []),
        (
            pubsub(
                {
                    "eventType": "OBJECT_FINALIZE",
                    "bucketId": "videos",
                    "objectId": "pending/a b+c.mp4",
                }
            ),
            created("pending/a b+c.mp4"),
        ),
        (
            pubsub({"eventType": "OBJECT_FINALIZE"}, {"bucket": "videos", "name": "pending/л.mp4"}),
            created("pending/л.mp4"),
        ),
        (pubsub({"eventType": "OBJECT_DELETE", "bucketId": "videos", "objectId": "pending/a"}), []),
        (
            body({"Records": [s3_record("pending/a.mp4", name="ObjectRemoved:Delete")]}),
            [],
        ),
        (
            body({"Records": [s3_record("pending/a.mp4", name="s3:ObjectRemoved:Delete")]}),
            [],
        ),
        (body({"Records": []}), []),
    ],
    ids=[
        "aws",
        "plus-is-space",
        "encoded-plus",
        "utf8",
        "multipart",
        "minio",
        "test-event",
        "sns",
        "sns-test-event",
        "eventbridge",
        "eventbridge-percent",
        "eventbridge-deleted",
        "pubsub-attributes",
        "pubsub-data",
        "pubsub-delete",
        "delete",
        "minio-delete",
        "no-records",
    ],
)
def test_parse(raw: bytes, expected: list[ObjectEvent]) -> None:
    assert parse(raw) == expected


def test_a_batch_keeps_the_created_ones_in_order() -> None:
    records = [
        s3_record("pending/1.mp4"),
        s3_record("pending/2.mp4", name="ObjectRemoved:Delete"),
        s3_record("pending/3.mp4", bucket="other"),
    ]
    assert parse(body({"Records": records})) == [
        ObjectEvent("videos", "pending/1.mp4"),
        ObjectEvent("other", "pending/3.mp4"),
    ]


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"not json at all", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "JSON list, not an object"),
        (b'"Records"', "JSON str, not an object"),
        (body({"hello": "world"}), "unknown event shape"),
        (body({"Records": {"a": 1}}), "'Records' is not a list"),
        (body({"Records": [{"s3": {}}]}), "Records[0] has no 'eventName'"),
        (body({"Records": ["x"]}), "Records[0] has no 'eventName'"),
        (body({"Records": [{"eventName": "ObjectCreated:Put", "s3": {}}]}), "lacks s3.bucket"),
        (
            body({"Type": "SubscriptionConfirmation", "TopicArn": "arn:aws:sns:x", "Message": "m"}),
            "SubscribeURL",
        ),
        (
            body({"Type": "Notification", "TopicArn": "t", "Message": "{"}),
            "SNS 'Message' is not JSON",
        ),
        (sns({"Type": "Notification", "TopicArn": "t", "Message": "{}"}), "inside an SNS"),
        (body({"detail-type": "Object Created", "source": "aws.ec2"}), "expected source 'aws.s3'"),
        (
            body({"detail-type": "Object Created", "source": "aws.s3", "detail": {}}),
            "detail.object.key",
        ),
        (body({"message": {"data": ""}, "subscription": "s"}), "attributes.eventType"),
        (pubsub({"eventType": "OBJECT_FINALIZE"}), "without bucketId/objectId"),
        (
            body(
                {
                    "message": {"attributes": {"eventType": "OBJECT_FINALIZE"}, "data": "!!"},
                    "subscription": "s",
                }
            ),
            "not base64 JSON",
        ),
    ],
)
def test_malformed_says_what_was_expected(raw: bytes, says: str) -> None:
    with pytest.raises(MalformedEvent) as caught:
        parse(raw)
    assert says in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_hint_keys_keeps_this_buckets_pending_videos() -> None:
    events = [
        ObjectEvent("videos", "talks/pending/a.mp4"),
        ObjectEvent("videos", "talks/pending/sub/b.mp4"),
        ObjectEvent("videos", "talks/pending/a.mp4"),  # a duplicate: one key
        ObjectEvent("other", "talks/pending/c.mp4"),  # another bucket
        ObjectEvent("videos", "talks/processing/d.mp4"),  # another folder
        ObjectEvent("videos", "pending/e.mp4"),  # outside the root prefix
        ObjectEvent("videos", "talks/pending/sub/"),  # a folder marker
        ObjectEvent("videos", "talks/pending/"),  # the folder itself
        ObjectEvent("videos", "talks/pending/f.mp4", kind="removed"),
    ]
    keys = hint_keys(events, "videos", Layout("talks"))
    assert keys == {"talks/pending/a.mp4", "talks/pending/sub/b.mp4"}


def test_hint_keys_from_a_parsed_body_at_the_bucket_root() -> None:
    raw = body({"Records": [s3_record("pending/%D0%9B%D0%B5+1.mp4"), s3_record("results/x.json")]})
    assert hint_keys(parse(raw), "videos", Layout()) == {"pending/Ле 1.mp4"}
