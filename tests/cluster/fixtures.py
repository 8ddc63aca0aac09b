"""pytest plugin: the session-scoped `cluster` fixture (real control plane, kubelet stand-in).

Loaded from `tests/conftest.py` (`pytest_plugins`). Real: etcd, kube-apiserver,
kube-controller-manager and kube-scheduler built from source (`make k8s-binaries`), RBAC and
PodSecurity admission on. Standing in: the kubelet, which runs each pod's first container as a
local process (see `kubelet.py`). Tests that use it are marked `@pytest.mark.cluster`.

When such a test fails, the logs of every pod that wrote output during the test are attached to
the report as a section, so a failure shows what the worker or operator printed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from tests.cluster.harness import Cluster

_STARTED = pytest.StashKey[float]()


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """A started `Cluster`: `.kubeconfig`, `.api`, `.pod_log(ns, name)`, `.create_namespace()`...

    `$VIDEOPIPE_K8S_BIN` may point at a folder with the four binaries; otherwise they are built
    (or found in the cache) by tests/cluster/build-binaries.sh.
    """
    cl = Cluster()
    cl.start()
    if os.environ.get("VIDEOPIPE_CLUSTER_VERBOSE"):
        print(f"\ncluster ready in {cl.startup_seconds:.1f} s at {cl.server}")
    try:
        yield cl
    finally:
        cl.stop()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[_STARTED] = time.time()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when != "call" or not report.failed:
        return
    cl = getattr(item, "funcargs", {}).get("cluster")
    if not isinstance(cl, Cluster) or cl.kubelet is None:
        return
    logs = cl.pod_logs_since(item.stash.get(_STARTED, 0.0) - 1)
    for name, text in logs.items():
        lines = text.splitlines()[-60:]
        report.sections.append((f"pod log {name}", "\n".join(lines)))
