"""Backpressure and order: discovery within the window, starts within maxConcurrentJobs, pruning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from videopipe.layout import Layout
from videopipe.store import ObjectInfo
from videopipe_operator import naming
from videopipe_operator.planning import (
    is_unfinished_job,
    plan_discovery,
    plan_prune,
    plan_starts,
)
from videopipe_operator.specs import VideoJobView

from tests.operator.builders import videojob_body

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def obj(name: str, minute: int = 0, etag: str | None = None) -> ObjectInfo:
    return ObjectInfo(
        key=f"pending/{name}",
        etag=etag or f"etag-{name}",
        size=1000,
        last_modified=T0 + timedelta(minutes=minute),
    )


def vj(name: str, phase: str | None, etag: str | None = None, **status) -> VideoJobView:
    st = dict(status)
    if phase:
        st["phase"] = phase
        st.setdefault("observedGeneration", 1)
    return VideoJobView.parse(
        videojob_body(key=f"pending/{name}", etag=etag or f"etag-{name}", status=st)
    )


def plan(objects, vjs, budget=10, fits=lambda p: True):
    return plan_discovery("talks", Layout(""), objects, vjs, budget, fits)


def test_discovery_is_oldest_first_and_bounded() -> None:
    result = plan([obj("c", 3), obj("a", 1), obj("b", 2), obj("d", 4)], [], budget=2)
    assert [o.key for o, _ in result.candidates] == ["pending/a", "pending/b"]
    assert result.backlog == 4


def test_discovery_skips_claimed_and_rearms_finished() -> None:
    vjs = [vj("running.mp4", "Running"), vj("failed.mp4", "Failed")]
    result = plan([obj("running.mp4"), obj("failed.mp4"), obj("new.mp4")], vjs)
    found = {o.key: (existing.name if existing else None) for o, existing in result.candidates}
    assert "pending/running.mp4" not in found
    assert found["pending/failed.mp4"] == vjs[1].name
    assert found["pending/new.mp4"] is None


def test_new_content_waits_while_the_same_path_is_processed() -> None:
    busy = vj("a.mp4", "Running", etag="v1")
    result = plan([obj("a.mp4", etag="v2")], [busy])
    assert result.candidates == [] and result.waiting_for_path == 1


def test_two_versions_of_one_path_are_not_claimed_in_one_pass() -> None:
    result = plan([obj("a.mp4", 1, etag="v1"), ObjectInfo("pending/a.mp4", "v2", 1)], [])
    assert len(result.candidates) == 1


def test_invalid_keys_are_reported_not_claimed() -> None:
    result = plan([obj("ok.mp4"), obj("long.mp4")], [], fits=lambda p: p != "long.mp4")
    assert result.invalid == ["pending/long.mp4"]
    assert [o.key for o, _ in result.candidates] == ["pending/ok.mp4"]


def test_a_retry_is_pending_until_queued_again() -> None:
    finished = vj("a.mp4", "Failed", observedGeneration=1)
    rearmed = VideoJobView.parse(
        {**finished.raw, "metadata": {**finished.raw["metadata"], "generation": 2}}
    )
    assert not finished.active and rearmed.active
    assert rearmed.effective_phase.value == "Pending"


def job(name: str, condition: str | None = None) -> dict:
    conds = [{"type": condition, "status": "True"}] if condition else []
    return {"metadata": {"name": name}, "status": {"conditions": conds}}


@pytest.mark.parametrize(
    ("condition", "unfinished"),
    [
        (None, True),
        ("Complete", False),
        ("Failed", False),
        ("FailureTarget", True),
        ("SuccessCriteriaMet", True),
    ],
)
def test_unfinished_job(condition: str | None, unfinished: bool) -> None:
    assert is_unfinished_job(job("j", condition)) is unfinished


def test_starts_fill_free_slots_in_queue_order() -> None:
    queued = [
        vj("b.mp4", "Queued", queuedAt="2025-01-01T00:02:00Z"),
        vj("a.mp4", "Queued", queuedAt="2025-01-01T00:01:00Z"),
        vj("c.mp4", None),
    ]
    chosen = plan_starts(queued, [], unfinished_jobs=1, max_concurrent=3)
    assert [v.path for v in chosen] == ["a.mp4", "b.mp4"]
    assert plan_starts(queued, [], unfinished_jobs=3, max_concurrent=3) == []


def test_a_started_but_unrecorded_job_is_resumed_even_when_full() -> None:
    queued = [vj("a.mp4", "Queued"), vj("b.mp4", "Queued")]
    existing = [naming.job_name(queued[1].name, 1)]
    chosen = plan_starts(queued, existing, unfinished_jobs=5, max_concurrent=2)
    assert [v.path for v in chosen] == ["b.mp4"]


def test_prune_keeps_the_newest_per_outcome() -> None:
    vjs = [vj(f"s{i}.mp4", "Succeeded", finishedAt=f"2025-01-01T00:0{i}:00Z") for i in range(4)] + [
        vj(f"f{i}.mp4", "Failed", finishedAt=f"2025-01-01T00:0{i}:00Z") for i in range(2)
    ]
    vjs.append(vj("r.mp4", "Running"))
    pruned = [v.path for v in plan_prune(vjs, successful_limit=2, failed_limit=1)]
    assert sorted(pruned) == ["f0.mp4", "s0.mp4", "s1.mp4"]
