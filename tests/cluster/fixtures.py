"""pytest plugin: the session-scoped `cluster` fixture (real control plane, kubelet stand-in),
and `real_node` (a real kubelet with containerd and the product's images, `node.py`).

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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cluster.harness import Cluster, unless_gone, wait_for
from tests.cluster.node import NODE_NAME, RealNode, missing_prerequisites
from tests.cluster.placement import RealNodePlacement

# What `make images` writes (docker-archive tarballs); the tags the tests run.
IMAGE_CACHE = Path(
    os.environ.get("VIDEOPIPE_CACHE", Path.home() / ".cache" / "videopipe")
).joinpath("images")
IMAGES = {
    "ghcr.io/videopipe/videopipe-operator:test": IMAGE_CACHE / "videopipe-operator.tar",
    "ghcr.io/videopipe/videopipe-worker:test": IMAGE_CACHE / "videopipe-worker.tar",
}

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


@dataclass
class RealNodeWorld:
    """The started real node, the webhook that places pods on it, and how long each took."""

    node: RealNode
    placement: RealNodePlacement
    setup_seconds: float
    import_seconds: float


@pytest.fixture(scope="session")
def real_node(cluster: Cluster) -> Iterator[RealNodeWorld]:
    """A real kubelet + containerd + runc node joined to `cluster`, with both product images.

    Pods of namespaces labelled `node.REAL_NODE_LABEL` land on it, in the host network
    (`placement.py`). Skipped, with the reason, where the machine cannot run it, except under
    CI=true, where that is a failure: CI must run these tests.
    """
    problems = missing_prerequisites()
    absent = [str(p) for p in IMAGES.values() if not p.exists()]
    if absent:
        problems.append(f"images missing: {' '.join(absent)} (`make images`)")
    if problems:
        reason = "real node unavailable: " + "; ".join(problems)
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    started = time.monotonic()
    assert cluster.api is not None
    node = RealNode(cluster.control_plane)
    placement: RealNodePlacement | None = None
    try:
        node.start()
        placement = RealNodePlacement(cluster.control_plane, cluster.api)
        t0 = time.monotonic()
        with ThreadPoolExecutor(len(IMAGES)) as pool:
            list(pool.map(node.import_image, IMAGES.values()))
        import_seconds = time.monotonic() - t0
        missing = set(IMAGES) - set(node.images())
        assert not missing, f"images not in the node's store after import: {missing}"
        wait_for(
            lambda: _node_ready(cluster),
            120,
            0.5,
            lambda: f"node {NODE_NAME} Ready:\n{node.tails()}",
        )
        world = RealNodeWorld(node, placement, time.monotonic() - started, import_seconds)
        print(
            f"\nreal node ready in {world.setup_seconds:.1f} s "
            f"(image import {import_seconds:.1f} s)"
        )
        yield world
    finally:
        if placement is not None:
            placement.close()
        node.stop()
        print(f"\nreal node stopped and cleaned up in {node.teardown_seconds:.1f} s")


def _node_ready(cluster: Cluster) -> bool:
    node = unless_gone(cluster.core.read_node, NODE_NAME)  # None until it has registered
    if node is None:
        return False
    conditions = {c.type: c.status for c in node.status.conditions or []}
    return conditions.get("Ready") == "True"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[_STARTED] = time.time()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when != "call" or not report.failed:
        return
    world = getattr(item, "funcargs", {}).get("real_node")
    if isinstance(world, RealNodeWorld):
        for name, text in world.node.pod_logs(item.stash.get(_STARTED, 0.0) - 1).items():
            lines = text.splitlines()[-60:]
            report.sections.append((f"real-node pod log {name}", "\n".join(lines)))
    cl = getattr(item, "funcargs", {}).get("cluster")
    if not isinstance(cl, Cluster) or cl.kubelet is None:
        return
    logs = cl.pod_logs_since(item.stash.get(_STARTED, 0.0) - 1)
    for name, text in logs.items():
        lines = text.splitlines()[-60:]
        report.sections.append((f"pod log {name}", "\n".join(lines)))
