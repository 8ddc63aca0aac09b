"""What every handler needs, built once by `__main__` and handed to kopf as its `memo`.

Passing it explicitly (instead of module globals) keeps the handlers testable and makes the
dependencies of each step visible: the Kubernetes verbs, the settings, the in-process
coordination and the health registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from videopipe_operator.config import Config
from videopipe_operator.coordination import Coordination
from videopipe_operator.health import Health
from videopipe_operator.kube import Kube


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Context:
    kube: Kube
    config: Config
    coordination: Coordination = field(default_factory=Coordination)
    health: Health = field(default_factory=Health)
    now: Callable[[], datetime] = utcnow
    in_cluster: bool = False


__all__ = ["Context", "utcnow"]
