"""The per-VideoSource loop: one reconcile pass, then wait for the poll interval or a wake-up.

kopf starts one of these (a sync daemon, in its thread pool) for every VideoSource it serves,
again after an operator restart, and stops it when the source is deleted or the operator exits.
The loop never dies on an error: a failed pass is logged and counted, the heartbeat is still
reported (liveness is about the loop turning), and the next pass starts from cluster state.
Wake-ups (a Job changed, a VideoJob was cancelled, the VideoSource was edited, a bucket event
named a key) are coalesced with a short pause, since one Job's completion arrives as several
watch events and an upload as several bucket events. The keys that events named are taken at
the start of a pass and marked handled after it (`hints`), so an SQS message is deleted only
once a pass that began after it has finished; a pass that fails leaves them to SQS's redelivery
and to the next full listing.
"""

from __future__ import annotations

import logging
from typing import Any

from videopipe_operator import metrics
from videopipe_operator.context import Context
from videopipe_operator.reconcile import reconcile_source
from videopipe_operator.specs import DEFAULT_POLL_SECONDS

log = logging.getLogger(__name__)
COALESCE_SECONDS = 0.5


def run(ctx: Context, namespace: str, name: str, stopped: Any) -> None:
    """Loop until `stopped` (kopf's DaemonStopped flag) is set or the source is gone."""
    key = (namespace, name)
    label = metrics.source_label(namespace, name)
    log.info("%s: source daemon started", label)
    metrics.init_source(label)
    ctx.health.beat(label, DEFAULT_POLL_SECONDS)  # a first pass that hangs must show too
    try:
        while not stopped:
            interval: float = DEFAULT_POLL_SECONDS
            hinted, tickets = ctx.hints.take(key)
            try:
                with ctx.coordination.lock(key):
                    result = reconcile_source(ctx, namespace, name, hints=hinted)
                if result is None:
                    log.info("%s: VideoSource gone; daemon exits", label)
                    return
                ctx.hints.done(tickets)  # their events may be deleted now
                interval = result.poll_interval
                if ctx.events is not None:
                    ctx.events.ensure(result.source)
            except Exception as e:
                metrics.RECONCILE_ERRORS.labels(source=label, reason=type(e).__name__).inc()
                log.exception("%s: reconcile pass failed; retrying in %.0f s", label, interval)
            ctx.health.beat(label, interval)
            if ctx.coordination.wait(key, interval, lambda: bool(stopped)):
                stopped.wait(COALESCE_SECONDS)
    finally:
        if ctx.events is not None:
            ctx.events.stop(key)
        ctx.hints.forget(key)
        ctx.health.forget(label)
        ctx.coordination.forget(key)
        metrics.forget_source(label)
        log.info("%s: source daemon stopped", label)


__all__ = ["run"]
