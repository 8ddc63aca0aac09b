"""Typed, defaulted views of VideoSource and VideoJob objects (plain dicts from the API).

The CRD schemas already reject nonsense and fill most defaults, but an object written before a
default existed, or read from a test, may lack them: defaults are applied here once, so the pure
modules (routing, manifests, phases, planning) never poke into nested dicts with `.get` chains.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from videopipe.layout import Layout

from videopipe_operator.constants import Accelerator, Phase, Policy

Json = dict[str, Any]

# VideoSource defaults by field path. The source of truth is the CRD schema
# (crds/videopipe.dev_videosources.yaml), which the API server applies; this is its mirror for
# objects that lack a field, and tests/operator/test_crds.py checks the two (and the chart's
# values.yaml) agree.
SOURCE_DEFAULTS: dict[str, Any] = {
    "prefix": "",
    "pollIntervalSeconds": 15,
    "maxConcurrentJobs": 4,
    "queueWindow": 2,
    "accelerator.policy": "auto",
    "accelerator.gpuMinDurationSeconds": 600,
    "accelerator.assumedBitrateKbps": 2000,
    "worker.summary": False,
    "worker.modelCache.mountPath": "/models",
    "jobs.backoffLimit": 1,
    "jobs.ttlSecondsAfterFinished": 3600,
    "jobs.successfulHistoryLimit": 50,
    "jobs.failedHistoryLimit": 50,
    "notifications[].events": ["Succeeded", "Failed"],
}
DEFAULT_POLL_SECONDS: int = SOURCE_DEFAULTS["pollIntervalSeconds"]
DEFAULT_MAX_CONCURRENT: int = SOURCE_DEFAULTS["maxConcurrentJobs"]
DEFAULT_QUEUE_WINDOW: int = SOURCE_DEFAULTS["queueWindow"]
DEFAULT_POLICY = Policy(SOURCE_DEFAULTS["accelerator.policy"])
DEFAULT_GPU_MIN_DURATION = float(SOURCE_DEFAULTS["accelerator.gpuMinDurationSeconds"])
DEFAULT_BITRATE_KBPS: int = SOURCE_DEFAULTS["accelerator.assumedBitrateKbps"]
DEFAULT_BACKOFF_LIMIT: int = SOURCE_DEFAULTS["jobs.backoffLimit"]
DEFAULT_TTL_SECONDS: int = SOURCE_DEFAULTS["jobs.ttlSecondsAfterFinished"]
DEFAULT_SUCCESSFUL_HISTORY: int = SOURCE_DEFAULTS["jobs.successfulHistoryLimit"]
DEFAULT_FAILED_HISTORY: int = SOURCE_DEFAULTS["jobs.failedHistoryLimit"]
DEFAULT_MODEL_CACHE_PATH: str = SOURCE_DEFAULTS["worker.modelCache.mountPath"]


def _int(value: Any, default: int) -> int:
    return default if value is None else int(value)


@dataclass(frozen=True)
class JobsSpec:
    backoff_limit: int = DEFAULT_BACKOFF_LIMIT
    ttl_seconds_after_finished: int = DEFAULT_TTL_SECONDS
    active_deadline_seconds: int | None = None  # None: computed from the video's duration
    successful_history_limit: int = DEFAULT_SUCCESSFUL_HISTORY
    failed_history_limit: int = DEFAULT_FAILED_HISTORY

    @classmethod
    def parse(cls, raw: Json | None) -> JobsSpec:
        raw = raw or {}
        deadline = raw.get("activeDeadlineSeconds")
        return cls(
            backoff_limit=_int(raw.get("backoffLimit"), DEFAULT_BACKOFF_LIMIT),
            ttl_seconds_after_finished=_int(
                raw.get("ttlSecondsAfterFinished"), DEFAULT_TTL_SECONDS
            ),
            active_deadline_seconds=None if deadline is None else int(deadline),
            successful_history_limit=_int(
                raw.get("successfulHistoryLimit"), DEFAULT_SUCCESSFUL_HISTORY
            ),
            failed_history_limit=_int(raw.get("failedHistoryLimit"), DEFAULT_FAILED_HISTORY),
        )

    def to_spec(self) -> Json:
        out: Json = {
            "backoffLimit": self.backoff_limit,
            "ttlSecondsAfterFinished": self.ttl_seconds_after_finished,
        }
        if self.active_deadline_seconds is not None:
            out["activeDeadlineSeconds"] = self.active_deadline_seconds
        return out


@dataclass(frozen=True)
class AcceleratorSpec:
    policy: Policy = DEFAULT_POLICY
    gpu_min_duration_seconds: float = DEFAULT_GPU_MIN_DURATION
    assumed_bitrate_kbps: int = DEFAULT_BITRATE_KBPS
    gpu_type: str | None = None  # value of cloud.google.com/gke-accelerator, e.g. nvidia-tesla-t4

    @classmethod
    def parse(cls, raw: Json | None) -> AcceleratorSpec:
        raw = raw or {}
        return cls(
            policy=Policy(raw.get("policy") or DEFAULT_POLICY),
            gpu_min_duration_seconds=float(
                raw.get("gpuMinDurationSeconds", DEFAULT_GPU_MIN_DURATION)
            ),
            assumed_bitrate_kbps=_int(raw.get("assumedBitrateKbps"), DEFAULT_BITRATE_KBPS),
            gpu_type=raw.get("gpuType") or None,
        )


@dataclass(frozen=True)
class Scheduling:
    """Where a source's worker pods may run (`spec.worker`), beyond what their route adds.

    Both routes get these; the GPU route adds its own `nvidia.com/gpu` toleration and
    accelerator affinity on top (`manifests.build_job`), so a Spot or dedicated pool needs no
    more than its taint's toleration and, to keep workers there, a node selector.
    """

    tolerations: tuple[Json, ...] = ()
    node_selector: dict[str, str] = field(default_factory=dict)
    priority_class_name: str | None = None

    @classmethod
    def parse(cls, worker: Json | None) -> Scheduling:
        worker = worker or {}
        return cls(
            tolerations=tuple(dict(t) for t in worker.get("tolerations") or []),
            node_selector={str(k): str(v) for k, v in (worker.get("nodeSelector") or {}).items()},
            priority_class_name=worker.get("priorityClassName") or None,
        )


@dataclass(frozen=True)
class ModelCache:
    """The worker's model cache (`spec.worker.modelCache`): a read-only volume of models by name,
    either a PersistentVolumeClaim (`claim_name`) or a GCS bucket through GKE's Cloud Storage
    FUSE CSI driver (`bucket_name`); the CRD admits exactly one of them."""

    mount_path: str = DEFAULT_MODEL_CACHE_PATH
    claim_name: str | None = None
    sub_path: str | None = None
    bucket_name: str | None = None
    only_dir: str | None = None
    mount_options: tuple[str, ...] = ()

    @classmethod
    def parse(cls, worker: Json | None) -> ModelCache | None:
        """None when the worker has no cache (it then downloads models into its /tmp)."""
        raw = (worker or {}).get("modelCache")
        if not raw:
            return None
        claim, gcs = raw.get("persistentVolumeClaim") or {}, raw.get("gcsFuse") or {}
        return cls(
            mount_path=raw.get("mountPath") or DEFAULT_MODEL_CACHE_PATH,
            claim_name=claim.get("claimName") or None,
            sub_path=claim.get("subPath") or None,
            bucket_name=gcs.get("bucketName") or None,
            only_dir=gcs.get("onlyDir") or None,
            mount_options=tuple(str(o) for o in gcs.get("mountOptions") or ()),
        )


@dataclass(frozen=True)
class Storage:
    """Where a source's objects live and how to reach them (shared by operator and workers)."""

    bucket: str
    prefix: str = ""
    endpoint: str | None = None
    region: str | None = None
    credentials_secret: str | None = None

    @property
    def layout(self) -> Layout:
        return Layout(self.prefix)

    @property
    def key(self) -> tuple[str | None, ...]:
        """What identifies the place: equal keys are the same bucket root, reached the same way."""
        return (
            self.bucket,
            self.layout.prefix,
            self.endpoint,
            self.region,
            self.credentials_secret,
        )

    def to_spec(self) -> Json:
        out: Json = {"bucket": self.bucket, "prefix": self.layout.prefix}
        for key, value in (
            ("endpoint", self.endpoint),
            ("region", self.region),
            ("credentialsSecret", self.credentials_secret),
        ):
            if value:
                out[key] = value
        return out


@dataclass(frozen=True)
class SecretKeyRef:
    name: str
    key: str

    @classmethod
    def parse(cls, raw: Json) -> SecretKeyRef:
        return cls(name=str(raw["name"]), key=str(raw["key"]))

    def to_spec(self) -> Json:
        return {"name": self.name, "key": self.key}


DEFAULT_NOTIFY_EVENTS = tuple(SOURCE_DEFAULTS["notifications[].events"])


@dataclass(frozen=True)
class NotificationSpec:
    """One webhook: where outcomes go, the Secret that signs them, which outcomes."""

    url: str
    secret: SecretKeyRef
    events: tuple[str, ...] = DEFAULT_NOTIFY_EVENTS

    @classmethod
    def parse_all(cls, raw: Any) -> tuple[NotificationSpec, ...]:
        return tuple(
            cls(
                url=str(item["url"]),
                secret=SecretKeyRef.parse(item["secretRef"]),
                events=tuple(item.get("events") or DEFAULT_NOTIFY_EVENTS),
            )
            for item in raw or ()
        )

    def to_spec(self) -> Json:
        return {"url": self.url, "secretRef": self.secret.to_spec(), "events": list(self.events)}


@dataclass(frozen=True)
class SqsEvents:
    queue_url: str
    region: str | None = None
    endpoint: str | None = None


@dataclass(frozen=True)
class EventsSpec:
    """Where bucket events come from: an SQS queue, HTTP pushes with a token, or both."""

    sqs: SqsEvents | None = None
    http_token: SecretKeyRef | None = None

    @classmethod
    def parse(cls, raw: Json | None) -> EventsSpec:
        raw = raw or {}
        sqs, http = raw.get("sqs"), raw.get("http")
        return cls(
            sqs=SqsEvents(
                queue_url=str(sqs["queueUrl"]),
                region=sqs.get("region") or None,
                endpoint=sqs.get("endpoint") or None,
            )
            if sqs
            else None,
            http_token=SecretKeyRef.parse(http["tokenSecretRef"]) if http else None,
        )

    @property
    def configured(self) -> bool:
        return self.sqs is not None or self.http_token is not None


@dataclass(frozen=True)
class SourceSpec:
    name: str
    namespace: str
    uid: str
    generation: int
    storage: Storage
    poll_interval_seconds: int = DEFAULT_POLL_SECONDS
    max_concurrent_jobs: int = DEFAULT_MAX_CONCURRENT
    queue_window: int = DEFAULT_QUEUE_WINDOW
    accelerator: AcceleratorSpec = field(default_factory=AcceleratorSpec)
    worker: Json = field(default_factory=dict)  # snapshotted verbatim into each VideoJob
    jobs: JobsSpec = field(default_factory=JobsSpec)
    notifications: tuple[NotificationSpec, ...] = ()
    events: EventsSpec = field(default_factory=EventsSpec)

    @classmethod
    def parse(cls, body: Json) -> SourceSpec:
        meta, spec = body.get("metadata", {}), body.get("spec", {})
        return cls(
            name=meta["name"],
            namespace=meta.get("namespace", ""),
            uid=meta.get("uid", ""),
            generation=int(meta.get("generation", 0)),
            storage=Storage(
                bucket=spec["bucket"],
                prefix=spec.get("prefix") or "",
                endpoint=spec.get("endpoint") or None,
                region=spec.get("region") or None,
                credentials_secret=spec.get("credentialsSecret") or None,
            ),
            poll_interval_seconds=_int(spec.get("pollIntervalSeconds"), DEFAULT_POLL_SECONDS),
            max_concurrent_jobs=_int(spec.get("maxConcurrentJobs"), DEFAULT_MAX_CONCURRENT),
            queue_window=_int(spec.get("queueWindow"), DEFAULT_QUEUE_WINDOW),
            accelerator=AcceleratorSpec.parse(spec.get("accelerator")),
            worker=dict(spec.get("worker") or {}),
            jobs=JobsSpec.parse(spec.get("jobs")),
            notifications=NotificationSpec.parse_all(spec.get("notifications")),
            events=EventsSpec.parse(spec.get("events")),
        )

    @property
    def max_active(self) -> int:
        """VideoJobs that may exist unfinished at once: the running slots plus the queue window."""
        return self.max_concurrent_jobs + self.queue_window


@dataclass(frozen=True)
class VideoJobView:
    """A VideoJob as the operator reasons about it; `raw` keeps the object for writing back."""

    name: str
    namespace: str
    uid: str
    generation: int
    deleting: bool
    created: str
    source: str
    storage: Storage
    key: str
    path: str
    identity: str  # the ETag the video had when first discovered
    object_etag: str
    size: int
    uploaded_at: str | None
    attempt: int
    accelerator: Accelerator
    estimated_duration_seconds: float | None
    gpu_type: str | None
    worker: Json
    jobs: JobsSpec
    notifications: tuple[NotificationSpec, ...]
    phase: Phase
    attempts: int
    job_name: str | None
    observed_generation: int
    status: Json
    raw: Json

    @classmethod
    def parse(cls, body: Json) -> VideoJobView:
        meta, spec, status = body["metadata"], body.get("spec", {}), body.get("status") or {}
        raw_phase = status.get("phase")
        return cls(
            name=meta["name"],
            namespace=meta.get("namespace", ""),
            uid=meta.get("uid", ""),
            generation=int(meta.get("generation", 1)),
            deleting=bool(meta.get("deletionTimestamp")),
            created=meta.get("creationTimestamp") or "",
            source=spec["source"],
            storage=Storage(
                bucket=spec["bucket"],
                prefix=spec.get("prefix") or "",
                endpoint=spec.get("endpoint") or None,
                region=spec.get("region") or None,
                credentials_secret=spec.get("credentialsSecret") or None,
            ),
            key=spec["key"],
            path=spec["path"],
            identity=spec["identity"],
            object_etag=spec.get("objectETag") or spec["identity"],
            size=int(spec.get("size") or 0),
            uploaded_at=spec.get("uploadedAt"),
            attempt=int(spec.get("attempt") or 1),
            accelerator=Accelerator(spec.get("accelerator") or Accelerator.CPU),
            estimated_duration_seconds=spec.get("estimatedDurationSeconds"),
            gpu_type=spec.get("gpuType") or None,
            worker=dict(spec.get("worker") or {}),
            jobs=JobsSpec.parse(spec.get("jobs")),
            notifications=NotificationSpec.parse_all(spec.get("notifications")),
            phase=Phase(raw_phase) if raw_phase in Phase.__members__.values() else Phase.PENDING,
            attempts=int(status.get("attempts") or 0),
            job_name=status.get("jobName") or None,
            observed_generation=int(status.get("observedGeneration") or 0),
            status=status,
            raw=body,
        )

    @property
    def scheduling(self) -> Scheduling:
        return Scheduling.parse(self.worker)

    @property
    def model_cache(self) -> ModelCache | None:
        return ModelCache.parse(self.worker)

    @property
    def effective_phase(self) -> Phase:
        """The phase, except that a finished VideoJob whose spec changed since (a retry) is Pending.

        A retry bumps `spec.attempt` in one write; the generation then differs from the
        `observedGeneration` the terminal status was written with. This makes "re-armed" a fact
        of the object, so a crash between the spec write and the status write loses nothing.
        """
        if self.phase.terminal and self.observed_generation != self.generation:
            return Phase.PENDING
        return self.phase

    @property
    def active(self) -> bool:
        return not self.effective_phase.terminal

    @property
    def deliveries_pending(self) -> bool:
        """A webhook delivery is still to be made: the VideoJob must not be pruned yet."""
        entries = self.status.get("notifications") or {}
        return any((e or {}).get("state") == "Pending" for e in entries.values())


__all__ = [
    "AcceleratorSpec",
    "EventsSpec",
    "JobsSpec",
    "ModelCache",
    "NotificationSpec",
    "Scheduling",
    "SecretKeyRef",
    "SourceSpec",
    "SqsEvents",
    "Storage",
    "VideoJobView",
]
