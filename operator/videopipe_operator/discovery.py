"""Videos found in `pending/` become VideoJobs: a new one, or a finished one re-armed (a retry).

The VideoJob is the claim. Its name comes from (source, key, identity), where the identity is the
ETag the video had when first discovered, carried on the operator's copies as metadata; so a
video moved back from `failed/` to `pending/` maps to the VideoJob that already failed it, even
if copying changed its ETag. That VideoJob is re-armed in one spec write: `spec.attempt` goes up
and the settings are refreshed from the source, which bumps its generation; the finished status,
now older than the spec, reads as Pending (`VideoJobView.effective_phase`). If history pruning
already removed it, a new VideoJob starts from the attempt count recorded on the object.

Attempts therefore count Job runs of one video (one Job per attempt), across retries, restarts
and pruning, as long as the video keeps its metadata (a server-side copy or `aws s3 mv` does;
a fresh upload of the same file starts again at 1).
"""

from __future__ import annotations

import logging
from typing import Any

from videopipe.settle import next_attempt
from videopipe.store import ObjectInfo, Store

from videopipe_operator import manifests, metrics, naming, routing
from videopipe_operator.constants import LABEL_ACCELERATOR, Reason
from videopipe_operator.context import Context
from videopipe_operator.specs import SourceSpec, VideoJobView

log = logging.getLogger(__name__)


def create_or_rearm_videojob(
    ctx: Context,
    store: Store,
    source: SourceSpec,
    listed: ObjectInfo,
    existing: VideoJobView | None,
    by_name: dict[str, VideoJobView],
) -> str | None:
    """Create or re-arm the VideoJob for one pending object; its name, or None if nothing done."""
    obj = store.head(listed.key)
    if obj is None:
        return None  # gone since the listing
    if existing is None or existing.identity != obj.identity:
        existing = by_name.get(naming.videojob_name(source.name, obj.key, obj.identity))
    if existing is not None and (existing.active or existing.deleting):
        return None  # claimed, or being deleted: the next pass sees it gone
    route = routing.route(source.accelerator, obj.size, obj.metadata)
    if existing is None:
        return _create(ctx, source, obj, route)
    return _rearm(ctx, source, obj, route, existing)


def _create(ctx: Context, source: SourceSpec, obj: ObjectInfo, route: routing.Route) -> str | None:
    attempt = next_attempt(obj)
    body = manifests.build_videojob(source, obj, route, attempt=attempt)
    created = ctx.kube.create_videojob(body)
    if created is None:
        return None  # AlreadyExists: claimed by an earlier pass
    name = body["metadata"]["name"]
    retry = attempt > 1
    ctx.kube.post_event(
        created,
        Reason.RETRYING if retry else Reason.QUEUED,
        f"{obj.key}: found in pending/ ({obj.size} bytes, about {route.duration_seconds:.0f} s, "
        f"{route.accelerator.value.upper()}); attempt {attempt}.",
    )
    label = metrics.source_label(source.namespace, source.name)
    metrics.VIDEOJOBS_CREATED.labels(source=label, accelerator=route.accelerator.value).inc()
    if retry:
        metrics.VIDEOJOBS_RETRIED.labels(source=label, accelerator=route.accelerator.value).inc()
    log.info("%s/%s created for %r", source.namespace, name, obj.key)
    return name


def _rearm(
    ctx: Context,
    source: SourceSpec,
    obj: ObjectInfo,
    route: routing.Route,
    vj: VideoJobView,
) -> str | None:
    attempt = max(vj.attempt, vj.attempts, obj.attempts) + 1
    spec: dict[str, Any] = {
        "attempt": attempt,
        "objectETag": obj.etag,
        "size": obj.size,
        **manifests.videojob_spec_settings(source, route),
    }
    if obj.last_modified is not None:
        spec["uploadedAt"] = obj.last_modified.strftime("%Y-%m-%dT%H:%M:%SZ")
    patched = ctx.kube.patch_videojob(
        vj.namespace,
        vj.name,
        {
            "metadata": {"labels": {LABEL_ACCELERATOR: route.accelerator.value}},
            "spec": replacing(vj.raw.get("spec") or {}, spec, keep=_IDENTITY_FIELDS),
        },
    )
    if patched is None:
        return None
    ctx.kube.post_event(
        patched,
        Reason.RETRYING,
        f"{obj.key}: back in pending/ after {vj.phase.value.lower()} attempt {vj.attempt}; "
        f"attempt {attempt} queued.",
    )
    metrics.VIDEOJOBS_RETRIED.labels(
        source=metrics.source_label(source.namespace, source.name),
        accelerator=route.accelerator.value,
    ).inc()
    log.info("%s/%s re-armed for attempt %d", vj.namespace, vj.name, attempt)
    return vj.name


_IDENTITY_FIELDS = frozenset({"source", "key", "path", "identity"})


def replacing(old: dict[str, Any], new: dict[str, Any], keep: frozenset[str]) -> dict[str, Any]:
    """A merge patch that turns `old` into `new` (nulls for dropped keys), except `keep`."""
    patch: dict[str, Any] = {}
    for key in old.keys() - new.keys() - keep:
        patch[key] = None
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            patch[key] = replacing(before, value, frozenset())
        else:
            patch[key] = value
    return patch


__all__ = ["create_or_rearm_videojob", "replacing"]
