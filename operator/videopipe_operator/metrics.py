"""Prometheus metrics of the operator, served on `--metrics-port` at /metrics.

The contract is docs/architecture.md, "Metrics".

Names: prefix `videopipe_`, base units, `_total` counters, `_seconds` histograms. Labels carry
bounded values only: `source` (`<namespace>/<name>`), `accelerator` (cpu, gpu), `outcome`
(succeeded, failed), `reason` (a CamelCase word from a bounded set), and `operation` (an S3 or
Kubernetes API verb the operator itself issues); never a video key. Worker figures (audio
seconds, real-time factor) arrive through the termination message, not a push gateway.

The Grafana dashboard and alert rules (`charts/videopipe/dashboards/`, `rules/`) may only use
names exported here (plus prometheus-client's `process_*`); `tests/observability` parses every
expression and checks. A source's counters and histograms are created at zero when its loop
starts (`init_source`): `rate()` and `increase()` cannot see a series' first increment, so a
source's first video would otherwise be missing from every graph and alert.
"""

from __future__ import annotations

import contextlib
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, Info, start_http_server
from prometheus_client.registry import REGISTRY
from videopipe import __version__
from videopipe.s3errors import classify, classify_answer

WAIT_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)
DURATION_BUCKETS = (5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 43200, 86400)
POLL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
RTF_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 50, 75, 100, 150, 250)

BUILD_INFO = Info("videopipe_build", "The running operator's version (always 1).")
BUILD_INFO.info({"version": __version__})
VIDEOJOBS_CREATED = Counter(
    "videopipe_videojobs_created_total",
    "VideoJobs created for videos found in pending/.",
    ["source", "accelerator"],
)
VIDEOJOBS_RETRIED = Counter(
    "videopipe_videojobs_retried_total",
    "Finished VideoJobs re-armed because their video was moved back to pending/.",
    ["source", "accelerator"],
)
JOBS_STARTED = Counter(
    "videopipe_jobs_started_total",
    "Worker Jobs created (one per attempt).",
    ["source", "accelerator"],
)
VIDEOJOBS_FINISHED = Counter(
    "videopipe_videojobs_finished_total",
    "VideoJobs that reached Succeeded or Failed, by reason.",
    ["source", "accelerator", "outcome", "reason"],
)
IN_FLIGHT = Gauge(
    "videopipe_videojobs_in_flight",
    "VideoJobs whose Job is running.",
    ["source", "accelerator"],
)
QUEUED = Gauge("videopipe_videojobs_queued", "VideoJobs waiting for a free slot.", ["source"])
BACKLOG = Gauge(
    "videopipe_backlog_objects", "Videos waiting in pending/ at the last poll.", ["source"]
)
INVALID_KEYS = Gauge(
    "videopipe_invalid_keys", "Objects in pending/ that cannot be processed.", ["source"]
)
SOURCE_READY = Gauge(
    "videopipe_source_ready", "1 if the source's bucket was reachable at the last poll.", ["source"]
)
QUEUE_WAIT = Histogram(
    "videopipe_queue_wait_seconds",
    "From upload to pending/ until the worker Job is created.",
    ["source", "accelerator"],
    buckets=WAIT_BUCKETS,
)
PROCESSING_DURATION = Histogram(
    "videopipe_processing_duration_seconds",
    "From Job creation until the outcome is recorded.",
    ["source", "accelerator", "outcome"],
    buckets=DURATION_BUCKETS,
)
AUDIO_SECONDS = Counter(
    "videopipe_audio_seconds_total",
    "Seconds of audio transcribed successfully.",
    ["source", "accelerator"],
)
REALTIME_FACTOR = Histogram(
    "videopipe_realtime_factor",
    "Audio seconds per processing second, as the worker reported.",
    ["source", "accelerator"],
    buckets=RTF_BUCKETS,
)
S3_REQUESTS = Counter(
    "videopipe_s3_requests_total",
    "S3 calls by the operator (one per boto3 call, however many HTTP attempts it took).",
    ["source", "operation"],
)
S3_ERRORS = Counter(
    "videopipe_s3_errors_total",
    "S3 calls that failed after boto3's retries (404 on HEAD, 304 and 412 are answers).",
    ["source", "operation", "reason"],
)
S3_ATTEMPTS = Counter(
    "videopipe_s3_attempts_total",
    "HTTP attempts of the operator's S3 calls (a call retried twice is three attempts).",
    ["source", "operation"],
)
S3_RETRIES = Counter(
    "videopipe_s3_retries_total",
    "S3 attempts that failed and were tried again, by reason (Throttled: 503 SlowDown).",
    ["source", "operation", "reason"],
)
POLL_DURATION = Histogram(
    "videopipe_poll_duration_seconds",
    "Duration of one reconcile pass of a source (list, finish, start, prune).",
    ["source"],
    buckets=POLL_BUCKETS,
)
LAST_POLL = Gauge(
    "videopipe_last_successful_poll_timestamp_seconds",
    "Unix time of the last pass that listed pending/ successfully.",
    ["source"],
)
POLL_INTERVAL = Gauge(
    "videopipe_poll_interval_seconds",
    "The source's pollIntervalSeconds (alerts scale their patience by it).",
    ["source"],
)
KUBE_API_ERRORS = Counter(
    "videopipe_kubernetes_api_errors_total",
    "Kubernetes API calls that failed (not counting 404 and 409, which are answers).",
    ["operation"],
)
RECONCILE_ERRORS = Counter(
    "videopipe_reconcile_errors_total",
    "Errors while reconciling a source or a VideoJob, by reason.",
    ["source", "reason"],
)
WATCH_EVENTS = Counter(
    "videopipe_watch_events_total",
    "Events kopf's watch streams delivered to the operator, by resource (flat: a silent watch).",
    ["resource"],
)

# -- bucket events (`bucketevents`, `eventserver`, `sqsevents`); `kind`: http or sqs --
EVENT_KINDS = ("http", "sqs")
EVENTS_RECEIVED = Counter(
    "videopipe_events_received_total",
    "Bucket event messages read and parsed (including those that name no video of ours).",
    ["source", "kind"],
)
EVENTS_REJECTED = Counter(
    "videopipe_events_rejected_total",
    "Bucket event messages or pushes refused, by reason (Unauthorized, TooLarge, Malformed...).",
    ["source", "kind", "reason"],
)
EVENTS_ERRORS = Counter(
    "videopipe_events_errors_total",
    "Failed calls to an event queue (SQS receive or delete), by reason.",
    ["source", "kind", "reason"],
)


def init_event_source(source: str, kind: str) -> None:
    """Create a source's event counter at zero when its receiver or consumer starts."""
    EVENTS_RECEIVED.labels(source=source, kind=kind)


VIDEOJOBS_DISCOVERED = Counter(
    "videopipe_videojobs_discovered_total",
    "VideoJobs created or re-armed, by how the video was found: a bucket event or a listing.",
    ["source", "via"],
)
EVENTS_CONFIGURED = Gauge(
    "videopipe_source_events_configured",
    "1 if the source has bucket events configured (SQS or HTTP push).",
    ["source"],
)

# -- webhook deliveries (`deliveries`) --
DELIVERY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 21600)
NOTIFICATIONS = Counter(
    "videopipe_notifications_total",
    "Webhook delivery tries by result: delivered, retried (will try again), abandoned.",
    ["source", "outcome"],
)
NOTIFICATION_LATENCY = Histogram(
    "videopipe_notification_delivery_seconds",
    "From the outcome's commit until its webhook was delivered.",
    ["source"],
    buckets=DELIVERY_BUCKETS,
)

ALL_METRICS = (
    BUILD_INFO,
    VIDEOJOBS_CREATED,
    VIDEOJOBS_RETRIED,
    JOBS_STARTED,
    VIDEOJOBS_FINISHED,
    IN_FLIGHT,
    QUEUED,
    BACKLOG,
    INVALID_KEYS,
    SOURCE_READY,
    QUEUE_WAIT,
    PROCESSING_DURATION,
    AUDIO_SECONDS,
    REALTIME_FACTOR,
    S3_REQUESTS,
    S3_ERRORS,
    S3_ATTEMPTS,
    S3_RETRIES,
    POLL_DURATION,
    LAST_POLL,
    POLL_INTERVAL,
    KUBE_API_ERRORS,
    RECONCILE_ERRORS,
    WATCH_EVENTS,
    VIDEOJOBS_DISCOVERED,
    EVENTS_CONFIGURED,
    EVENTS_RECEIVED,
    EVENTS_REJECTED,
    EVENTS_ERRORS,
    NOTIFICATIONS,
    NOTIFICATION_LATENCY,
)

_S3_EXPECTED = {304, 404, 412}  # not-modified, absent (HEAD), precondition: control flow


def count_kube_api_error(operation: str) -> None:
    """`Kube`'s `on_api_error`: one failed Kubernetes API call."""
    KUBE_API_ERRORS.labels(operation=operation).inc()


def source_label(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


def _attempt_failure(response: Any, caught_exception: Any) -> str | None:
    """The reason an S3 attempt failed, or None for an answer (2xx, 304, 404, 412)."""
    if caught_exception is not None:
        return classify(caught_exception)
    if response is None:
        return None
    http_response, parsed = response
    status = getattr(http_response, "status_code", 200)
    if status < 400 or status in _S3_EXPECTED:
        return None
    code = str(((parsed or {}).get("Error") or {}).get("Code", ""))
    return classify_answer(code, status)


_LAST_FAILURE = "videopipe_last_failure"  # key in botocore's per-call request context


def instrument_s3(s3_client: Any, source: str) -> Any:
    """Count every call, attempt, retry and failure of a boto3 S3 client (botocore events).

    `after-call` / `after-call-error` fire once per call, after boto3's own retries, so they
    cannot see a SlowDown that a retry cured; `needs-retry` fires after every HTTP attempt.
    Whether boto3 retries is decided by another handler of the same event, so a failed
    attempt is counted as retried when the next attempt of its call arrives (`attempts` > 1);
    the failure is kept in the call's request context until then.
    """

    def after_call(http_response: Any = None, parsed: Any = None, model: Any = None, **_: Any):
        operation = getattr(model, "name", "Unknown")
        S3_REQUESTS.labels(source=source, operation=operation).inc()
        status = getattr(http_response, "status_code", 200)
        if status >= 400 and status not in _S3_EXPECTED:
            code = str(((parsed or {}).get("Error") or {}).get("Code", ""))
            reason = classify_answer(code, status)
            S3_ERRORS.labels(source=source, operation=operation, reason=reason).inc()

    def after_error(model: Any = None, exception: Any = None, **_: Any) -> None:
        if exception is None:
            return
        operation = getattr(model, "name", "Unknown")
        S3_REQUESTS.labels(source=source, operation=operation).inc()
        S3_ERRORS.labels(source=source, operation=operation, reason=classify(exception)).inc()

    def needs_retry(
        attempts: int = 1,
        operation: Any = None,
        request_dict: Any = None,
        response: Any = None,
        caught_exception: Any = None,
        **_: Any,
    ) -> None:
        name = getattr(operation, "name", "Unknown")
        S3_ATTEMPTS.labels(source=source, operation=name).inc()
        context = (request_dict or {}).get("context")
        if context is None:
            return
        previous = context.pop(_LAST_FAILURE, None)
        if attempts > 1 and previous is not None:
            S3_RETRIES.labels(source=source, operation=name, reason=previous).inc()
        failure = _attempt_failure(response, caught_exception)
        if failure is not None:
            context[_LAST_FAILURE] = failure
        return None  # never a retry decision of our own

    events = s3_client.meta.events
    events.register("after-call.s3", after_call)
    events.register("after-call-error.s3", after_error)
    events.register("needs-retry.s3", needs_retry)
    return s3_client


def init_source(source: str) -> None:
    """Create the source's counters and histograms at zero, for the label values known ahead.

    Failure reasons are an open set (the worker adds its own), so only `Succeeded` is created.
    """
    for accel in ("cpu", "gpu"):
        for metric in (VIDEOJOBS_CREATED, JOBS_STARTED, AUDIO_SECONDS, QUEUE_WAIT, REALTIME_FACTOR):
            metric.labels(source=source, accelerator=accel)
        for outcome in ("succeeded", "failed"):
            PROCESSING_DURATION.labels(source=source, accelerator=accel, outcome=outcome)
        VIDEOJOBS_FINISHED.labels(
            source=source, accelerator=accel, outcome="succeeded", reason="Succeeded"
        )
    for via in ("event", "poll"):
        VIDEOJOBS_DISCOVERED.labels(source=source, via=via)
    for outcome in ("delivered", "retried", "abandoned"):
        NOTIFICATIONS.labels(source=source, outcome=outcome)
    NOTIFICATION_LATENCY.labels(source=source)


def forget_source(source: str) -> None:
    """Drop a deleted source's gauges so dashboards do not show a ghost."""
    gauges = (
        QUEUED,
        BACKLOG,
        INVALID_KEYS,
        SOURCE_READY,
        LAST_POLL,
        POLL_INTERVAL,
        EVENTS_CONFIGURED,
    )
    for gauge in gauges:
        with contextlib.suppress(KeyError):
            gauge.remove(source)
    for accelerator in ("cpu", "gpu"):
        with contextlib.suppress(KeyError):
            IN_FLIGHT.remove(source, accelerator)


def serve(port: int, address: str = "0.0.0.0") -> None:
    """Serve /metrics in a background thread (port 0 disables it)."""
    if port:
        start_http_server(port, addr=address, registry=REGISTRY)


__all__ = [
    "ALL_METRICS",
    "count_kube_api_error",
    "init_event_source",
    "init_source",
    "instrument_s3",
    "serve",
    "source_label",
]
