"""Names that the API, the cluster and dashboards rely on: one place, so they never drift.

The API group and version, resource plurals, the labels and annotations the operator puts on what
it creates (KEDA-style `app.kubernetes.io/*` plus our own selectors), the finalizer, Event reasons
and condition types. Changing a value here changes a contract (docs/architecture.md,
"Custom resources"): do it on purpose.
"""

from __future__ import annotations

from enum import StrEnum

from videopipe.reasons import Reason as Reason  # the shared catalogue, re-exported

GROUP = "videopipe.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

SOURCE_KIND = "VideoSource"
SOURCE_PLURAL = "videosources"
VIDEOJOB_KIND = "VideoJob"
VIDEOJOB_PLURAL = "videojobs"

APP_NAME = "videopipe"
MANAGER = "videopipe-operator"
COMPONENT_VIDEOJOB = "videojob"
COMPONENT_WORKER = "worker"
WORKER_CONTAINER = "worker"

# Standard labels (on everything the operator creates).
LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"

# Our selectors: children are found from cluster state, never from memory.
LABEL_SOURCE = f"{GROUP}/source"
LABEL_VIDEOJOB = f"{GROUP}/videojob"
LABEL_ACCELERATOR = f"{GROUP}/accelerator"
LABEL_PATH_HASH = f"{GROUP}/path-hash"  # same video path, whatever its content

# Annotations: free text that labels cannot hold (keys may be unicode and long).
ANNOTATION_KEY = f"{GROUP}/key"
ANNOTATION_ATTEMPT = f"{GROUP}/attempt"

# kopf stores its own finalizer and progress under our group, not kopf.zalando.org.
FINALIZER = f"{GROUP}/finalizer"
KOPF_PREFIX = f"kopf.{GROUP}"

# User metadata an uploader may set on a video: its length in seconds (routing, deadlines).
# The identity and attempt metadata on our own copies is `videopipe.store`'s business.
S3_META_DURATION = "duration"  # optional, set by uploaders who know the length in seconds

# Worker environment.
TERMINATION_LOG_PATH = "/dev/termination-log"
TMP_PATH = "/tmp"
GEMINI_KEY = "GEMINI_API_KEY"
AWS_ACCESS_KEY = "AWS_ACCESS_KEY_ID"
AWS_SECRET_KEY = "AWS_SECRET_ACCESS_KEY"

# GPU scheduling.
GPU_RESOURCE = "nvidia.com/gpu"
GPU_NODE_LABEL = "cloud.google.com/gke-accelerator"


class Phase(StrEnum):
    PENDING = "Pending"  # created, not looked at yet
    QUEUED = "Queued"  # waiting for a free slot (maxConcurrentJobs)
    RUNNING = "Running"  # video in processing/, Job created
    SUCCEEDED = "Succeeded"  # video in completed/, results in results/
    FAILED = "Failed"  # video in failed/ with <path>.error.json

    @property
    def terminal(self) -> bool:
        return self in (Phase.SUCCEEDED, Phase.FAILED)


class Accelerator(StrEnum):
    CPU = "cpu"
    GPU = "gpu"


class Policy(StrEnum):
    AUTO = "auto"
    GPU = "gpu"
    CPU = "cpu"


class Condition(StrEnum):
    """Condition types. VideoJob: Started, Complete, Failed. VideoSource: Ready, KeysValid."""

    STARTED = "Started"
    COMPLETE = "Complete"
    FAILED = "Failed"
    READY = "Ready"
    KEYS_VALID = "KeysValid"
