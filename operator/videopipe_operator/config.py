"""Every operator setting, read once from `VIDEOPIPE_*` environment variables.

Per-source behaviour (bucket, concurrency, routing, worker options) lives in the VideoSource; what
is here is how this operator process runs and the defaults a VideoSource may leave out. Each field
is one line, documented where it is declared; the chart sets them as container env.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from videopipe import __version__


@dataclass(frozen=True)
class Config:
    # VIDEOPIPE_WORKER_IMAGE: worker image when a VideoSource sets none.
    worker_image: str = f"ghcr.io/videopipe/videopipe-worker:{__version__}"
    # VIDEOPIPE_WORKER_COMMAND: the worker's executable inside its image.
    worker_command: str = "videopipe"
    # VIDEOPIPE_WORKER_SERVICE_ACCOUNT: worker ServiceAccount when a VideoSource sets none.
    worker_service_account: str = ""
    # VIDEOPIPE_NAMESPACES: comma-separated namespaces to serve when no --namespace is given.
    namespaces: str = ""
    # VIDEOPIPE_DEADLINE_BASE_SECONDS: activeDeadlineSeconds floor (model load, slow start).
    deadline_base_seconds: int = 1800
    # VIDEOPIPE_DEADLINE_CPU_FACTOR: seconds of processing allowed per estimated audio second (CPU).
    deadline_cpu_factor: float = 1.5
    # VIDEOPIPE_DEADLINE_GPU_FACTOR: the same on a GPU.
    deadline_gpu_factor: float = 0.5
    # VIDEOPIPE_DEADLINE_MAX_SECONDS: activeDeadlineSeconds ceiling.
    deadline_max_seconds: int = 86400
    # VIDEOPIPE_TMP_SIZE_LIMIT: sizeLimit of the worker's /tmp emptyDir.
    tmp_size_limit: str = "2Gi"
    # VIDEOPIPE_MAX_LISTED_OBJECTS: stop listing pending/ after this many keys per poll.
    max_listed_objects: int = 100_000
    # VIDEOPIPE_S3_MAX_ATTEMPTS: boto3 attempts per S3 call (a dead store must fail fast).
    s3_max_attempts: int = 3
    # VIDEOPIPE_S3_CONNECT_TIMEOUT: seconds to connect to the S3 endpoint.
    s3_connect_timeout: float = 5.0
    # VIDEOPIPE_S3_READ_TIMEOUT: seconds to wait for an S3 answer (server-side copies take long).
    s3_read_timeout: float = 300.0
    # VIDEOPIPE_MAX_WORKERS: threads for sync handlers; each VideoSource daemon holds one.
    max_workers: int = 32
    # VIDEOPIPE_LIVENESS_POLLS: /healthz fails when a daemon misses this many poll intervals.
    liveness_polls: int = 5
    # VIDEOPIPE_LIVENESS_GRACE_SECONDS: ...but never sooner than this (> one slow S3 copy).
    liveness_grace_seconds: float = 360.0
    # VIDEOPIPE_WATCH_SILENCE_SECONDS: /healthz fails when a change read over REST has not come
    # through kopf's watch in this time (above kopf's own 70 s re-connect on inactivity).
    watch_silence_seconds: float = 120.0
    # VIDEOPIPE_EVENTS_PORT: port of the bucket-event receiver, POST /events/<ns>/<source>.
    events_port: int = 8081
    # VIDEOPIPE_LOG_LEVEL: DEBUG, INFO, WARNING or ERROR.
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        """Read `VIDEOPIPE_<FIELD>` for every scalar field; malformed values raise ValueError."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"VIDEOPIPE_{f.name.upper()}")
            if raw is None or f.type not in ("str", "int", "float"):
                continue
            try:
                values[f.name] = {"str": str, "int": int, "float": float}[str(f.type)](raw)
            except ValueError as e:
                raise ValueError(f"VIDEOPIPE_{f.name.upper()}={raw!r}: {e}") from None
        return cls(**values)

    @property
    def namespace_list(self) -> list[str]:
        return [ns.strip() for ns in self.namespaces.split(",") if ns.strip()]


__all__ = ["Config"]
