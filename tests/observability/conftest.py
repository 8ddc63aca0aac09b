"""Fixtures for the checks of what the operator exports and what the dashboard and alerts use.

Real: promtool from Debian's `prometheus` package (`make install`), the operator's own metrics
registry (the one `/metrics` serves), the chart's rules file and dashboard JSON, and a real
PromQL parser. No cluster here: `tests/e2e/test_prometheus.py` scrapes the running operator with
a real Prometheus server.
"""

from __future__ import annotations

import shutil
from typing import Any

import pytest

from tests.support import promql

# Sample names a family of each type exports (prometheus-client strips `_total` from a counter's
# family name and `_info` from an info's; `_created` is exported but never worth querying).
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "gauge": ("",),
    "info": ("_info",),
}


@pytest.fixture(scope="session")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool not found: `make install` installs Debian's prometheus package")
    return path


@pytest.fixture(scope="session")
def rules() -> dict[str, Any]:
    return promql.load_rules()


@pytest.fixture(scope="session")
def dashboard() -> dict[str, Any]:
    return promql.load_dashboard()


@pytest.fixture(scope="session")
def exported() -> dict[str, frozenset[str]]:
    """Every sample name the operator's /metrics can carry, with its label names."""
    from prometheus_client import REGISTRY
    from videopipe_operator import metrics

    declared = {m._name: frozenset(m._labelnames) for m in metrics.ALL_METRICS}
    out: dict[str, frozenset[str]] = {}
    for family in REGISTRY.collect():
        labels = declared.get(family.name)
        if labels is None:  # prometheus-client's own collectors: labels as exported
            labels = frozenset(k for s in family.samples for k in s.labels)
        for suffix in SUFFIXES[family.type]:
            extra = {"le"} if suffix == "_bucket" else set()
            if family.type == "info":
                extra = {k for s in family.samples for k in s.labels}
            out[family.name + suffix] = labels | extra
    return out
