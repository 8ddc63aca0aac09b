"""Bucket events per VideoSource: its SQS consumer, and what the push receiver knows of it.

An event only hints: the keys go to `hints.Hints` and the source's loop is woken
(`Coordination.wake`); the pass then decides exactly as a poll would (docs/architecture.md,
"Bucket events"). The source's daemon calls `ensure` after every pass, so an edit of
`spec.events` starts, replaces or stops the SQS consumer within a pass, and `stop` when the
daemon ends. The push receiver (`eventserver`) asks `resolve` for a source's token, bucket and
layout: read from the cluster, cached for a few seconds so that a burst of pushes costs a few
reads, not one per push.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from videopipe.s3 import make_sqs_client

from videopipe_operator import metrics, sources
from videopipe_operator.coordination import Coordination, SourceKey
from videopipe_operator.eventserver import PushTarget
from videopipe_operator.hints import Hints, Ticket
from videopipe_operator.kube import Kube
from videopipe_operator.specs import SourceSpec
from videopipe_operator.sqsevents import SqsConsumer

log = logging.getLogger(__name__)
RESOLVE_TTL_SECONDS = 5.0


class EventSources:
    def __init__(
        self,
        kube: Kube,
        hints: Hints,
        coordination: Coordination,
        namespaces: tuple[str, ...] = (),
        make_sqs: Callable[..., Any] = make_sqs_client,
        sqs_wait_seconds: int = 20,
    ) -> None:
        self._kube, self._hints, self._coordination = kube, hints, coordination
        self._namespaces = frozenset(namespaces)
        self._make_sqs, self._sqs_wait = make_sqs, sqs_wait_seconds
        self._lock = threading.Lock()
        self._consumers: dict[SourceKey, tuple[tuple[Any, ...], SqsConsumer]] = {}
        self._resolved: dict[SourceKey, tuple[float, PushTarget | None]] = {}

    def hint(self, key: SourceKey, keys: set[str]) -> Ticket:
        """Record the keys for the source's next pass, and wake its loop."""
        ticket = self._hints.add(key, keys)
        self._coordination.wake(key)
        return ticket

    # -- HTTP push --

    def push_hint(self, namespace: str, name: str, keys: set[str]) -> None:
        self.hint((namespace, name), keys)

    def resolve(self, namespace: str, name: str) -> PushTarget:
        """The source's push token, bucket and layout; LookupError if it takes no pushes."""
        if self._namespaces and namespace not in self._namespaces:
            raise LookupError(f"namespace {namespace} is not served by this operator")
        key, now = (namespace, name), time.monotonic()
        with self._lock:
            cached = self._resolved.get(key)
        if cached is not None and now - cached[0] < RESOLVE_TTL_SECONDS:
            target = cached[1]
        else:
            target = self._read_target(namespace, name)
            with self._lock:
                self._resolved[key] = (now, target)
        if target is None:
            raise LookupError(f"VideoSource {namespace}/{name} takes no pushed events")
        return target

    def _read_target(self, namespace: str, name: str) -> PushTarget | None:
        body = self._kube.get_source(namespace, name)
        if body is None:
            return None
        source = SourceSpec.parse(body)
        ref = source.events.http_token
        if ref is None:
            return None
        token = (self._kube.secret_data(namespace, ref.name) or {}).get(ref.key)
        if not token:
            log.warning(
                "%s/%s: push token Secret %r has no key %r: pushes are refused",
                namespace,
                name,
                ref.name,
                ref.key,
            )
            return None
        return PushTarget(token, source.storage.bucket, source.storage.layout)

    # -- SQS --

    def ensure(self, source: SourceSpec) -> None:
        """Run the source's SQS consumer as its spec says now (start, replace or stop it)."""
        key = (source.namespace, source.name)
        sqs = source.events.sqs
        if sqs is None:
            self.stop(key)
            return
        try:
            access, secret = sources.credentials(self._kube, source.namespace, source.storage)
        except sources.SourceProblem as e:  # the Ready condition says so already
            log.debug("%s/%s: no SQS consumer: %s", source.namespace, source.name, e)
            self.stop(key)
            return
        region = sqs.region or source.storage.region
        wanted = (sqs.queue_url, sqs.endpoint, region, access, secret, source.storage.key)
        with self._lock:
            running = self._consumers.get(key)
        if running is not None and running[0] == wanted and running[1].alive:
            return
        self.stop(key)
        client = self._make_sqs(
            sqs.endpoint or _endpoint_of(sqs.queue_url, source.storage.endpoint),
            region,
            access_key=access,
            secret_key=secret,
        )
        consumer = SqsConsumer(
            client,
            sqs.queue_url,
            source=metrics.source_label(*key),
            bucket=source.storage.bucket,
            layout=source.storage.layout,
            hint=lambda keys: self.hint(key, keys),
            wait_seconds=self._sqs_wait,
        ).start()
        with self._lock:
            self._consumers[key] = (wanted, consumer)

    def stop(self, key: SourceKey) -> None:
        with self._lock:
            running = self._consumers.pop(key, None)
            self._resolved.pop(key, None)
        if running is not None:
            running[1].stop()

    def close(self) -> None:
        with self._lock:
            keys = list(self._consumers)
        for key in keys:
            self.stop(key)


def _endpoint_of(queue_url: str, s3_endpoint: str | None) -> str | None:
    """No endpoint for AWS (boto3 knows SQS's); else the queue URL's own scheme and host, the
    way SQS-compatible servers (ElasticMQ, LocalStack, moto) are addressed."""
    if ".amazonaws.com" in queue_url:
        return None
    scheme, _, rest = queue_url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}" if rest else s3_endpoint


__all__ = ["EventSources"]
