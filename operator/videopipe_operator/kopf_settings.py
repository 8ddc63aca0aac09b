"""kopf's settings for this operator, applied in the startup handler.

Our own finalizer and annotation prefix (not kopf.zalando.org), Events posted by us rather than
from log lines, a thread pool large enough for one daemon thread per VideoSource plus handlers,
server-side label selection of the Jobs kopf watches (only ours), and watch timeouts so that a
stream that went silent is re-established instead of waiting forever (kopf #1276).

Serving given namespaces, kopf's cluster scanning is off: it would list and watch Namespaces and
CustomResourceDefinitions cluster-wide, so a namespaced install would need a ClusterRole (and
without one kopf retries the forbidden calls with back-off for most of a minute before it starts).
The namespaces are then taken as given and the CRDs as found at start, which is what we serve.
"""

from __future__ import annotations

import logging

import kopf

from videopipe_operator.config import Config
from videopipe_operator.constants import FINALIZER, KOPF_PREFIX, LABEL_MANAGED_BY, MANAGER

WATCH_SERVER_TIMEOUT = 300
WATCH_CLIENT_TIMEOUT = 330


def apply(settings: kopf.OperatorSettings, config: Config, *, namespaced: bool = False) -> None:
    settings.scanning.disabled = namespaced
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=KOPF_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=KOPF_PREFIX)
    settings.posting.level = logging.WARNING
    settings.posting.reporting_component = MANAGER
    settings.execution.max_workers = config.max_workers
    settings.watching.server_timeout = WATCH_SERVER_TIMEOUT
    settings.watching.client_timeout = WATCH_CLIENT_TIMEOUT
    settings.watching.label_selectors["batch", "v1", "jobs"] = f"{LABEL_MANAGED_BY}={MANAGER}"


__all__ = ["apply"]
