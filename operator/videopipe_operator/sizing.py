"""Worker memory by model and route, when a VideoSource sets none.

The worker transcribes in windows (`--window-seconds`, 900 s by default), so what it needs
follows from the model and the window, never from the video's length. Measured here
(`bench/long.py`, tiny.en int8 on CPU, batched, 900 s windows): peak RSS 1,019 MiB for
10 minutes of speech, 1,109 MiB for 58 minutes and 1,234 MiB for 2.9 hours (whole-file
needed 1,856 MiB at 58 minutes). Larger models add their weights and activations: 0.25 GB
(small) to 1.6 GB (large) in int8 on CPU; faster-whisper's published figures for large-v3 on
a GPU are 0.9 GB of host memory in float16 and 2.3 GB in int8. A limit well above the
request leaves room for a long window's peak without reserving it on every node.
"""

from __future__ import annotations

from pathlib import PurePath

from videopipe_operator.constants import Accelerator

Resources = dict[str, dict[str, str]]
WORKER_DEFAULT_MODEL = "tiny.en"  # the worker's --model default (videopipe_worker.transcribe)

# (request, limit) of memory per model class and route.
MEMORY: dict[str, dict[Accelerator, tuple[str, str]]] = {
    "tiny": {Accelerator.CPU: ("1536Mi", "2Gi"), Accelerator.GPU: ("2Gi", "4Gi")},
    "small": {Accelerator.CPU: ("2Gi", "3Gi"), Accelerator.GPU: ("2Gi", "4Gi")},
    "medium": {Accelerator.CPU: ("3Gi", "4Gi"), Accelerator.GPU: ("3Gi", "6Gi")},
    "large": {Accelerator.CPU: ("4Gi", "6Gi"), Accelerator.GPU: ("4Gi", "8Gi")},
}


def model_class(model: str) -> str:
    """The size class of a model name or folder; an unknown one counts as large."""
    name = PurePath(model).name.lower()
    if "tiny" in name or "base" in name:
        return "tiny"
    if "small" in name:
        return "small"
    if any(word in name for word in ("medium", "turbo", "distil")):
        return "medium"  # large-v3-turbo and the distil models have about half large's weights
    return "large"


def default_resources(accelerator: Accelerator, model: str) -> Resources:
    request, limit = MEMORY[model_class(model)][accelerator]
    return {"requests": {"cpu": "1", "memory": request}, "limits": {"memory": limit}}


__all__ = ["MEMORY", "WORKER_DEFAULT_MODEL", "default_resources", "model_class"]
