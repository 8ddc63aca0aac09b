"""The judgement behind the probes: the watch audit, readiness, and the liveness verdict's log.

Pure logic with a settable clock; `tests/e2e/test_probes.py` breaks the real things (a stream
that a middlebox stops forwarding, a hung S3 endpoint, a frozen API server).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from videopipe_operator.constants import LABEL_MANAGED_BY, MANAGER
from videopipe_operator.health import Health
from videopipe_operator.readiness import Readiness
from videopipe_operator.watches import WatchAudit

Json = dict[str, Any]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def obj(name: str, version: str, namespace: str = "ns", **labels: str) -> Json:
    return {
        "metadata": {
            "namespace": namespace,
            "name": name,
            "resourceVersion": version,
            "labels": labels,
        }
    }


def event(kind: str, body: Json) -> Json:
    return {"type": kind, "object": body}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def audit(clock: Clock) -> WatchAudit:
    return WatchAudit(silence_seconds=60, clock=clock)


def test_a_change_the_watch_delivers_is_fine(audit: WatchAudit, clock: Clock) -> None:
    audit.delivered("videosources", event("ADDED", obj("a", "1")))
    audit.listed("videosources", [obj("a", "1")])  # as delivered: nothing to wait for
    audit.listed("videosources", [obj("a", "2")])  # our status patch...
    clock.now += 30
    audit.delivered("videosources", event("MODIFIED", obj("a", "2")))  # ...comes back
    clock.now += 300
    assert audit.check() is None


def test_a_change_the_watch_never_delivers_is_silence(audit: WatchAudit, clock: Clock) -> None:
    audit.delivered("videojobs", event(None, obj("vj", "1")))  # kopf's initial listing
    audit.listed("videojobs", [obj("vj", "5")])
    clock.now += 40
    audit.listed("videojobs", [obj("vj", "6")])  # changed again: still waiting since t=0
    clock.now += 21
    problem = audit.check()
    assert problem is not None
    assert "videojobs ns/vj (resourceVersion 6) for 61 s (allowed 60 s)" in problem
    audit.delivered("videojobs", event("MODIFIED", obj("vj", "6")))
    assert audit.check() is None


def test_objects_that_do_not_change_expect_nothing(audit: WatchAudit, clock: Clock) -> None:
    """An idle cluster, or objects read before kopf ever spoke, never look like silence once
    the watch has caught up; and an idle stream raises no alarm at all."""
    audit.listed("videojobs", [obj("vj", "1")])
    audit.delivered("videojobs", event(None, obj("vj", "1")))
    for _ in range(10):
        clock.now += 100
        audit.listed("videojobs", [obj("vj", "1")])
    assert audit.check() is None


def test_a_stale_read_is_settled_by_the_next_read(audit: WatchAudit, clock: Clock) -> None:
    audit.delivered("videojobs", event("MODIFIED", obj("vj", "7")))
    audit.listed("videojobs", [obj("vj", "6")])  # a read that raced the event
    clock.now += 5
    audit.listed("videojobs", [obj("vj", "7")])
    clock.now += 100
    assert audit.check() is None


def test_deletions_clear_what_was_expected(audit: WatchAudit, clock: Clock) -> None:
    audit.listed("videojobs", [obj("vj", "3")])
    audit.delivered("videojobs", event("DELETED", obj("vj", "4")))
    clock.now += 100
    assert audit.check() is None
    assert not audit.has_delivered("videojobs", "ns", "vj")


def test_jobs_kopf_does_not_watch_are_not_expected(audit: WatchAudit, clock: Clock) -> None:
    """kopf watches only Jobs labelled managed-by videopipe (kopf_settings.py's selector)."""
    audit.listed("jobs", [obj("hand-made", "1"), obj("ours", "2", **{LABEL_MANAGED_BY: MANAGER})])
    clock.now += 61
    problem = audit.check()
    assert problem is not None and "1 change(s)" in problem and "jobs ns/ours" in problem


def test_watch_events_are_counted(audit: WatchAudit) -> None:
    from prometheus_client import REGISTRY

    def count() -> float:
        value = REGISTRY.get_sample_value("videopipe_watch_events_total", {"resource": "jobs"})
        return value or 0.0

    before = count()
    audit.delivered("jobs", event("ADDED", obj("j", "1")))
    assert count() == before + 1


# -- readiness --


class Sources:
    def __init__(self) -> None:
        self.items: list[Json] = []
        self.error: Exception | None = None

    def __call__(self) -> list[Json]:
        if self.error:
            raise self.error
        return self.items


def test_ready_only_once_connected_and_every_source_is_watched(audit: WatchAudit) -> None:
    health, sources = Health(), Sources()
    readiness = Readiness(sources, audit, health)
    sources.error = ConnectionError("connection refused")
    assert "cannot list VideoSources" in (readiness.check() or "")
    sources.error = None
    sources.items = [obj("a", "1"), obj("b", "1")]
    audit.delivered("videosources", event(None, obj("a", "1")))
    assert readiness.check() == "kopf's watch has not delivered 1 VideoSource(s) yet: ns/b"
    sources.items = [obj("a", "1")]  # b was deleted meanwhile: it no longer counts
    assert readiness.check() is None


def test_readiness_thread_marks_ready_and_says_why_not_meanwhile(audit: WatchAudit) -> None:
    from tests.cluster.harness import wait_for

    health, sources = Health(), Sources()
    sources.items = [obj("a", "1")]
    readiness = Readiness(sources, audit, health, retry_seconds=0.01)
    readiness.start()
    try:
        wait_for(lambda: "not delivered" in health.readiness_text, timeout=30)
        assert not health.ready
        audit.delivered("videosources", event(None, obj("a", "1")))
        wait_for(lambda: health.ready, timeout=30)
        assert health.readiness_text == "ok"
    finally:
        readiness.stop()


# -- liveness verdict --


def test_liveness_changes_are_logged_once_each(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    health = Health(liveness_polls=1, grace_seconds=10, clock=clock)
    health.beat("ns/a", 1)
    caplog.set_level(logging.WARNING, logger="videopipe_operator.health")
    clock.now += 11
    assert health.problems() and health.problems()
    health.beat("ns/a", 1)
    assert health.problems() == [] and health.problems() == []
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert messages[0].startswith("liveness failing (/healthz 503): ns/a: no pass for 11 s")
    assert messages[1] == "liveness recovered (/healthz 200)"
