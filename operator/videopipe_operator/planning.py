"""Pure decisions of one reconcile pass: what to discover, what to start, what to prune.

Backpressure lives here. A source may have at most `maxConcurrentJobs` unfinished Jobs (counted
from the Job objects themselves, so a Job whose VideoJob has not recorded it yet still counts)
and at most `maxConcurrentJobs + queueWindow` unfinished VideoJobs; the rest of the backlog
waits in S3 as plain objects, not as ten thousand custom resources. Discovery is oldest-first
(upload time, then key), so a long backlog drains in the order it arrived.

One video path is served by one VideoJob at a time: a new upload over a path whose previous
content is still being processed waits, so two VideoJobs never race for `processing/<path>`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from videopipe.layout import Folder, Layout
from videopipe.store import ObjectInfo

from videopipe_operator import naming
from videopipe_operator.constants import Phase
from videopipe_operator.specs import VideoJobView

_EPOCH = datetime.min.replace(tzinfo=UTC)


@dataclass
class Discovery:
    backlog: int = 0  # objects in pending/ (videos only)
    candidates: list[tuple[ObjectInfo, VideoJobView | None]] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)  # keys that cannot be processed as named
    waiting_for_path: int = 0  # new content over a path that is still being processed
    claimed: int = 0  # already has an active VideoJob (or one being deleted)


def pending_order(objects: Iterable[ObjectInfo]) -> list[ObjectInfo]:
    """Oldest upload first; the key breaks ties so the order is stable."""
    return sorted(objects, key=lambda o: (o.last_modified or _EPOCH, o.key))


def plan_discovery(
    source: str,
    layout: Layout,
    objects: Iterable[ObjectInfo],
    videojobs: Iterable[VideoJobView],
    budget: int,
    fits: Callable[[str], bool],
) -> Discovery:
    """Which pending objects get a VideoJob (new, or a finished one re-armed) this pass.

    A candidate is `(object, existing VideoJob or None)` named from the listed ETag. The caller
    reads the object's metadata before acting, since a copy's identity may differ (see
    `videopipe.store`). At most `budget` candidates are returned.
    """
    by_name = {vj.name: vj for vj in videojobs}
    busy_paths = {vj.path for vj in by_name.values() if vj.active}
    out = Discovery()
    for obj in pending_order(objects):
        out.backlog += 1
        try:
            path = layout.path_of(obj.key, Folder.PENDING)
        except ValueError:
            out.invalid.append(obj.key)
            continue
        if not fits(path):
            out.invalid.append(obj.key)
            continue
        existing = by_name.get(naming.videojob_name(source, obj.key, obj.etag))
        if existing is not None and (existing.active or existing.deleting):
            out.claimed += 1
            continue  # claimed already (queued or running), or on its way out
        if path in busy_paths:
            out.waiting_for_path += 1
            continue
        if len(out.candidates) < budget:
            out.candidates.append((obj, existing))
            busy_paths.add(path)
    return out


def is_unfinished_job(job: Mapping) -> bool:
    """A Job without a true Complete or Failed condition still holds a slot."""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return False
    return True


def plan_starts(
    videojobs: Iterable[VideoJobView],
    job_names: Iterable[str],
    unfinished_jobs: int,
    max_concurrent: int,
) -> list[VideoJobView]:
    """VideoJobs to start now, in order: first those whose Job already exists (a crash between
    creating the Job and recording it), then the longest-waiting, while slots are free."""
    existing = set(job_names)
    waiting = sorted(
        (
            vj
            for vj in videojobs
            if not vj.deleting and vj.effective_phase in (Phase.PENDING, Phase.QUEUED)
        ),
        key=lambda vj: (vj.status.get("queuedAt") or vj.created, vj.name),
    )
    resumed = [vj for vj in waiting if naming.job_name(vj.name, vj.attempt) in existing]
    fresh = [vj for vj in waiting if naming.job_name(vj.name, vj.attempt) not in existing]
    return resumed + fresh[: max(0, max_concurrent - unfinished_jobs)]


def plan_prune(
    videojobs: Iterable[VideoJobView], successful_limit: int, failed_limit: int
) -> list[VideoJobView]:
    """Finished VideoJobs beyond the history limits, oldest first; never one whose webhook
    deliveries are still pending (it holds their state: pruning it would lose them)."""
    done = [
        vj
        for vj in videojobs
        if not vj.deleting and vj.effective_phase.terminal and not vj.deliveries_pending
    ]
    done.sort(key=lambda vj: (vj.status.get("finishedAt") or vj.created, vj.name), reverse=True)
    succeeded = [vj for vj in done if vj.effective_phase is Phase.SUCCEEDED]
    failed = [vj for vj in done if vj.effective_phase is Phase.FAILED]
    extra = succeeded[successful_limit:] + failed[failed_limit:]
    return sorted(extra, key=lambda vj: (vj.status.get("finishedAt") or vj.created, vj.name))


__all__ = [
    "Discovery",
    "is_unfinished_job",
    "pending_order",
    "plan_discovery",
    "plan_prune",
    "plan_starts",
]
