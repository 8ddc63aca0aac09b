"""kopf handler registrations, and nothing else: each one delegates to the module doing the work.

Importing this module registers the handlers in kopf's default registry (`__main__` does).
Every handler gets the shared `Context` through kopf's `memo`.

- login: kopf uses the same credentials as the `kubernetes` client (`kube.load_client`).
- startup: kopf settings (finalizer, storages, thread pool, watch selectors, no cluster scans
  when serving given namespaces); the readiness check starts (`readiness`: connected, and
  every served VideoSource delivered by the watch).
- VideoSource daemon: the reconcile loop of one source (`daemon.run`), sync, in a thread.
- VideoSource spec change: wake its loop, so an edit applies now, not at the next poll.
- VideoJob deletion: cancel it (`cancel.cancel`), under the finalizer.
- Job events (ours only, selected server-side): wake the owning source's loop.
- every VideoSource, VideoJob and Job event: reported to the watch audit (`watches`), which
  fails liveness when what the loops read over REST stops arriving through the watch.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import kopf

from videopipe_operator import cancel, daemon, kopf_settings, kube, reconcile
from videopipe_operator.constants import GROUP, SOURCE_PLURAL, VERSION, VIDEOJOB_PLURAL
from videopipe_operator.context import Context
from videopipe_operator.readiness import Readiness
from videopipe_operator.watches import JOBS

CANCEL_RETRIES = 40  # × cancel.RETRY_SECONDS: how long a deletion waits for S3 to come back


def _ctx(memo: Any) -> Context:
    return memo.ctx


@kopf.on.login()
def login(memo: Any, **kwargs: Any) -> kopf.ConnectionInfo | None:
    ctx = _ctx(memo)
    if ctx.in_cluster:
        # kopf's own service-account login dials https://kubernetes.default.svc, which a pod
        # without cluster DNS (host network) cannot resolve; the kubernetes client's in-cluster
        # address comes from KUBERNETES_SERVICE_HOST/PORT, as the kubelet sets them.
        info = kopf.login_with_service_account(**kwargs)  # re-reads the rotating token file
        return info and dataclasses.replace(info, server=ctx.kube.api.configuration.host)
    return kube.connection_info(ctx.kube.api.configuration)


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: Any, **_: Any) -> None:
    ctx = _ctx(memo)
    kopf_settings.apply(settings, ctx.config, namespaced=bool(ctx.namespaces))
    Readiness(lambda: ctx.kube.list_sources(ctx.namespaces), ctx.watches, ctx.health).start()


@kopf.daemon(GROUP, VERSION, SOURCE_PLURAL, cancellation_timeout=30)
def source_loop(stopped: kopf.DaemonStopped, namespace: str, name: str, memo: Any, **_: Any):
    daemon.run(_ctx(memo), namespace, name, stopped)


@kopf.on.update(GROUP, VERSION, SOURCE_PLURAL, field="spec")
def source_edited(namespace: str, name: str, memo: Any, **_: Any) -> None:
    _ctx(memo).coordination.wake((namespace, name))


@kopf.on.delete(GROUP, VERSION, VIDEOJOB_PLURAL, retries=CANCEL_RETRIES)
def videojob_deleted(body: kopf.Body, memo: Any, **_: Any) -> None:
    cancel.cancel(_ctx(memo), dict(body))


@kopf.on.event(GROUP, VERSION, SOURCE_PLURAL)
async def source_event(event: kopf.RawEvent, memo: Any, **_: Any) -> None:
    _ctx(memo).watches.delivered(SOURCE_PLURAL, event)


@kopf.on.event(GROUP, VERSION, VIDEOJOB_PLURAL)
async def videojob_event(event: kopf.RawEvent, memo: Any, **_: Any) -> None:
    _ctx(memo).watches.delivered(VIDEOJOB_PLURAL, event)


@kopf.on.event("batch", "v1", JOBS)
async def job_changed(event: kopf.RawEvent, body: kopf.Body, memo: Any, **_: Any) -> None:
    _ctx(memo).watches.delivered(JOBS, event)
    key = reconcile.wake_source_of(dict(body))
    if key is not None:
        _ctx(memo).coordination.wake(key)
