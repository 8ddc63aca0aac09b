"""What every handler needs, built once by `__main__` and handed to kopf as its `memo`.

Passing it explicitly (instead of module globals) keeps the handlers testable and makes the
dependencies of each step visible: the Kubernetes verbs, the settings, the in-process
coordination, the health registry, the watch audit (what kopf's watch must echo), the
webhook deliveries and the bucket events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from videopipe_operator import metrics
from videopipe_operator.config import Config
from videopipe_operator.coordination import Coordination
from videopipe_operator.deliveries import Deliveries
from videopipe_operator.eventsources import EventSources
from videopipe_operator.health import Health
from videopipe_operator.hints import Hints
from videopipe_operator.kube import Kube
from videopipe_operator.sources import S3Clients
from videopipe_operator.watches import WatchAudit


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Context:
    kube: Kube
    config: Config
    s3: S3Clients | None = None  # built from `config` when not given
    coordination: Coordination = field(default_factory=Coordination)
    health: Health = field(default_factory=Health)
    watches: WatchAudit = field(default_factory=WatchAudit)
    namespaces: tuple[str, ...] = ()  # served namespaces; empty: all of them
    now: Callable[[], datetime] = utcnow
    in_cluster: bool = False
    deliveries: Deliveries | None = None  # webhook deliveries; None: recorded, not sent
    hints: Hints = field(default_factory=Hints)  # keys named by bucket events, per source
    events: EventSources | None = None  # SQS consumers and the push receiver's lookups

    def __post_init__(self) -> None:
        if self.s3 is None:
            self.s3 = S3Clients(self.config, instrument=metrics.instrument_s3)

    @property
    def clients(self) -> S3Clients:
        assert self.s3 is not None
        return self.s3


__all__ = ["Context", "utcnow"]
