"""Webhook deliveries as VideoJob status, pure: what to record on an outcome, and after a try.

A delivery is recorded in `status.notifications` in the same write that commits the outcome
(`phases.terminal_status`, `phases.running_status`), so it exists before the first try and
survives an operator restart: the event itself is stored with it, and a retry after a restart
sends the same bytes with the same id. Entries are keyed by delivery id in a map, so that the
delivery threads (`deliveries`) and the reconcile pass patch different keys of one object and
never overwrite each other's writes (a JSON merge patch replaces lists but merges maps).

An entry: `state` (Pending, Delivered, Abandoned), `url`, `secretRef`, `event` (the CloudEvent;
dropped once the entry is final, to keep the object small), `tries`, `createdAt`, `nextTryAt`,
`lastError`, `deliveredAt`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from videopipe import webhooks
from videopipe.layout import Folder

from videopipe_operator.specs import VideoJobView

Json = dict[str, Any]

PENDING, DELIVERED, ABANDONED = "Pending", "Delivered", "Abandoned"
MAX_ERROR = 512  # characters of a receiver's complaint kept in the status


def iso(when: datetime) -> str:
    """RFC 3339 to the millisecond: a retry due in 0.8 s must not read as due now."""
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def source_uri(namespace: str, source: str) -> str:
    """The CloudEvents `source` of a VideoSource's events: its API path."""
    return f"/apis/videopipe.dev/v1alpha1/namespaces/{namespace}/videosources/{source}"


def delivery_id(event_id: str, url: str) -> str:
    """One event to one receiver (a map key, so also a valid JSON key of bounded length)."""
    return hashlib.sha256(f"{event_id}\n{url}".encode()).hexdigest()[:24]


# Where the video is when each outcome is told: the key a receiver can read it at.
FOLDER_OF = {
    webhooks.Outcome.STARTED: Folder.PROCESSING,
    webhooks.Outcome.SUCCEEDED: Folder.COMPLETED,
    webhooks.Outcome.FAILED: Folder.FAILED,
}


def event_data(vj: VideoJobView, outcome: webhooks.Outcome, status: Mapping[str, Any]) -> Json:
    """What a receiver learns of the outcome: where the video is, how it went, the results."""
    data: Json = {
        "bucket": vj.storage.bucket,
        "key": vj.storage.layout.key(FOLDER_OF[outcome], vj.path),
        "path": vj.path,
        "attempt": vj.attempt,
        "videoJob": vj.name,
        "reason": status.get("reason"),
        "message": status.get("message"),
        "audioSeconds": status.get("audioSeconds"),
        "language": status.get("language"),
        "processingSeconds": status.get("durationSeconds"),
        "results": status.get("results"),
    }
    return {k: v for k, v in data.items() if v is not None}


def record(vj: VideoJobView, outcome: webhooks.Outcome, status_patch: Json, now: datetime) -> Json:
    """The `status.notifications` entries of one outcome (empty when no webhook wants it)."""
    merged = {**vj.status, **status_patch}
    entries: Json = {}
    targets = [n for n in vj.notifications if outcome.value in n.events]
    if not targets:
        return entries
    event = webhooks.cloud_event(
        outcome,
        source=source_uri(vj.namespace, vj.source),
        path=vj.path,
        identity=vj.identity,
        attempt=vj.attempt,
        data=event_data(vj, outcome, merged),
        time=now,
    )
    known = vj.status.get("notifications") or {}
    for target in targets:
        did = delivery_id(event["id"], target.url)
        if did in known:
            continue  # recorded by an earlier write of this outcome (a pass that crashed)
        entries[did] = {
            "state": PENDING,
            "url": target.url,
            "secretRef": target.secret.to_spec(),
            "event": event,
            "tries": 0,
            "createdAt": iso(now),
            "nextTryAt": iso(now),
        }
    return entries


def with_notifications(
    vj: VideoJobView, outcome: webhooks.Outcome, status_patch: Json, now: datetime
) -> Json:
    """`status_patch` plus the outcome's deliveries, if any."""
    entries = record(vj, outcome, status_patch, now)
    return {**status_patch, "notifications": entries} if entries else status_patch


def pending(status: Mapping[str, Any]) -> list[tuple[str, Json]]:
    return [
        (did, entry)
        for did, entry in (status.get("notifications") or {}).items()
        if (entry or {}).get("state") == PENDING and entry.get("event")
    ]


def after_try(
    entry: Mapping[str, Any],
    attempt: webhooks.Attempt,
    now: datetime,
    policy: webhooks.DeliveryPolicy,
) -> Json:
    """The merge patch of one entry after a try: delivered, abandoned, or due again later."""
    tries = int(entry.get("tries") or 0) + 1
    created = parse_time(entry.get("createdAt")) or now
    verdict = webhooks.decide(created.timestamp(), now.timestamp(), attempt, tries, policy)
    patch: Json = {"tries": tries, "lastTryAt": iso(now)}
    if attempt.error:
        patch["lastError"] = attempt.error[:MAX_ERROR]
    if verdict.state is webhooks.DeliveryState.DELIVERED:
        patch.update(state=DELIVERED, deliveredAt=iso(now), event=None, nextTryAt=None)
    elif verdict.state is webhooks.DeliveryState.ABANDONED:
        patch.update(state=ABANDONED, event=None, nextTryAt=None)
        patch["lastError"] = (verdict.reason or attempt.error)[:MAX_ERROR]
    else:
        assert verdict.retry_at is not None
        patch["nextTryAt"] = iso(datetime.fromtimestamp(verdict.retry_at, UTC))
    return patch


def parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


__all__ = [
    "ABANDONED",
    "DELIVERED",
    "PENDING",
    "after_try",
    "delivery_id",
    "event_data",
    "iso",
    "parse_time",
    "pending",
    "record",
    "source_uri",
    "with_notifications",
]
