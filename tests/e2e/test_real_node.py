"""The product's images on a real node: containers, security settings, memory limits and
deadlines as a kubelet enforces them.

Real: the control plane, a kubelet v1.35.4 with containerd 1.6 and runc (`real_node` fixture,
tests/cluster/node.py), the worker and operator images that `make images` builds, imported into
containerd; moto's S3 server, espeak-ng speech, faster-whisper tiny.en inside the worker image.
The pods are the product's own (the operator's worker Jobs); the placement webhook
(tests/cluster/placement.py) only sends them to the real node, in the host network, so that
they reach the test servers on 127.0.0.1. Nothing of
the product is patched; the failures are made for real (a memory limit far too small, an S3
endpoint that never answers).

One node serves every test (its start is the slow part); each test has its own namespace.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.cluster.fixtures import RealNodeWorld
from tests.cluster.harness import Cluster
from tests.cluster.node import NODE_NAME, REAL_NODE_LABEL
from tests.e2e.conftest import WORKER_IMAGE, Videopipe, release
from tests.support.netfaults import Blackhole

pytestmark = [pytest.mark.cluster, pytest.mark.real_node, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
# Small requests: the node has the machine's 2 CPUs, shared with the control plane.
WORKER = {
    "image": WORKER_IMAGE,
    "imagePullPolicy": "Never",
    "summary": False,
    "resources": {"cpu": {"requests": {"cpu": "250m", "memory": "256Mi"}}},
}
Json = dict[str, Any]


def final_folders(vp: Videopipe) -> dict[str, list[str]]:
    """Each video (by path) and the folders it is in; results/ and error reports left out."""
    where: dict[str, list[str]] = {}
    for folder, keys in vp.folders().items():
        for key in keys:
            if not key.endswith(".error.json"):
                where.setdefault(key, []).append(folder)
    return where


def worker_pods(vp: Videopipe) -> list[client.V1Pod]:
    pods = vp.cluster.core.list_namespaced_pod(vp.namespace).items
    return sorted(
        (p for p in pods if "job-name" in (p.metadata.labels or {})),
        key=lambda p: p.metadata.creation_timestamp,
    )


def terminated(pod: client.V1Pod) -> client.V1ContainerStateTerminated | None:
    statuses = pod.status.container_statuses or []
    return statuses[0].state.terminated if statuses else None


def status_of(vp: Videopipe, path: str) -> Json:
    return (vp.videojob_for(path) or {}).get("status") or {}


def proc_status(text: str) -> dict[str, str]:
    """/proc/<pid>/status as a dict of its fields."""
    return dict(re.findall(r"^(\w+):\s*(.*)$", text, re.M))


@pytest.fixture
def placed(
    cluster: Cluster,
    crds: Path,
    real_node: RealNodeWorld,
    s3,
    s3_endpoint: str,
    bucket: str,
    tmp_path: Path,
) -> Iterator[Videopipe]:
    """`Videopipe` in a namespace whose pods run on the real node (host network: privileged)."""
    namespace = cluster.create_namespace(
        f"vp-node-{uuid.uuid4().hex[:6]}",
        pod_security="privileged",
        labels={REAL_NODE_LABEL: "true"},
    )
    vp = Videopipe(cluster, namespace, bucket, s3, s3_endpoint, tmp_path)
    vp.create_secret()
    try:
        yield vp
    finally:
        try:
            for op in vp.operators:
                op.kill()
            release(cluster, namespace)
        finally:
            cluster.delete_namespace(namespace)


def assert_ran_on_the_node(pod: client.V1Pod, image: str) -> None:
    assert pod.spec.node_name == NODE_NAME
    (status,) = pod.status.container_statuses
    assert status.image == image, status
    assert status.image_id.startswith("sha256:"), status  # containerd's, not the stand-in's


def test_worker_image_runs_a_video_s3_to_s3_on_the_node(
    placed: Videopipe, talk_videos: dict[str, Path]
) -> None:
    placed.create_source(worker=WORKER)
    placed.start_operator()
    placed.upload("hello.mp4", talk_videos["hello"])
    placed.wait(lambda: placed.keys("completed") == ["hello.mp4"], timeout=240)
    assert placed.keys("failed") == [] and placed.keys("processing") == []
    text = placed.read("results/hello.mp4/transcript.txt").decode().lower()
    assert "welcome" in text, text
    assert "hello.mp4/manifest.json" in placed.keys("results")
    status = placed.wait(
        lambda: (s := status_of(placed, "hello.mp4"))["phase"] == "Succeeded" and s
    )
    assert status["exitCode"] == 0
    (pod,) = worker_pods(placed)
    assert_ran_on_the_node(pod, WORKER_IMAGE)
    state = terminated(pod)
    assert state is not None and state.exit_code == 0 and state.reason == "Completed"
    print(f"\nworker pod {pod.metadata.name}: exit {state.exit_code} ({state.reason})")


def test_a_hanging_worker_runs_restricted_and_its_deadline_fails_it(
    placed: Videopipe, real_node: RealNodeWorld, talk_videos: dict[str, Path]
) -> None:
    """The worker's S3 traffic goes to a proxy that never answers (HTTP_PROXY), so it hangs
    in its first read; while it hangs, the pod security settings are read from inside the
    container; then activeDeadlineSeconds (60 s, the least a VideoSource allows) ends it."""
    hole = Blackhole()
    try:
        proxy = [{"name": n, "value": hole.url} for n in ("HTTP_PROXY", "http_proxy")]
        placed.create_source(
            worker={**WORKER, "env": proxy},
            jobs={"backoffLimit": 0, "activeDeadlineSeconds": 60, "ttlSecondsAfterFinished": 600},
        )
        placed.start_operator()
        placed.upload("stuck.mp4", talk_videos["weather"])

        def running_container() -> tuple[client.V1Pod, str] | None:
            pods = [p for p in worker_pods(placed) if p.status.phase == "Running"]
            if not pods:
                return None
            cid = real_node.node.container_id(placed.namespace, pods[0].metadata.name, "worker")
            return (pods[0], cid) if cid else None

        pod, cid = placed.wait(running_container, timeout=120, message="worker running")
        assert_ran_on_the_node(pod, WORKER_IMAGE)
        inside = real_node.node.exec(cid, "cat", "/proc/self/status")
        assert inside.returncode == 0, inside.stderr
        fields = proc_status(inside.stdout)
        assert fields["Uid"].split() == ["10001"] * 4, fields["Uid"]
        assert fields["Gid"].split() == ["10001"] * 4, fields["Gid"]
        assert int(fields["CapEff"], 16) == 0 and int(fields["CapPrm"], 16) == 0, fields
        assert int(fields["CapBnd"], 16) == 0, fields
        assert fields["NoNewPrivs"] == "1" and fields["Seccomp"] == "2", fields
        root = real_node.node.exec(cid, "touch", "/probe")
        assert root.returncode != 0 and "Read-only file system" in root.stderr, root
        tmp = real_node.node.exec(cid, "touch", "/tmp/probe")
        assert tmp.returncode == 0, tmp.stderr
        print(
            f"\ninside {pod.metadata.name}: Uid {fields['Uid']}, CapEff {fields['CapEff']}, "
            f"NoNewPrivs {fields['NoNewPrivs']}, Seccomp {fields['Seccomp']}, / read-only"
        )

        started = time.monotonic()
        placed.wait(
            lambda: placed.keys("failed") == ["stuck.mp4", "stuck.mp4.error.json"], timeout=180
        )
        assert final_folders(placed) == {"stuck.mp4": ["failed"]}
        status = placed.wait(
            lambda: (s := status_of(placed, "stuck.mp4"))["phase"] == "Failed" and s
        )
        report = json.loads(placed.read("failed/stuck.mp4.error.json"))
        assert status["reason"] == "DeadlineExceeded", status
        assert report["reason"] == "DeadlineExceeded", report
        assert "deadline" in status["message"].lower(), status["message"]
        (job,) = placed.jobs()
        failed = [c for c in job.status.conditions or [] if c.type == "Failed"]
        assert failed and failed[0].reason == "DeadlineExceeded"
        print(
            f"deadline: Failed {time.monotonic() - started:.0f} s after the checks, "
            f"reason {status['reason']}: {status['message']}"
        )
    finally:
        hole.close()


def test_an_oom_killed_worker_exits_137_and_is_retried_by_its_policy(
    placed: Videopipe, talk_videos: dict[str, Path]
) -> None:
    """A 64 MiB limit: the worker's imports alone need more. backoffLimit 1: one retry, which
    is killed too; then the video fails with the reason the kubelet gave."""
    tiny = {"cpu": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "64Mi"}}}
    placed.create_source(
        worker={**WORKER, "resources": tiny},
        jobs={"backoffLimit": 1, "ttlSecondsAfterFinished": 600},
    )
    placed.start_operator()
    placed.upload("big.mp4", talk_videos["numbers"])
    placed.wait(lambda: placed.keys("failed") == ["big.mp4", "big.mp4.error.json"], timeout=240)
    assert final_folders(placed) == {"big.mp4": ["failed"]}
    status = placed.wait(lambda: (s := status_of(placed, "big.mp4"))["phase"] == "Failed" and s)
    assert status["reason"] == "OOMKilled" and status["exitCode"] == 137, status
    report = json.loads(placed.read("failed/big.mp4.error.json"))
    assert report["reason"] == "OOMKilled" and report["exitCode"] == 137, report
    pods = worker_pods(placed)
    assert len(pods) == 2, [p.metadata.name for p in pods]  # the first run and one retry
    for pod in pods:
        assert_ran_on_the_node(pod, WORKER_IMAGE)
        state = terminated(pod)
        assert state is not None and state.exit_code == 137 and state.reason == "OOMKilled"
        limits = pod.spec.containers[0].resources.limits
        assert limits["memory"] == "64Mi"
    (job,) = placed.jobs()
    failed = [c for c in job.status.conditions or [] if c.type == "Failed"]
    assert failed and failed[0].reason == "BackoffLimitExceeded"
    print(
        f"\n{len(pods)} pods, each exit 137 OOMKilled; Job {failed[0].reason}; "
        f"VideoJob {status['reason']}: {status['message']}"
    )


# -- the chart's operator on the node --
