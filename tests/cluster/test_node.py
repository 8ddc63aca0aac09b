"""The real node itself: it joins the cluster as a node of its own, runs only the pods placed
on it, in the host network, and its sysctls and mounts stay its own.

Real: the kubelet built from source, containerd and runc from Debian, the control plane, the
placement webhook. The product's own tests on this node are in tests/e2e/test_real_node.py.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from tests.cluster.fixtures import RealNodeWorld
from tests.cluster.harness import Cluster
from tests.cluster.node import NODE_NAME, REAL_NODE_LABEL, SYSCTLS
from tests.cluster.placement import place

pytestmark = [pytest.mark.cluster, pytest.mark.real_node]

WORKER = "ghcr.io/videopipe/videopipe-worker:test"


def test_place_adds_what_the_real_node_needs_and_keeps_the_rest() -> None:
    spec = {
        "nodeSelector": {"pool": "a"},
        "containers": [
            {
                "name": "c",
                "env": [{"name": "KUBERNETES_SERVICE_PORT", "value": "1"}],
                "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
                "securityContext": {"runAsUser": 10001},
            }
        ],
    }
    placed = place(spec, 6443)
    assert placed["nodeSelector"] == {"pool": "a", REAL_NODE_LABEL: "true"}
    assert placed["hostNetwork"] is True and placed["dnsPolicy"] == "Default"
    assert placed["tolerations"][0]["key"] == REAL_NODE_LABEL
    container = placed["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env == {"KUBERNETES_SERVICE_PORT": "1", "KUBERNETES_SERVICE_HOST": "127.0.0.1"}
    assert container["livenessProbe"]["httpGet"] == {
        "path": "/healthz",
        "port": 8080,
        "host": "127.0.0.1",
    }
    assert container["securityContext"] == {"runAsUser": 10001}
    assert "hostNetwork" not in spec, "the input is left as it was"


def _pod(name: str, command: list[str]) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "main",
                    "image": WORKER,
                    "imagePullPolicy": "Never",
                    "command": command,
                }
            ],
        },
    }


def test_the_node_runs_placed_pods_in_the_host_network_and_keeps_its_sysctls(
    cluster: Cluster, real_node: RealNodeWorld
) -> None:
    node = cluster.core.read_node(NODE_NAME)
    assert node.metadata.labels[REAL_NODE_LABEL] == "true"
    assert [t.key for t in node.spec.taints or []] == [REAL_NODE_LABEL]
    assert node.status.node_info.kubelet_version == "v1.35.4"
    assert node.status.node_info.container_runtime_version.startswith("containerd://1.6")

    host = {s: Path("/proc/sys", s).read_text() for s in SYSCTLS}
    placed = cluster.create_namespace(
        f"node-{uuid.uuid4().hex[:6]}", pod_security="privileged", labels={REAL_NODE_LABEL: "true"}
    )
    other = cluster.create_namespace(f"node-{uuid.uuid4().hex[:6]}", pod_security="privileged")
    try:
        # The host's network namespace, seen from inside the container.
        netns = os.readlink("/proc/self/ns/net")
        script = "readlink /proc/1/ns/net; cat /proc/sys/kernel/panic_on_oops"
        cluster.core.create_namespaced_pod(placed, _pod("probe", ["sh", "-c", script]))
        done = cluster.wait_for(
            lambda: (
                (p := cluster.core.read_namespaced_pod("probe", placed)).status.phase
                in ("Succeeded", "Failed")
                and p
            ),
            timeout=120,
            message="pod on the real node finished",
        )
        assert done.spec.node_name == NODE_NAME and done.spec.host_network is True
        assert done.status.phase == "Succeeded", done.status
        logs = real_node.node.pod_logs()
        text = next(v for k, v in logs.items() if k.startswith(f"{placed}/probe/"))
        assert netns in text
        # Not on the real node: the stand-in runs pods of unlabelled namespaces.
        cluster.core.create_namespaced_pod(other, _pod("elsewhere", ["true"]))
        bound = cluster.wait_for(
            lambda: cluster.core.read_namespaced_pod("elsewhere", other).spec.node_name,
            timeout=60,
            message="pod elsewhere scheduled",
        )
        assert bound != NODE_NAME
    finally:
        cluster.delete_namespace(placed)
        cluster.delete_namespace(other)
    assert {s: Path("/proc/sys", s).read_text() for s in SYSCTLS} == host, "host sysctls changed"
    kubelet_copy = (real_node.node.dir / "sysctl" / "kernel.panic_on_oops").read_text()
    assert kubelet_copy.strip() == "1", "the kubelet wrote its setting into the node's copy"
