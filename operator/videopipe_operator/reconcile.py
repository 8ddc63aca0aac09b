"""One reconcile pass of a VideoSource: finish, discover, start, prune, report.

The source daemon calls this every poll interval (or sooner, when a Job changes), holding the
source's lock. Everything is read from the cluster and the bucket at the start of the pass; no
memory of earlier passes is trusted. The steps, in order:

1. finish: Running VideoJobs whose Job completed or failed are settled (`outcomes`);
2. discover: `pending/` is listed (paginated) and, within the queue window, new videos get
   VideoJobs and videos moved back from `failed/` re-arm theirs (`discovery`);
3. start: while fewer than `maxConcurrentJobs` Jobs are unfinished, the longest-waiting
   VideoJobs are started (`starts`); the others are marked Queued;
4. prune: finished VideoJobs beyond the history limits are deleted;
5. report: the source's status (Ready, backlog, running, queued), Events on changes, gauges.

A problem with the source as a whole (Secret, bucket, endpoint) skips the S3 steps and shows as
the Ready condition; a problem with one video is logged, counted and retried next pass, and
never stops the others.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from videopipe.settle import KEY_TOO_LONG_MESSAGE
from videopipe.store import Store, StoreError

from videopipe_operator import (
    conditions,
    discovery,
    metrics,
    naming,
    outcomes,
    phases,
    planning,
    sources,
    starts,
)
from videopipe_operator.constants import (
    LABEL_SOURCE,
    LABEL_VIDEOJOB,
    SOURCE_PLURAL,
    VIDEOJOB_PLURAL,
    Condition,
    Phase,
    Reason,
)
from videopipe_operator.context import Context
from videopipe_operator.specs import SourceSpec, Storage, VideoJobView
from videopipe_operator.watches import JOBS

log = logging.getLogger(__name__)
Json = dict[str, Any]
MAX_KEY_EVENTS = 10  # per pass; the condition lists the rest


@dataclass
class PassResult:
    poll_interval: float
    ready: bool
    source: SourceSpec
    listed: bool = False  # pending/ was listed in full (not only the keys events named)
    backlog: int = 0
    running: int = 0
    queued: int = 0
    started: int = 0
    finished: int = 0
    created: int = 0


class ClusterState:
    """The source's VideoJobs and Jobs as listed now; its pods only if someone asks."""

    def __init__(self, ctx: Context, namespace: str, source: str) -> None:
        self._ctx, self._namespace, self._source = ctx, namespace, source
        self.videojobs: list[VideoJobView] = []
        for body in ctx.kube.list_videojobs(namespace, source):
            try:
                self.videojobs.append(VideoJobView.parse(body))
            except (KeyError, ValueError) as e:
                name = body.get("metadata", {}).get("name")
                log.warning("%s/%s: malformed VideoJob ignored: %s", namespace, name, e)
        self.jobs: dict[str, Json] = {
            j["metadata"]["name"]: j for j in ctx.kube.list_jobs(namespace, source)
        }
        self._pods: list[Json] | None = None
        # What was read here must come through kopf's watch too (`watches`: liveness).
        ctx.watches.listed(VIDEOJOB_PLURAL, (vj.raw for vj in self.videojobs))
        ctx.watches.listed(JOBS, self.jobs.values())

    @classmethod
    def read(cls, ctx: Context, namespace: str, source: str) -> ClusterState:
        return cls(ctx, namespace, source)

    @property
    def pods(self) -> list[Json]:
        """Listed once, on first use: only a pass that settles a finished Job needs them."""
        if self._pods is None:
            self._pods = self._ctx.kube.list_pods(self._namespace, self._source)
        return self._pods

    @property
    def unfinished_jobs(self) -> int:
        return sum(1 for job in self.jobs.values() if planning.is_unfinished_job(job))


class Stores:
    """S3 access per storage: the source's own, and any other that a VideoJob snapshotted before
    the source was edited (its video is there, and its Job reads from there)."""

    def __init__(self, ctx: Context, namespace: str, label: str) -> None:
        self._ctx, self._namespace, self._label = ctx, namespace, label
        self._stores: dict[tuple[str | None, ...], Store] = {}

    def add(self, storage: Storage, store: Store) -> None:
        self._stores[storage.key] = store

    def of(self, vj: VideoJobView) -> Store:
        """The VideoJob's store; SourceProblem if its Secret is gone."""
        store = self._stores.get(vj.storage.key)
        if store is None:
            store = sources.connect(
                self._ctx.kube, self._ctx.clients, self._namespace, vj.storage, self._label
            )
            self._stores[vj.storage.key] = store
        return store


def reconcile_source(
    ctx: Context, namespace: str, name: str, hints: Collection[str] = ()
) -> PassResult | None:
    """One pass; None if the VideoSource no longer exists.

    `hints`: keys in `pending/` that bucket events named since the last pass. While the poll
    interval since the last full listing is not up, only these are looked at (HEAD each);
    otherwise `pending/` is listed in full, as without events.
    """
    body = ctx.kube.get_source(namespace, name)
    if body is None:
        return None
    ctx.watches.listed(SOURCE_PLURAL, [body])
    source = SourceSpec.parse(body)
    label = metrics.source_label(namespace, name)
    started_at = time.monotonic()
    result = PassResult(poll_interval=source.poll_interval_seconds, ready=False, source=source)
    problem: sources.SourceProblem | None = None
    invalid: list[str] | None = []  # None: not known this pass (only hinted keys were seen)
    store: Store | None = None
    try:
        store = sources.connect(ctx.kube, ctx.clients, namespace, source.storage, label)
        sources.check_bucket(store, source.storage)
    except sources.SourceProblem as e:
        problem, store = e, None

    stores = Stores(ctx, namespace, label)
    if store is not None:
        stores.add(source.storage, store)
    state = ClusterState.read(ctx, namespace, name)
    # Running Jobs are settled even when the source itself is broken: each VideoJob knows where
    # its video is.
    result.finished = _finish(ctx, stores, state, label)
    if result.finished:  # their slots and paths are free for discovery now
        state = ClusterState.read(ctx, namespace, name)
    if store is not None:
        key = (namespace, name)
        status = body.get("status") or {}
        last_backlog = int(status.get("backlog") or 0)
        edited = status.get("observedGeneration") != source.generation
        result.listed = edited or _list_in_full(ctx, source, key, hints, last_backlog)
        try:
            found, backlog, result.created = _discover(
                ctx, store, source, state, label, hints, listed=result.listed
            )
            if found is None:  # hinted: the last full listing's, plus new uploads left waiting
                backlog += last_backlog
            invalid, result.backlog = found, backlog
            if result.listed:
                ctx.coordination.listed(key)
                metrics.LAST_POLL.labels(source=label).set(time.time())
        except StoreError as e:
            problem = sources.SourceProblem(str(e.reason), f"listing pending/ failed: {e}")
        try:
            sources.check_worker_secrets(ctx.kube, namespace, source.worker)
        except sources.SourceProblem as e:
            problem = problem or e
        try:
            # Only a PersistentVolumeClaim cache can be checked here; a gcsFuse bucket is read
            # with the workers' Workload Identity, not ours (sources.check_model_cache).
            sources.check_model_cache(ctx.kube, namespace, source.worker)
        except sources.SourceProblem as e:
            problem = problem or e
        if result.created:  # new and re-armed VideoJobs may start in this very pass
            state = ClusterState.read(ctx, namespace, name)
        result.started = _start(ctx, stores, source, state, label, can_start=problem is None)
        _prune(ctx, source, state)
        if result.started or result.created:  # for the counts in the status
            state = ClusterState.read(ctx, namespace, name)

    result.ready = problem is None
    result.running = sum(1 for vj in state.videojobs if vj.effective_phase is Phase.RUNNING)
    result.queued = sum(
        1 for vj in state.videojobs if vj.effective_phase in (Phase.PENDING, Phase.QUEUED)
    )
    _report(ctx, body, source, result, problem, invalid, state)
    if ctx.deliveries is not None:  # after a restart, this picks up what was still owed
        for vj in state.videojobs:
            ctx.deliveries.offer(vj)
    metrics.POLL_DURATION.labels(source=label).observe(time.monotonic() - started_at)
    return result


def _finish(ctx: Context, stores: Stores, state: ClusterState, label: str) -> int:
    done = 0
    for vj in state.videojobs:
        if vj.deleting or vj.effective_phase is not Phase.RUNNING:
            continue
        job_name = vj.job_name or naming.job_name(vj.name, vj.attempt)
        job = state.jobs.get(job_name)
        if job is not None and planning.is_unfinished_job(job):
            continue  # still at work: nothing to read
        try:
            if outcomes.finish_if_done(ctx, stores.of(vj), vj, job, state.pods):
                done += 1
        except Exception as e:
            _error(label, vj, "finish", e)
    return done


def _discover(
    ctx: Context,
    store: Store,
    source: SourceSpec,
    state: ClusterState,
    label: str,
    hints: Collection[str],
    *,
    listed: bool,
) -> tuple[list[str] | None, int, int]:
    """Invalid keys, backlog and VideoJobs made. A hinted pass (`listed` False) saw only some
    keys: it gives None for the invalid keys (the last full listing's stand) and, for the
    backlog, only the hinted uploads it left waiting (no slot in the queue window)."""
    if listed:
        objects = list(store.list_pending(limit=ctx.config.max_listed_objects))
    else:
        objects = [o for o in (store.head(k) for k in sorted(hints)) if o is not None]
    vjs = state.videojobs
    active = sum(1 for vj in vjs if vj.active)
    plan = planning.plan_discovery(
        source.name,
        store.layout,
        objects,
        vjs,
        budget=max(0, source.max_active - active),
        fits=store.fits,
    )
    by_name = {vj.name: vj for vj in vjs}
    created = 0
    for obj, existing in plan.candidates:
        try:
            if discovery.create_or_rearm_videojob(ctx, store, source, obj, existing, by_name):
                created += 1
                via = "event" if obj.key in hints else "poll"
                metrics.VIDEOJOBS_DISCOVERED.labels(source=label, via=via).inc()
        except Exception as e:
            _error(label, None, "discover", e, key=obj.key)
    if not listed:
        return None, max(0, plan.backlog - len(plan.invalid) - plan.claimed - created), created
    metrics.BACKLOG.labels(source=label).set(plan.backlog)
    metrics.INVALID_KEYS.labels(source=label).set(len(plan.invalid))
    return plan.invalid, plan.backlog, created


def _list_in_full(
    ctx: Context, source: SourceSpec, key: tuple[str, str], hints: Collection[str], backlog: int
) -> bool:
    """Whether this pass lists `pending/` in full, or looks only at the hinted keys.

    In full when the poll interval since the last full listing is up (or the source was just
    edited, which the caller checks). Before that, a pass
    woken by events looks only at their keys; and so does any other pass (a Job changed) of a
    source that takes events and left nothing waiting at its last listing: its new uploads
    arrive as events, and a full listing would find nothing more. A source with a backlog
    still lists whenever it is woken, since a freed slot goes to its oldest waiting video.
    """
    if ctx.coordination.list_due(key, source.poll_interval_seconds):
        return True
    if hints:
        return False
    return not (source.events.configured and backlog == 0)


def _start(
    ctx: Context,
    stores: Stores,
    source: SourceSpec,
    state: ClusterState,
    label: str,
    can_start: bool,
) -> int:
    running = state.unfinished_jobs
    chosen = (
        planning.plan_starts(state.videojobs, state.jobs, running, source.max_concurrent_jobs)
        if can_start
        else []
    )
    started = 0
    for vj in chosen:
        exists = naming.job_name(vj.name, vj.attempt) in state.jobs
        try:
            if starts.start(ctx, stores.of(vj), source, vj, job_exists=exists):
                started += 1
                running += 0 if exists else 1
        except Exception as e:
            _error(label, vj, "start", e)
    chosen_names = {vj.name for vj in chosen}
    for vj in state.videojobs:
        if vj.deleting or vj.name in chosen_names:
            continue
        if vj.effective_phase in (Phase.PENDING, Phase.QUEUED):
            try:
                starts.queue(ctx, vj, running, source.max_concurrent_jobs)
            except Exception as e:
                _error(label, vj, "queue", e)
    return started


def _prune(ctx: Context, source: SourceSpec, state: ClusterState) -> None:
    for vj in planning.plan_prune(
        state.videojobs, source.jobs.successful_history_limit, source.jobs.failed_history_limit
    ):
        ctx.kube.delete_videojob(vj.namespace, vj.name)
        log.info("%s/%s pruned (history limit)", vj.namespace, vj.name)


def _report(
    ctx: Context,
    body: Json,
    source: SourceSpec,
    result: PassResult,
    problem: sources.SourceProblem | None,
    invalid: list[str] | None,
    state: ClusterState,
) -> None:
    now = phases.iso(ctx.now())
    old = body.get("status") or {}
    conds = old.get("conditions") or []
    was_ready = conditions.find(conds, Condition.READY)
    if problem is None:
        events = " and taking bucket events" if source.events.configured else ""
        message = (
            f"Polling every {source.poll_interval_seconds} s{events}: {result.backlog} waiting, "
            f"{result.running} running, {result.queued} queued."
        )
        conds = conditions.set_condition(
            conds, Condition.READY, True, Reason.POLLING, message, now, source.generation
        )
    else:
        conds = conditions.set_condition(
            conds, Condition.READY, False, problem.reason, problem.message, now, source.generation
        )
    if invalid is None:
        pass  # a hinted pass: KeysValid stays as the last full listing left it
    elif invalid:
        shown = ", ".join(repr(k) for k in invalid[:5])
        more = f" and {len(invalid) - 5} more" if len(invalid) > 5 else ""
        conds = conditions.set_condition(
            conds,
            Condition.KEYS_VALID,
            False,
            Reason.INVALID_KEY,
            f"{len(invalid)} object(s) in pending/ cannot be processed (key too long for the "
            f"folder layout): {shown}{more}. They stay where they are.",
            now,
            source.generation,
        )
    else:
        conds = conditions.set_condition(
            conds, Condition.KEYS_VALID, True, Reason.ALL_KEYS_VALID, "", now, source.generation
        )
    patch: Json = {
        "observedGeneration": source.generation,
        "lastPollTime": now,
        "backlog": result.backlog,
        "running": result.running,
        "queued": result.queued,
        "conditions": conds,
    }
    if invalid is not None:
        patch["invalidKeys"] = len(invalid)
    if problem is None:
        patch["lastSuccessfulPollTime"] = now
    ctx.kube.patch_source_status(source.namespace, source.name, patch)
    _events(ctx, body, source, problem, was_ready, invalid)
    _gauges(source, result, state)


def _events(
    ctx: Context,
    body: Json,
    source: SourceSpec,
    problem: sources.SourceProblem | None,
    was_ready: Json | None,
    invalid: list[str] | None,
) -> None:
    before = (was_ready or {}).get("status")
    if problem is not None and (before != "False" or was_ready.get("reason") != problem.reason):
        ctx.kube.post_event(body, problem.reason, problem.message, warning=True)
    elif problem is None and before != "True":
        ctx.kube.post_event(body, Reason.SOURCE_READY, f"Bucket {source.storage.bucket} reachable.")
    if invalid is None:
        return
    key = (source.namespace, source.name)
    for bad in ctx.coordination.newly_reported(key, invalid)[:MAX_KEY_EVENTS]:
        ctx.kube.post_event(
            body,
            Reason.INVALID_KEY,
            f"{bad!r} cannot be processed: {KEY_TOO_LONG_MESSAGE}; it stays in pending/.",
            warning=True,
        )


def _gauges(source: SourceSpec, result: PassResult, state: ClusterState) -> None:
    label = metrics.source_label(source.namespace, source.name)
    metrics.SOURCE_READY.labels(source=label).set(1 if result.ready else 0)
    metrics.EVENTS_CONFIGURED.labels(source=label).set(1 if source.events.configured else 0)
    metrics.POLL_INTERVAL.labels(source=label).set(source.poll_interval_seconds)
    metrics.QUEUED.labels(source=label).set(result.queued)
    for accel in ("cpu", "gpu"):
        metrics.IN_FLIGHT.labels(source=label, accelerator=accel).set(
            sum(
                1
                for vj in state.videojobs
                if vj.effective_phase is Phase.RUNNING and vj.accelerator.value == accel
            )
        )


def _error(
    label: str, vj: VideoJobView | None, step: str, exc: Exception, key: str | None = None
) -> None:
    reason = str(getattr(exc, "reason", "")) or type(exc).__name__
    metrics.RECONCILE_ERRORS.labels(source=label, reason=phases.safe_reason(reason, "Error")).inc()
    what = f"{vj.namespace}/{vj.name}" if vj else repr(key)
    log.warning("%s: %s failed for %s: %s", label, step, what, exc, exc_info=log.isEnabledFor(10))


def wake_source_of(job: Json) -> tuple[str, str] | None:
    """The (namespace, source) a Job belongs to, for waking its daemon."""
    meta = job.get("metadata", {})
    labels = meta.get("labels") or {}
    if LABEL_VIDEOJOB not in labels:
        return None
    source = labels.get(LABEL_SOURCE)
    return (meta.get("namespace", ""), source) if source else None


__all__ = ["ClusterState", "PassResult", "reconcile_source", "wake_source_of"]
