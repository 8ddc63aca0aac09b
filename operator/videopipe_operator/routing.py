"""GPU or CPU for one video: a pure decision from the source's policy and the video's length.

A GPU node costs more per hour but transcribes a long talk many times faster; a short clip is
cheaper on a CPU node, where it does not wait for a scarce GPU either. The operator does not decode
media, so the length is what the uploader declared (object metadata `duration`, in seconds) or,
failing that, an estimate from the size at the source's assumed bitrate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from videopipe_operator.constants import S3_META_DURATION, Accelerator, Policy
from videopipe_operator.specs import AcceleratorSpec


@dataclass(frozen=True)
class Route:
    accelerator: Accelerator
    duration_seconds: float
    estimated: bool  # True when the duration came from the size, not from metadata


def declared_duration(metadata: Mapping[str, str] | None) -> float | None:
    """The `duration` user metadata in seconds, if present and sensible."""
    if not metadata:
        return None
    raw = metadata.get(S3_META_DURATION)
    try:
        value = float(raw) if raw is not None else None
    except ValueError:
        return None
    if value is None or not math.isfinite(value) or value < 0:
        return None
    return value


def estimate_duration(size_bytes: int, bitrate_kbps: int) -> float:
    """Seconds of media in `size_bytes` at `bitrate_kbps` (kilobits per second)."""
    if bitrate_kbps <= 0:
        raise ValueError("bitrate must be positive")
    return max(0, size_bytes) * 8 / (bitrate_kbps * 1000)


def route(
    spec: AcceleratorSpec, size_bytes: int, metadata: Mapping[str, str] | None = None
) -> Route:
    declared = declared_duration(metadata)
    duration = (
        declared
        if declared is not None
        else estimate_duration(size_bytes, spec.assumed_bitrate_kbps)
    )
    if spec.policy is Policy.GPU:
        accelerator = Accelerator.GPU
    elif spec.policy is Policy.CPU:
        accelerator = Accelerator.CPU
    else:
        accelerator = (
            Accelerator.GPU if duration >= spec.gpu_min_duration_seconds else Accelerator.CPU
        )
    return Route(accelerator, round(duration, 3), estimated=declared is None)


__all__ = ["Route", "declared_duration", "estimate_duration", "route"]
