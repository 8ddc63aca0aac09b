"""Every reason a part of videopipe gives: one catalogue, shared by operator, runner and worker.

A reason is a short CamelCase word: it lands in a VideoJob's status and conditions, an Event,
`failed/<path>.error.json`, the worker's report, `videopipe run --report`, and as a metric
label, so the set must stay bounded and its spelling the same everywhere. A reason that comes
from outside (a worker report read back) passes `safe_reason` before it reaches a label.
"""

from __future__ import annotations

import re
from enum import StrEnum

_REASON = re.compile(r"^[A-Z][A-Za-z0-9]{0,47}$")


class Reason(StrEnum):
    # -- a VideoJob's lifecycle (the operator) --
    QUEUED = "Queued"
    RETRYING = "Retrying"
    STARTED = "Started"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    JOB_LOST = "JobLost"
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    BACKOFF_LIMIT_EXCEEDED = "BackoffLimitExceeded"
    OOM_KILLED = "OOMKilled"
    SUPERSEDED = "Superseded"
    VIDEO_MISSING = "VideoMissing"
    # -- a worker run that failed without saying why (operator and runner) --
    BAD_INPUT = "BadInput"  # exit 3
    CONFIG_ERROR = "ConfigError"  # exit 2
    WORKER_FAILED = "WorkerFailed"  # any other exit
    WORKER_KILLED = "WorkerKilled"  # ended by a signal
    # -- a VideoSource's health (the operator) --
    POLLING = "Polling"
    SECRET_NOT_FOUND = "SecretNotFound"
    SECRET_INVALID = "SecretInvalid"
    INVALID_KEY = "InvalidKey"
    ALL_KEYS_VALID = "AllKeysValid"
    SOURCE_READY = "SourceReady"
    SOURCE_NOT_READY = "SourceNotReady"
    MODEL_CACHE_NOT_READY = "ModelCacheNotReady"  # its PersistentVolumeClaim is absent or unbound
    # -- webhooks and bucket events (operator and runner) --
    NOTIFICATION_ABANDONED = "NotificationAbandoned"
    EVENTS_NOT_READY = "EventsNotReady"
    # -- S3 (`videopipe.s3errors.classify`: every part) --
    BUCKET_NOT_FOUND = "BucketNotFound"
    ACCESS_DENIED = "AccessDenied"
    ENDPOINT_UNREACHABLE = "EndpointUnreachable"
    KEY_TOO_LONG = "KeyTooLong"
    OBJECT_NOT_FOUND = "ObjectNotFound"
    THROTTLED = "Throttled"
    UNAVAILABLE = "Unavailable"
    STORAGE_ERROR = "StorageError"
    # -- `videopipe run` --
    RESUMED = "Resumed"  # completed from results found complete after a crash
    LEASE_LOST = "LeaseLost"
    NEW_UPLOAD_WAITING = "NewUploadWaiting"
    SHUTDOWN = "Shutdown"
    VIDEO_VANISHED = "VideoVanished"
    INTERNAL_ERROR = "InternalError"  # also the worker's: a bug
    # -- the worker (`videopipe transcribe`) --
    # bad input (exit 3)
    NOT_MEDIA = "NotMedia"
    NO_AUDIO_STREAM = "NoAudioStream"
    CORRUPT = "Corrupt"
    TRUNCATED = "Truncated"
    EMPTY_INPUT = "EmptyInput"
    TOO_LONG = "TooLong"
    # configuration (exit 2)
    USAGE = "Usage"
    INPUT_NOT_FOUND = "InputNotFound"
    OUTPUT_NOT_WRITABLE = "OutputNotWritable"
    S3_ACCESS_DENIED = "S3AccessDenied"
    S3_CREDENTIALS_MISSING = "S3CredentialsMissing"
    BAD_DEVICE = "BadDevice"
    BAD_COMPUTE_TYPE = "BadComputeType"
    NO_GPU = "NoGpu"
    MODEL_UNAVAILABLE = "ModelUnavailable"
    MODEL_NOT_FOUND = "ModelNotFound"  # not in the model cache (also a VideoSource's reason)
    GEMINI_AUTH = "GeminiAuth"
    GEMINI_MODEL_NOT_FOUND = "GeminiModelNotFound"
    GEMINI_REJECTED = "GeminiRejected"
    # retryable (exit 1)
    S3_ERROR = "S3Error"
    S3_UNREACHABLE = "S3Unreachable"
    INPUT_UNREACHABLE = "InputUnreachable"
    OUT_OF_MEMORY = "OutOfMemory"
    GEMINI_RATE_LIMITED = "GeminiRateLimited"
    GEMINI_UNAVAILABLE = "GeminiUnavailable"
    GEMINI_UNREACHABLE = "GeminiUnreachable"
    GEMINI_BAD_RESPONSE = "GeminiBadResponse"
    INTERRUPTED = "Interrupted"


def safe_reason(text: str | None, default: str = Reason.WORKER_FAILED) -> str:
    """A CamelCase word fit for a condition reason and a metric label; else `default`."""
    return text if text and _REASON.match(text) else default


__all__ = ["Reason", "safe_reason"]
