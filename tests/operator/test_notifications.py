"""Webhook deliveries as VideoJob status: what an outcome records, what a try changes, pruning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from videopipe import webhooks
from videopipe_operator import notifications
from videopipe_operator.planning import plan_prune
from videopipe_operator.specs import VideoJobView

from tests.operator.builders import source_body, videojob_body

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
POLICY = webhooks.DeliveryPolicy(timeout_seconds=1, give_up_after_seconds=3600)
HOOKS = [
    {"url": "https://hooks.example/done", "secretRef": {"name": "hooks", "key": "secret"}},
    {
        "url": "https://hooks.example/all",
        "secretRef": {"name": "hooks", "key": "secret"},
        "events": ["Started", "Succeeded", "Failed"],
    },
]


def view(status: dict | None = None, hooks: list | None = None, **body) -> VideoJobView:
    source = source_body(notifications=HOOKS if hooks is None else hooks)
    return VideoJobView.parse(videojob_body(source=source, status=status or {}, **body))


SUCCEEDED = {
    "phase": "Succeeded",
    "reason": "Succeeded",
    "message": "Transcribed.",
    "audioSeconds": 12.5,
    "language": "en",
    "durationSeconds": 3.2,
    "results": {"transcript": "s3://videos/results/talk.mp4/transcript.json"},
}


def test_an_outcome_is_recorded_for_each_webhook_that_wants_it() -> None:
    vj = view()
    succeeded = notifications.record(vj, webhooks.Outcome.SUCCEEDED, SUCCEEDED, T0)
    started = notifications.record(vj, webhooks.Outcome.STARTED, {}, T0)
    assert sorted(e["url"] for e in succeeded.values()) == sorted(h["url"] for h in HOOKS)
    assert [e["url"] for e in started.values()] == ["https://hooks.example/all"]
    entry = next(iter(succeeded.values()))
    assert entry["state"] == "Pending" and entry["tries"] == 0
    assert entry["nextTryAt"] == "2026-12-01T12:00:00.000Z"
    event = entry["event"]
    assert event["type"] == "dev.videopipe.video.succeeded"
    assert event["source"] == "/apis/videopipe.dev/v1alpha1/namespaces/media/videosources/talks"
    assert event["subject"] == "talk.mp4"
    assert event["data"] == {
        "bucket": "videos",
        "key": "completed/talk.mp4",
        "path": "talk.mp4",
        "attempt": 1,
        "videoJob": vj.name,
        "reason": "Succeeded",
        "message": "Transcribed.",
        "audioSeconds": 12.5,
        "language": "en",
        "processingSeconds": 3.2,
        "results": {"transcript": "s3://videos/results/talk.mp4/transcript.json"},
    }
    assert "secret" not in webhooks.encode(event).decode()


def test_no_webhooks_no_entries_and_the_patch_is_unchanged() -> None:
    vj = view(hooks=[])
    patch = {"phase": "Failed"}
    assert notifications.with_notifications(vj, webhooks.Outcome.FAILED, patch, T0) is patch


def test_the_same_outcome_of_the_same_attempt_has_the_same_id_and_is_recorded_once() -> None:
    first = notifications.record(view(), webhooks.Outcome.SUCCEEDED, SUCCEEDED, T0)
    later = notifications.record(
        view(), webhooks.Outcome.SUCCEEDED, SUCCEEDED, T0 + timedelta(minutes=5)
    )
    assert first.keys() == later.keys()
    assert {e["event"]["id"] for e in first.values()} == {e["event"]["id"] for e in later.values()}
    # Once recorded (a pass that crashed after its status write runs again), nothing is re-armed.
    recorded = view(status={"notifications": first})
    assert notifications.record(recorded, webhooks.Outcome.SUCCEEDED, {}, T0) == {}
    other = notifications.record(view(), webhooks.Outcome.FAILED, SUCCEEDED, T0)
    assert not other.keys() & first.keys()


def entry_of(outcome=webhooks.Outcome.SUCCEEDED) -> dict:
    return next(iter(notifications.record(view(), outcome, SUCCEEDED, T0).values()))


def test_a_delivered_try_drops_the_event_and_keeps_the_trail() -> None:
    patch = notifications.after_try(
        entry_of(), webhooks.Attempt("delivered", 204), T0 + timedelta(seconds=2), POLICY
    )
    assert patch["state"] == "Delivered"
    assert patch["tries"] == 1
    assert patch["event"] is None and patch["nextTryAt"] is None
    assert patch["deliveredAt"] == "2026-12-01T12:00:02.000Z"


def test_a_failed_try_is_due_again_later_until_the_bound() -> None:
    failed = webhooks.Attempt("retry", 503, error="receiver answered 503 Service Unavailable")
    patch = notifications.after_try(entry_of(), failed, T0, POLICY)
    assert "state" not in patch  # still Pending
    due = notifications.parse_time(patch["nextTryAt"])
    assert due is not None and T0 + timedelta(seconds=0.74) < due <= T0 + timedelta(seconds=1.26)
    assert patch["lastError"] == "receiver answered 503 Service Unavailable"
    late = notifications.after_try(entry_of(), failed, T0 + timedelta(seconds=3599.5), POLICY)
    assert late["state"] == "Abandoned"
    assert "gave up after 1 tries" in late["lastError"] and late["event"] is None


def test_a_client_error_is_abandoned_at_once() -> None:
    refused = webhooks.Attempt("give_up", 404, error="receiver answered 404 Not Found")
    patch = notifications.after_try(entry_of(), refused, T0, POLICY)
    assert patch["state"] == "Abandoned"
    assert patch["lastError"] == "receiver answered 404 Not Found"


def test_a_videojob_with_deliveries_pending_is_not_pruned() -> None:
    owed = notifications.record(view(), webhooks.Outcome.SUCCEEDED, SUCCEEDED, T0)
    done = {did: {**e, "state": "Delivered", "event": None} for did, e in owed.items()}
    waiting = view(status={**SUCCEEDED, "observedGeneration": 1, "notifications": owed})
    delivered = view(
        status={**SUCCEEDED, "observedGeneration": 1, "notifications": done}, key="pending/b.mp4"
    )
    assert waiting.deliveries_pending and not delivered.deliveries_pending
    assert notifications.pending(waiting.status) and not notifications.pending(delivered.status)
    pruned = plan_prune([waiting, delivered], successful_limit=0, failed_limit=0)
    assert [vj.name for vj in pruned] == [delivered.name]
