"""S3 access for a VideoSource (or a VideoJob's snapshot of it): credentials, client, checks.

Besides the bucket, the checks cover what every worker Job of the source needs before it can
start: the Gemini Secret and the model cache's PersistentVolumeClaim.

The operator reads the same Secret its workers get through secretKeyRef (or, with no
`credentialsSecret`, uses the default credential chain, e.g. GKE Workload Identity). Problems
that no retry of a single video fixes (a missing Secret, an absent bucket, an endpoint that does
not answer) become a `SourceProblem` with a reason, which the caller turns into the source's
Ready condition and an Event. boto3 clients are cached per endpoint and credentials, since
building one costs more than a poll (`S3Clients`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from videopipe.s3 import make_client
from videopipe.store import Store, StoreError

from videopipe_operator import sizing
from videopipe_operator.config import Config
from videopipe_operator.constants import AWS_ACCESS_KEY, AWS_SECRET_KEY, GEMINI_KEY, Reason
from videopipe_operator.kube import Kube
from videopipe_operator.specs import ModelCache, Storage

MAX_CLIENTS = 64


class SourceProblem(Exception):
    """A configuration or reachability problem of a whole source."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class S3Clients:
    """boto3 clients, cached per endpoint, region, credentials and metrics label.

    `make` builds a client (tests pass one that injects faults); `instrument(client, label)`
    hooks each new client up, for the S3 metrics (the process wires `metrics.instrument_s3` in,
    so that this I/O module does not import metrics).
    """

    def __init__(
        self,
        config: Config,
        make: Callable[..., Any] = make_client,
        instrument: Callable[[Any, str], Any] | None = None,
    ) -> None:
        self.config = config
        self.make = make
        self.instrument = instrument or (lambda client, _label: client)
        self._clients: dict[tuple[Any, ...], Any] = {}
        self._lock = threading.Lock()

    def get(self, storage: Storage, access: str | None, secret: str | None, label: str) -> Any:
        key = (storage.endpoint, storage.region, access, secret, label)
        with self._lock:
            cached = self._clients.get(key)
            if cached is not None:
                return cached
            if len(self._clients) >= MAX_CLIENTS:
                self._clients.clear()
            client = self.make(
                storage.endpoint,
                storage.region,
                access_key=access,
                secret_key=secret,
                max_attempts=self.config.s3_max_attempts,
                connect_timeout=self.config.s3_connect_timeout,
                read_timeout=self.config.s3_read_timeout,
            )
            self._clients[key] = self.instrument(client, label)
            return client


def connect(kube: Kube, clients: S3Clients, namespace: str, storage: Storage, label: str) -> Store:
    """A Store for `storage`, with credentials from its Secret; SourceProblem if unusable."""
    access, secret = credentials(kube, namespace, storage)
    return Store(clients.get(storage, access, secret, label), storage.bucket, storage.layout)


def credentials(kube: Kube, namespace: str, storage: Storage) -> tuple[str | None, str | None]:
    """The access and secret key of `storage`'s Secret; (None, None) for the default chain."""
    access = secret = None
    if storage.credentials_secret:
        data = kube.secret_data(namespace, storage.credentials_secret)
        if data is None:
            raise SourceProblem(
                Reason.SECRET_NOT_FOUND,
                f"Secret {storage.credentials_secret!r} not found in namespace {namespace!r}; "
                f"create it with keys {AWS_ACCESS_KEY} and {AWS_SECRET_KEY}.",
            )
        access, secret = data.get(AWS_ACCESS_KEY), data.get(AWS_SECRET_KEY)
        if not access or not secret:
            raise SourceProblem(
                Reason.SECRET_INVALID,
                f"Secret {storage.credentials_secret!r} must have non-empty keys "
                f"{AWS_ACCESS_KEY} and {AWS_SECRET_KEY}.",
            )
    return access, secret


def check_bucket(store: Store, storage: Storage) -> None:
    """SourceProblem unless the bucket answers."""
    try:
        store.check_bucket()
    except StoreError as e:
        where = storage.endpoint or "the default S3 endpoint"
        hints = {
            Reason.BUCKET_NOT_FOUND: f"bucket {storage.bucket!r} does not exist at {where}",
            Reason.ACCESS_DENIED: (
                f"access to bucket {storage.bucket!r} denied: check the credentials"
            ),
            Reason.ENDPOINT_UNREACHABLE: f"S3 endpoint {where} did not answer",
        }
        raise SourceProblem(e.reason, f"{hints.get(e.reason, 'S3 error')}: {e.message}") from e


def check_worker_secrets(kube: Kube, namespace: str, worker: dict[str, Any]) -> None:
    """SourceProblem if the Gemini Secret the workers need is missing (no Job would start)."""
    name = worker.get("geminiSecret")
    if not name:
        return
    data = kube.secret_data(namespace, name)
    if data is None or not data.get(GEMINI_KEY):
        raise SourceProblem(
            Reason.SECRET_NOT_FOUND,
            f"Secret {name!r} with key {GEMINI_KEY} not found in namespace {namespace!r}; "
            "videos wait in pending/ until it exists.",
        )


def check_model_cache(kube: Kube, namespace: str, worker: dict[str, Any]) -> None:
    """SourceProblem if the model cache's PersistentVolumeClaim is missing or not Bound: every
    worker pod would wait unscheduled (Pending) for it, each holding a slot, while nothing says
    why on the VideoSource. A gcsFuse cache cannot be checked from here (the bucket is reached
    with the worker ServiceAccount's Workload Identity, not the operator's): a problem with it
    shows in the worker pod's events and its ModelNotFound failure."""
    cache = ModelCache.parse(worker)
    if cache is None or not cache.claim_name:
        return
    claim = cache.claim_name
    pvc = kube.get_pvc(namespace, claim)
    model = worker.get("model") or sizing.WORKER_DEFAULT_MODEL
    where = f" (subPath {cache.sub_path})" if cache.sub_path else ""
    if pvc is None:
        raise SourceProblem(
            Reason.MODEL_CACHE_NOT_READY,
            f"PersistentVolumeClaim {claim!r} of spec.worker.modelCache not found in namespace "
            f"{namespace!r}; videos wait in pending/ until it exists. Create it, then fill it: "
            f"`videopipe models pull {model} --to {cache.mount_path}` in a pod that mounts it "
            f"read-write at {cache.mount_path}{where}, or the chart's models.prefetch.",
        )
    phase = (pvc.get("status") or {}).get("phase") or "Pending"
    if phase != "Bound":  # an empty claim never used by a pod holds no models either
        raise SourceProblem(
            Reason.MODEL_CACHE_NOT_READY,
            f"PersistentVolumeClaim {claim!r} of spec.worker.modelCache is {phase}, not Bound; "
            "videos wait in pending/ until it is. A claim of a WaitForFirstConsumer storage "
            "class binds when the first pod that mounts it starts: the one that fills it "
            f"(`videopipe models pull {model} --to {cache.mount_path}`, or the chart's "
            "models.prefetch); otherwise see `kubectl describe pvc`.",
        )


__all__ = [
    "S3Clients",
    "SourceProblem",
    "check_bucket",
    "check_model_cache",
    "check_worker_secrets",
    "connect",
    "credentials",
]
