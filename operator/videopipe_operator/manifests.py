"""Pure builders: (VideoSource, S3 object) → VideoJob, and VideoJob → Job manifest.

The VideoJob snapshots everything its Job needs (storage, worker settings, Job limits) when it is
created or retried, so that its Job is a pure function of the VideoJob: a VideoSource edit never
changes a Job that is queued or running, and the same VideoJob always yields the same Job (name
included), which is what makes "create, AlreadyExists means done" safe after a crash.

The Job follows docs/architecture.md, "Custom resources": owned by its VideoJob (garbage
collected with it), the restricted Pod Security profile with a read-only root filesystem and an
emptyDir at /tmp, credentials only through secretKeyRef, `podFailurePolicy` that fails the Job
at once on exit 2 (configuration) or 3 (bad input) and ignores node disruption,
`activeDeadlineSeconds` from the video's length, and `ttlSecondsAfterFinished` so that finished
Jobs do not pile up. With `spec.worker.modelCache` the pod mounts the model cache read-only (a
PersistentVolumeClaim, or a GCS bucket through GKE's Cloud Storage FUSE CSI driver) and the
worker reads its model from there (`--model-cache`), never from the Hugging Face hub. Its pod
runs as the source's worker ServiceAccount, else the operator's default one
(`Config.worker_service_account`), never with a token, and where the route (GPU) and the source
(tolerations, node selector) say.
"""

from __future__ import annotations

import copy
from typing import Any

from videopipe.layout import Folder
from videopipe.layout import result_uris as layout_result_uris
from videopipe.report import TERMINATION_LOG_ENV, ExitCode
from videopipe.s3 import S3Uri
from videopipe.store import ObjectInfo

from videopipe_operator import naming, sizing
from videopipe_operator.config import Config
from videopipe_operator.constants import (
    ANNOTATION_ATTEMPT,
    ANNOTATION_KEY,
    API_VERSION,
    APP_NAME,
    AWS_ACCESS_KEY,
    AWS_SECRET_KEY,
    COMPONENT_VIDEOJOB,
    COMPONENT_WORKER,
    FINALIZER,
    GEMINI_KEY,
    GPU_NODE_LABEL,
    GPU_RESOURCE,
    LABEL_ACCELERATOR,
    LABEL_COMPONENT,
    LABEL_INSTANCE,
    LABEL_MANAGED_BY,
    LABEL_NAME,
    LABEL_PATH_HASH,
    LABEL_SOURCE,
    LABEL_VIDEOJOB,
    MANAGER,
    SOURCE_KIND,
    TERMINATION_LOG_PATH,
    TMP_PATH,
    VIDEOJOB_KIND,
    WORKER_CONTAINER,
    Accelerator,
)
from videopipe_operator.routing import Route
from videopipe_operator.specs import ModelCache, SourceSpec, VideoJobView

Json = dict[str, Any]
# The worker image's user (Dockerfile.worker), ≥ 10000 so that it never maps to a host user.
RUN_AS = 10001
MODEL_CACHE_VOLUME = "model-cache"
# GKE's Cloud Storage FUSE CSI driver; its webhook injects the FUSE sidecar only into pods with
# this annotation, and without the sidecar the volume never mounts.
GCSFUSE_DRIVER = "gcsfuse.csi.storage.gke.io"
GCSFUSE_ANNOTATION = "gke-gcsfuse/volumes"


def standard_labels(source: str, component: str) -> dict[str, str]:
    return {
        LABEL_NAME: APP_NAME,
        LABEL_INSTANCE: source,
        LABEL_COMPONENT: component,
        LABEL_MANAGED_BY: MANAGER,
        LABEL_SOURCE: source,
    }


def source_reference(source: SourceSpec) -> Json:
    """Enough of a VideoSource to be an Event's `involvedObject`."""
    return {
        "apiVersion": API_VERSION,
        "kind": SOURCE_KIND,
        "metadata": {"name": source.name, "namespace": source.namespace, "uid": source.uid},
    }


def videojob_spec_settings(source: SourceSpec, route: Route) -> Json:
    """The part of a VideoJob spec copied from its source (refreshed on every retry)."""
    spec: Json = {
        **source.storage.to_spec(),
        "accelerator": route.accelerator.value,
        "estimatedDurationSeconds": route.duration_seconds,
        "worker": copy.deepcopy(source.worker),  # a copy: nothing shared with the source
        "jobs": source.jobs.to_spec(),
    }
    if source.notifications:
        spec["notifications"] = [n.to_spec() for n in source.notifications]
    if source.accelerator.gpu_type:
        spec["gpuType"] = source.accelerator.gpu_type
    return spec


def build_videojob(source: SourceSpec, obj: ObjectInfo, route: Route, *, attempt: int = 1) -> Json:
    """A new VideoJob for `obj` (found in `pending/`), named from (source, key, identity)."""
    layout = source.storage.layout
    path = layout.path_of(obj.key, Folder.PENDING)
    name = naming.videojob_name(source.name, obj.key, obj.identity)
    labels = standard_labels(source.name, COMPONENT_VIDEOJOB)
    labels[LABEL_ACCELERATOR] = route.accelerator.value
    labels[LABEL_PATH_HASH] = naming.path_hash(source.name, path)
    spec: Json = {
        "source": source.name,
        "key": obj.key,
        "path": path,
        "identity": obj.identity,
        "objectETag": obj.etag,
        "size": obj.size,
        "attempt": attempt,
        **videojob_spec_settings(source, route),
    }
    if obj.last_modified is not None:
        spec["uploadedAt"] = obj.last_modified.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": API_VERSION,
        "kind": VIDEOJOB_KIND,
        "metadata": {
            "name": name,
            "namespace": source.namespace,
            "labels": labels,
            "annotations": {ANNOTATION_KEY: obj.key},
            # Present from birth: a VideoJob deleted before kopf first sees it still cancels.
            "finalizers": [FINALIZER],
        },
        "spec": spec,
    }


def input_uri(vj: VideoJobView) -> S3Uri:
    return S3Uri(vj.storage.bucket, vj.storage.layout.key(Folder.PROCESSING, vj.path))


def output_uri(vj: VideoJobView) -> S3Uri:
    return S3Uri(vj.storage.bucket, vj.storage.layout.results_prefix(vj.path))


def result_uris(vj: VideoJobView, summary: bool) -> dict[str, str]:
    """Where the worker puts each result file, for `status.results`."""
    base = str(output_uri(vj))
    return layout_result_uris(base if base.endswith("/") else base + "/", summary)


def active_deadline_seconds(vj: VideoJobView, config: Config) -> int:
    if vj.jobs.active_deadline_seconds is not None:
        return vj.jobs.active_deadline_seconds
    factor = (
        config.deadline_gpu_factor
        if vj.accelerator is Accelerator.GPU
        else config.deadline_cpu_factor
    )
    seconds = config.deadline_base_seconds + (vj.estimated_duration_seconds or 0) * factor
    return int(min(config.deadline_max_seconds, max(60, seconds)))


def worker_args(vj: VideoJobView) -> list[str]:
    w = vj.worker
    args = ["transcribe", str(input_uri(vj)), "--output", str(output_uri(vj))]
    args += ["--device", "cuda" if vj.accelerator is Accelerator.GPU else "cpu"]
    for flag, key in (
        ("--model", "model"),
        ("--language", "language"),
        ("--compute-type", "computeType"),
        ("--beam-size", "beamSize"),
        ("--batch-size", "batchSize"),
        ("--gemini-model", "geminiModel"),
    ):
        if w.get(key) not in (None, ""):
            args += [flag, str(w[key])]
    cache = vj.model_cache
    if cache is not None:  # the volume's subPath, if any, is the mount's: the path is the cache
        args += ["--model-cache", cache.mount_path]
    if w.get("wordTimestamps"):
        args.append("--word-timestamps")
    args.append("--summary" if w.get("summary") else "--no-summary")
    if vj.storage.endpoint:
        args += ["--endpoint-url", vj.storage.endpoint]
    if vj.storage.region:
        args += ["--region", vj.storage.region]
    args += [str(a) for a in w.get("extraArgs") or []]
    return args


def _secret_env(name: str, secret: str, key: str, optional: bool = False) -> Json:
    ref: Json = {"name": secret, "key": key}
    if optional:
        ref["optional"] = True
    return {"name": name, "valueFrom": {"secretKeyRef": ref}}


def worker_env(vj: VideoJobView) -> list[Json]:
    env: list[Json] = [
        {"name": TERMINATION_LOG_ENV, "value": TERMINATION_LOG_PATH},
        {"name": "TMPDIR", "value": TMP_PATH},
        {"name": "HOME", "value": TMP_PATH},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
    ]
    if vj.storage.region:
        env.append({"name": "AWS_REGION", "value": vj.storage.region})
    if vj.storage.credentials_secret:
        env.append(_secret_env(AWS_ACCESS_KEY, vj.storage.credentials_secret, AWS_ACCESS_KEY))
        env.append(_secret_env(AWS_SECRET_KEY, vj.storage.credentials_secret, AWS_SECRET_KEY))
    if vj.worker.get("geminiSecret"):
        env.append(_secret_env(GEMINI_KEY, vj.worker["geminiSecret"], GEMINI_KEY))
    reserved = {e["name"] for e in env}
    env += [dict(e) for e in vj.worker.get("env") or [] if e.get("name") not in reserved]
    return env


def model_cache_volume(cache: ModelCache) -> Json:
    """The pod volume of the model cache, read-only whichever kind: workers only read models.

    GCS: `implicit-dirs` so that folders made by copying objects (no placeholder objects) are
    seen, then `only-dir` and the source's own options, as the driver's one comma-joined string.
    """
    if cache.claim_name:
        claim = {"claimName": cache.claim_name, "readOnly": True}
        return {"name": MODEL_CACHE_VOLUME, "persistentVolumeClaim": claim}
    options = ["implicit-dirs"]
    if cache.only_dir:
        options.append(f"only-dir={cache.only_dir}")
    options += cache.mount_options
    csi = {
        "driver": GCSFUSE_DRIVER,
        "readOnly": True,
        "volumeAttributes": {"bucketName": cache.bucket_name, "mountOptions": ",".join(options)},
    }
    return {"name": MODEL_CACHE_VOLUME, "csi": csi}


def model_cache_mount(cache: ModelCache) -> Json:
    mount: Json = {"name": MODEL_CACHE_VOLUME, "mountPath": cache.mount_path, "readOnly": True}
    if cache.sub_path:
        mount["subPath"] = cache.sub_path
    return mount


def worker_resources(vj: VideoJobView) -> Json:
    configured = (vj.worker.get("resources") or {}).get(vj.accelerator.value)
    model = vj.worker.get("model") or sizing.WORKER_DEFAULT_MODEL
    chosen = (
        configured if configured is not None else sizing.default_resources(vj.accelerator, model)
    )
    # Quantities as strings: the API accepts ints too, but the typed clients do not.
    resources: Json = {k: {n: str(q) for n, q in v.items()} for k, v in chosen.items() if v}
    if vj.accelerator is Accelerator.GPU:
        resources.setdefault("limits", {})[GPU_RESOURCE] = "1"
        resources.setdefault("requests", {})[GPU_RESOURCE] = "1"
    return resources


def _gpu_scheduling(gpu_type: str | None) -> Json:
    expression: Json = {"key": GPU_NODE_LABEL, "operator": "Exists"}
    if gpu_type:
        expression = {"key": GPU_NODE_LABEL, "operator": "In", "values": [gpu_type]}
    return {
        "tolerations": [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [expression]}]
                }
            }
        },
    }


def worker_scheduling(vj: VideoJobView) -> Json:
    """Pod spec fields that place the worker: the route's own, then the source's (`Scheduling`).

    Tolerations add up (a GPU Spot pool needs both taints tolerated); the source's node selector
    and the GPU route's accelerator affinity must both hold. Nothing is set that is not needed.
    """
    extra = vj.scheduling
    out: Json = {}
    tolerations: list[Json] = []
    if vj.accelerator is Accelerator.GPU:
        gpu = _gpu_scheduling(vj.gpu_type)
        tolerations += gpu["tolerations"]
        out["affinity"] = gpu["affinity"]
    for toleration in extra.tolerations:
        if toleration not in tolerations:
            tolerations.append(dict(toleration))
    if tolerations:
        out["tolerations"] = tolerations
    if extra.node_selector:
        out["nodeSelector"] = dict(extra.node_selector)
    if extra.priority_class_name:
        out["priorityClassName"] = extra.priority_class_name
    return out


def build_job(vj: VideoJobView, config: Config, *, attempt: int | None = None) -> Json:
    """The Job for attempt `attempt` (default: the VideoJob's `spec.attempt`)."""
    attempt = attempt or vj.attempt
    name = naming.job_name(vj.name, attempt)
    labels = standard_labels(vj.source, COMPONENT_WORKER)
    labels[LABEL_VIDEOJOB] = vj.name
    labels[LABEL_ACCELERATOR] = vj.accelerator.value
    annotations = {ANNOTATION_KEY: vj.key, ANNOTATION_ATTEMPT: str(attempt)}
    pod_annotations = dict(annotations)
    cache = vj.model_cache
    mounts: list[Json] = [{"name": "tmp", "mountPath": TMP_PATH}]
    volumes: list[Json] = [{"name": "tmp", "emptyDir": {"sizeLimit": config.tmp_size_limit}}]
    if cache is not None:
        mounts.append(model_cache_mount(cache))
        volumes.append(model_cache_volume(cache))
        if cache.bucket_name:
            pod_annotations[GCSFUSE_ANNOTATION] = "true"
    container: Json = {
        "name": WORKER_CONTAINER,
        "image": vj.worker.get("image") or config.worker_image,
        "command": [config.worker_command],
        "args": worker_args(vj),
        "env": worker_env(vj),
        "resources": worker_resources(vj),
        "terminationMessagePath": TERMINATION_LOG_PATH,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": mounts,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    if vj.worker.get("imagePullPolicy"):
        container["imagePullPolicy"] = vj.worker["imagePullPolicy"]
    pod_spec: Json = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "fsGroup": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": volumes,
    }
    # Never the namespace's `default` unless nothing else is configured: it may have rights.
    service_account = vj.worker.get("serviceAccountName") or config.worker_service_account
    if service_account:
        pod_spec["serviceAccountName"] = service_account
    pod_spec.update(worker_scheduling(vj))
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": vj.namespace,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": VIDEOJOB_KIND,
                    "name": vj.name,
                    "uid": vj.uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "backoffLimit": vj.jobs.backoff_limit,
            "activeDeadlineSeconds": active_deadline_seconds(vj, config),
            "ttlSecondsAfterFinished": vj.jobs.ttl_seconds_after_finished,
            "completions": 1,
            "parallelism": 1,
            "podFailurePolicy": {
                "rules": [
                    {
                        "action": "FailJob",
                        "onExitCodes": {
                            "containerName": WORKER_CONTAINER,
                            "operator": "In",
                            "values": [int(ExitCode.CONFIG), int(ExitCode.BAD_INPUT)],
                        },
                    },
                    {
                        "action": "Ignore",
                        "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
                    },
                ]
            },
            "template": {
                "metadata": {"labels": dict(labels), "annotations": pod_annotations},
                "spec": pod_spec,
            },
        },
    }


__all__ = [
    "active_deadline_seconds",
    "build_job",
    "build_videojob",
    "input_uri",
    "model_cache_mount",
    "model_cache_volume",
    "output_uri",
    "result_uris",
    "source_reference",
    "standard_labels",
    "videojob_spec_settings",
    "worker_args",
    "worker_env",
    "worker_scheduling",
]
