"""Bucket events wake the real operator within seconds; polling still finds what an event lost.

Real: the operator on the control plane, moto's S3 notifying moto's SQS (a TestEvent first,
URL-encoded keys, the prefix filter honoured), and HTTP pushes sent with a real HTTP client in
the bodies MinIO and a Pub/Sub push subscription send. The poll interval is an hour where a
test proves that an event, not a listing, found the video.
"""

from __future__ import annotations

import base64
import http.client
import json
import time
import urllib.parse
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.e2e.conftest import Operator, Videopipe
from tests.e2e.test_notifications import metric

pytestmark = pytest.mark.cluster

TOKEN = "push-token-for-tests-0123456789"


def sqs_client(endpoint: str) -> Any:
    return boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")


def notify_queue(videopipe: Videopipe, name: str) -> tuple[str, Any]:
    """A queue that the bucket notifies of uploads to pending/ (as an AWS user sets it up)."""
    sqs = sqs_client(videopipe.s3_endpoint)
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    videopipe.s3.put_bucket_notification_configuration(
        Bucket=videopipe.bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "pending/"}]}},
                }
            ]
        },
    )
    return url, sqs


def in_queue(sqs: Any, url: str) -> int:
    attrs = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(
        attrs["ApproximateNumberOfMessagesNotVisible"]
    )


def first_listing(videopipe: Videopipe) -> None:
    """Until the source's first pass (a full listing) is over: later uploads are the events'."""
    videopipe.wait(
        lambda: (videopipe.source().get("status") or {}).get("lastPollTime"),
        timeout=60,
        message="the first pass",
    )


def discovered(op: Operator, videopipe: Videopipe, via: str) -> float:
    text = op.get("/metrics", port=op.metrics_port)[1]
    label = f"{videopipe.namespace}/talks"
    return metric(text, "videopipe_videojobs_discovered_total", source=label, via=via)


def test_an_sqs_event_dispatches_an_upload_without_waiting_for_the_poll(
    videopipe: Videopipe, talk_videos: dict[str, Path]
) -> None:
    url, sqs = notify_queue(videopipe, f"uploads-{videopipe.namespace}")
    videopipe.create_source(
        pollIntervalSeconds=3600,
        events={"sqs": {"queueUrl": url, "endpoint": videopipe.s3_endpoint}},
    )
    op = videopipe.start_operator()
    first_listing(videopipe)
    path = "лекции/week 1+2.mp4"  # S3 encodes both the Cyrillic and the "+"
    uploaded = time.monotonic()
    videopipe.upload(path, talk_videos["hello"])
    vj = videopipe.wait(lambda: videopipe.videojob_for(path), timeout=30, message="a VideoJob")
    waited = time.monotonic() - uploaded
    assert waited < 30, waited  # an hour-long poll interval: only the event can explain it
    assert vj["spec"]["key"] == f"pending/{path}"
    # The counter follows the VideoJob's creation (and its Event) by a moment.
    videopipe.wait(lambda: discovered(op, videopipe, "event") == 1, timeout=10, message="counted")
    assert discovered(op, videopipe, "poll") == 0
    # The message is deleted once its pass has run (the TestEvent at once).
    videopipe.wait(lambda: in_queue(sqs, url) == 0, timeout=30, message="the queue drained")
    videopipe.wait(
        lambda: path in videopipe.keys("completed"), timeout=240, message="the video completed"
    )
    ready = next(c for c in videopipe.source()["status"]["conditions"] if c["type"] == "Ready")
    assert "taking bucket events" in ready["message"]


def test_an_event_lost_on_the_way_is_picked_up_by_the_next_poll(
    videopipe: Videopipe, talk_videos: dict[str, Path]
) -> None:
    # The bucket notifies a queue the test drains: the operator's own queue never hears of the
    # upload, as when a store drops an event (minio#18404) or a message expires unread.
    lost_url, sqs = notify_queue(videopipe, f"lost-{videopipe.namespace}")
    own_url = sqs.create_queue(QueueName=f"own-{videopipe.namespace}")["QueueUrl"]
    videopipe.create_source(
        pollIntervalSeconds=5,
        events={"sqs": {"queueUrl": own_url, "endpoint": videopipe.s3_endpoint}},
    )
    op = videopipe.start_operator()
    videopipe.wait_polls(1)
    videopipe.upload("lost.mp4", talk_videos["weather"])
    for message in sqs.receive_message(QueueUrl=lost_url, MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        sqs.delete_message(QueueUrl=lost_url, ReceiptHandle=message["ReceiptHandle"])
    videopipe.wait(lambda: videopipe.videojob_for("lost.mp4"), timeout=60, message="polled")
    videopipe.wait(lambda: discovered(op, videopipe, "poll") == 1, timeout=10, message="counted")
    assert discovered(op, videopipe, "event") == 0


def passes(op: Operator, videopipe: Videopipe) -> float:
    text = op.get("/metrics", port=op.metrics_port)[1]
    label = f"{videopipe.namespace}/talks"
    return metric(text, "videopipe_poll_duration_seconds_count", source=label)


def push(
    op: Operator, videopipe: Videopipe, body: bytes, source: str = "talks", token: str = TOKEN
) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", op.events_port, timeout=10)
    try:
        conn.request(
            "POST",
            f"/events/{videopipe.namespace}/{source}",
            body=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        answer = conn.getresponse()
        text = answer.read()
        return answer.status, json.loads(text) if text else None
    finally:
        conn.close()


def minio_event(bucket: str, key: str) -> bytes:
    return json.dumps(
        {
            "EventName": "s3:ObjectCreated:Put",
            "Key": f"{bucket}/{key}",
            "Records": [
                {
                    "eventVersion": "2.0",
                    "eventSource": "minio:s3",
                    "eventName": "s3:ObjectCreated:Put",
                    "s3": {
                        "bucket": {"name": bucket},
                        "object": {"key": urllib.parse.quote_plus(key, safe="/"), "size": 1},
                    },
                }
            ],
        }
    ).encode()


def pubsub_push(bucket: str, key: str) -> bytes:
    resource = {"bucket": bucket, "name": key, "size": "1"}
    return json.dumps(
        {
            "message": {
                "attributes": {
                    "eventType": "OBJECT_FINALIZE",
                    "bucketId": bucket,
                    "objectId": key,
                    "payloadFormat": "JSON_API_V1",
                },
                "data": base64.b64encode(json.dumps(resource).encode()).decode(),
                "messageId": "1234567890",
            },
            "subscription": "projects/p/subscriptions/videopipe",
        }
    ).encode()


def test_pushed_events_from_minio_and_pubsub_dispatch_and_bad_pushes_change_nothing(
    videopipe: Videopipe, talk_videos: dict[str, Path]
) -> None:
    videopipe.create_secret("events", token=TOKEN)
    videopipe.create_source(
        pollIntervalSeconds=3600,
        events={"http": {"tokenSecretRef": {"name": "events", "key": "token"}}},
    )
    op = videopipe.start_operator(VIDEOPIPE_EVENTS_MAX_BODY_BYTES="4096")
    first_listing(videopipe)
    bucket = videopipe.bucket
    videopipe.upload("from minio.mp4", talk_videos["hello"])
    videopipe.upload("from gcs/clip.mp4", talk_videos["numbers"])
    # A wrong token, an oversized body and a malformed one: a clear 4xx, nothing hinted.
    status, doc = push(op, videopipe, minio_event(bucket, "pending/from minio.mp4"), token="no")
    assert status == 401 and doc["error"]
    status, doc = push(op, videopipe, b'{"Records": [' + b" " * 10_000 + b"]}")
    assert status == 413 and "over 4096 bytes" in doc["error"]
    status, doc = push(op, videopipe, b"this is not json")
    assert status == 400 and "JSON" in doc["error"]
    time.sleep(2)  # a wrongly taken push would have made a VideoJob by now
    assert videopipe.videojobs() == []
    status, doc = push(op, videopipe, minio_event(bucket, "pending/from minio.mp4"))
    assert status == 200 and doc == {"accepted": 1}
    status, doc = push(op, videopipe, pubsub_push(bucket, "pending/from gcs/clip.mp4"))
    assert status == 200 and doc == {"accepted": 1}
    for path in ("from minio.mp4", "from gcs/clip.mp4"):
        videopipe.wait(lambda p=path: videopipe.videojob_for(p), timeout=30, message=path)
    # A duplicate, an event for a key already claimed, and one for a key that is gone: harmless.
    before = passes(op, videopipe)
    for body in (
        minio_event(bucket, "pending/from minio.mp4"),
        minio_event(bucket, "pending/never uploaded.mp4"),
    ):
        assert push(op, videopipe, body)[0] == 200
    videopipe.wait(lambda: passes(op, videopipe) > before, timeout=30, message="a hinted pass")
    assert sorted(v["spec"]["path"] for v in videopipe.videojobs()) == [
        "from gcs/clip.mp4",
        "from minio.mp4",
    ]
    videopipe.wait(lambda: discovered(op, videopipe, "event") == 2, timeout=10, message="counted")
    text = op.get("/metrics", port=op.metrics_port)[1]
    label = f"{videopipe.namespace}/talks"
    rejected = {
        reason: metric(
            text, "videopipe_events_rejected_total", source=label, kind="http", reason=reason
        )
        for reason in ("Unauthorized", "TooLarge", "Malformed")
    }
    assert rejected == {"Unauthorized": 1, "TooLarge": 1, "Malformed": 1}, rejected
