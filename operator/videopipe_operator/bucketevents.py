"""Bucket event bodies to the object keys they announce: parsing only, no I/O.

An event only wakes a source's loop with a hint; the loop still decides by listing, so what
matters here is to read every format a store sends, to count only new objects, and to say
clearly what was expected when a body is none of them. The formats:

- S3-style `{"Records": [...]}`: AWS S3 to SQS or SNS, MinIO, Ceph RGW, SeaweedFS. `eventName`
  is `ObjectCreated:Put` (AWS) or `s3:ObjectCreated:Put` (MinIO); the key is URL-encoded as
  S3 encodes it (`+` for a space, `%D0%9B` for UTF-8), so `unquote_plus`.
- AWS's `s3:TestEvent`, sent when a notification is configured: nothing to do.
- An SNS envelope (`"Type": "Notification"`) around any of these: unwrapped once.
- EventBridge (`"source": "aws.s3"`, `"detail-type": "Object Created"`).
- Google Cloud Storage through a Pub/Sub push subscription (`eventType: OBJECT_FINALIZE`).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, unquote_plus

from videopipe.layout import Folder, Layout

CREATED = "created"


class MalformedEvent(ValueError):
    """A body that is none of the known event formats; the message says what was expected."""


@dataclass(frozen=True)
class ObjectEvent:
    bucket: str
    key: str
    kind: str = CREATED


def parse(body: bytes) -> list[ObjectEvent]:
    """The object-created events in one event body; other events (deletions, tests) are none."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise MalformedEvent(f"the body is not JSON ({e}); expected a bucket event") from None
    return _parse_document(doc, unwrap_sns=True)


def hint_keys(events: Iterable[ObjectEvent], bucket: str, layout: Layout) -> set[str]:
    """The keys of `events` that are videos in this bucket's `pending/` folder."""
    keys: set[str] = set()
    for event in events:
        if event.kind != CREATED or event.bucket != bucket or not layout.is_video_key(event.key):
            continue
        try:
            layout.path_of(event.key, Folder.PENDING)
        except ValueError:
            continue
        keys.add(event.key)
    return keys


_EXPECTED = (
    "expected an S3 event ({'Records': [...]}), an SNS notification, an EventBridge "
    "'aws.s3' event or a Pub/Sub push message of a Cloud Storage notification"
)


def _parse_document(doc: Any, *, unwrap_sns: bool) -> list[ObjectEvent]:
    if not isinstance(doc, dict):
        raise MalformedEvent(f"the body is a JSON {type(doc).__name__}, not an object; {_EXPECTED}")
    if "Records" in doc:
        return _s3_records(doc["Records"])
    if doc.get("Event") == "s3:TestEvent":
        return []
    if isinstance(doc.get("Type"), str) and ("TopicArn" in doc or "Message" in doc):
        if not unwrap_sns:
            raise MalformedEvent("an SNS message inside an SNS notification; expected one envelope")
        return _sns(doc)
    if "detail-type" in doc:
        return _eventbridge(doc)
    if isinstance(doc.get("message"), dict) and "subscription" in doc:
        return _pubsub_push(doc["message"])
    raise MalformedEvent(f"unknown event shape (keys: {sorted(doc)[:8]}); {_EXPECTED}")


def _s3_records(records: Any) -> list[ObjectEvent]:
    if not isinstance(records, list):
        raise MalformedEvent("'Records' is not a list; expected a list of S3 event records")
    events = []
    for i, record in enumerate(records):
        name = record.get("eventName") if isinstance(record, dict) else None
        if not isinstance(name, str):
            raise MalformedEvent(f"Records[{i}] has no 'eventName'; expected an S3 event record")
        if not name.removeprefix("s3:").startswith("ObjectCreated:"):
            continue
        bucket = _dig(record, "s3", "bucket", "name")
        key = _dig(record, "s3", "object", "key")
        if not bucket or not key:
            raise MalformedEvent(
                f"Records[{i}] ({name}) lacks s3.bucket.name or s3.object.key; "
                "expected an S3 event record"
            )
        events.append(ObjectEvent(bucket, unquote_plus(key)))
    return events


def _sns(doc: dict[str, Any]) -> list[ObjectEvent]:
    kind = doc.get("Type")
    if kind != "Notification":
        # A SubscriptionConfirmation pushed straight to us: confirming it is the user's step
        # (its SubscribeURL); we never fetch URLs a body names.
        raise MalformedEvent(
            f"an SNS {kind!r} message, not a 'Notification'; subscribe an SQS queue to the topic, "
            "or confirm the subscription by its SubscribeURL"
        )
    message = doc.get("Message")
    if not isinstance(message, str):
        raise MalformedEvent("an SNS notification without a 'Message' string")
    try:
        inner = json.loads(message)
    except json.JSONDecodeError as e:
        raise MalformedEvent(f"the SNS 'Message' is not JSON ({e}); {_EXPECTED}") from None
    return _parse_document(inner, unwrap_sns=False)


def _eventbridge(doc: dict[str, Any]) -> list[ObjectEvent]:
    if doc.get("source") != "aws.s3":
        raise MalformedEvent(
            f"an EventBridge event from {doc.get('source')!r}; expected source 'aws.s3'"
        )
    if doc.get("detail-type") != "Object Created":
        return []
    bucket = _dig(doc, "detail", "bucket", "name")
    key = _dig(doc, "detail", "object", "key")
    if not bucket or not key:
        raise MalformedEvent(
            "an EventBridge 'Object Created' event without detail.bucket.name or detail.object.key"
        )
    # AWS's EventBridge pages (S3 user guide, "EventBridge event message structure") do not
    # say the key is URL-encoded, unlike the notification pages; field reports find it either
    # raw or percent-encoded with %20 for a space and a literal `+`. `unquote` reads both right
    # (a raw key with a literal `%XX` in it is the one loss); `unquote_plus` would turn a real
    # `+` into a space. A wrong hint is harmless: the loop lists pending/ anyway.
    return [ObjectEvent(bucket, unquote(key))]


def _pubsub_push(message: dict[str, Any]) -> list[ObjectEvent]:
    attributes = message.get("attributes")
    if not isinstance(attributes, dict) or "eventType" not in attributes:
        raise MalformedEvent(
            "a Pub/Sub push message without attributes.eventType; expected a Cloud Storage "
            "notification"
        )
    if attributes["eventType"] != "OBJECT_FINALIZE":
        return []
    bucket, key = attributes.get("bucketId"), attributes.get("objectId")
    if not bucket or not key:
        resource = _pubsub_data(message.get("data"))
        bucket = bucket or resource.get("bucket")
        key = key or resource.get("name")
    if not isinstance(bucket, str) or not isinstance(key, str) or not bucket or not key:
        raise MalformedEvent(
            "a Cloud Storage OBJECT_FINALIZE message without bucketId/objectId attributes or "
            "a data object with bucket and name"
        )
    return [ObjectEvent(bucket, key)]  # Cloud Storage names are not encoded


def _pubsub_data(data: Any) -> dict[str, Any]:
    if not isinstance(data, str) or not data:
        return {}
    try:
        resource = json.loads(base64.b64decode(data, validate=True))
    except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise MalformedEvent(f"the Pub/Sub message's data is not base64 JSON ({e})") from None
    return resource if isinstance(resource, dict) else {}


def _dig(doc: Any, *path: str) -> str | None:
    for step in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(step)
    return doc if isinstance(doc, str) else None


__all__ = ["CREATED", "MalformedEvent", "ObjectEvent", "hint_keys", "parse"]
