"""The product's images on a real node: containers, probes, memory limits and deadlines as a
kubelet enforces them.

Real: the control plane, a kubelet v1.35.4 with containerd 1.6 and runc (`real_node` fixture,
tests/cluster/node.py), the worker and operator images that `make images` builds, imported into
containerd; moto's S3 server, espeak-ng speech, faster-whisper tiny.en inside the worker image;
Helm's Go SDK for the chart. The pods are the product's own (the operator's worker Jobs, the
chart's Deployment); the placement webhook (tests/cluster/placement.py) only sends them to the
real node, in the host network, so that they reach the test servers on 127.0.0.1. Nothing of
the product is patched; the failures are made for real (a memory limit far too small, an S3
endpoint that never answers).

One node serves every test (its start is the slow part); each test has its own namespace.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
from kubernetes import client

from tests.cluster.fixtures import RealNodeWorld
from tests.cluster.harness import Cluster
from tests.cluster.node import NODE_NAME, REAL_NODE_LABEL
from tests.e2e.conftest import WORKER_IMAGE, Videopipe, release
from tests.support.netfaults import Blackhole
from tests.support.ports import free_port

pytestmark = [pytest.mark.cluster, pytest.mark.real_node, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "videopipe"
OPERATOR_IMAGE = "ghcr.io/videopipe/videopipe-operator:test"
# Small requests: the node has the machine's 2 CPUs, shared with the control plane.
WORKER = {
    "image": WORKER_IMAGE,
    "imagePullPolicy": "Never",
    "summary": False,
    "resources": {"cpu": {"requests": {"cpu": "250m", "memory": "256Mi"}}},
}
FAST_LIVENESS = {"VIDEOPIPE_LIVENESS_POLLS": "2", "VIDEOPIPE_LIVENESS_GRACE_SECONDS": "3"}
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


@dataclass
class Installed:
    """The chart installed in a real-node namespace, and the world its VideoSource uses."""

    vp: Videopipe
    health_port: int

    def operator_pod(self) -> client.V1Pod | None:
        pods = self.vp.cluster.core.list_namespaced_pod(
            self.vp.namespace, label_selector="app.kubernetes.io/component=operator"
        ).items
        live = [p for p in pods if p.metadata.deletion_timestamp is None]
        return live[0] if len(live) == 1 else None

    def restarts(self) -> int:
        pod = self.operator_pod()
        assert pod is not None
        return sum(s.restart_count for s in pod.status.container_statuses or [])

    def ready(self) -> bool:
        pod = self.operator_pod()
        statuses = (pod.status.container_statuses or []) if pod else []
        return bool(statuses) and all(s.ready for s in statuses)

    def healthz(self) -> int:
        try:
            url = f"http://127.0.0.1:{self.health_port}/healthz"
            with urllib.request.urlopen(url, timeout=3) as resp:
                return resp.status
        except urllib.error.HTTPError as e:
            return e.code
        except OSError:
            return 0


@pytest.fixture(scope="module")
def installed(
    cluster: Cluster,
    crds: Path,
    real_node: RealNodeWorld,
    s3,
    s3_endpoint: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Installed]:
    """`helm install` of the chart, operator and workers on the real node, with its VideoSource.

    The liveness thresholds are shortened through the chart's values (the probe itself, path
    and port, is the chart's), and the operator's through its documented settings.
    """
    namespace = cluster.create_namespace(
        f"vp-helm-{uuid.uuid4().hex[:6]}",
        pod_security="privileged",
        labels={REAL_NODE_LABEL: "true"},
    )
    bucket = f"helm-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    health = free_port()
    values = {
        "operator": {
            "image": {"tag": "test", "pullPolicy": "Never"},
            # The host's network: the ports must be free on this machine.
            "healthPort": health,
            "metricsPort": free_port(),
            "env": FAST_LIVENESS,
            "livenessProbe": {
                "initialDelaySeconds": 5,
                "periodSeconds": 2,
                "timeoutSeconds": 2,
                "failureThreshold": 2,
            },
            "readinessProbe": {"periodSeconds": 2, "timeoutSeconds": 2, "failureThreshold": 3},
        },
        "worker": {"image": {"tag": "test"}},
        "videoSource": {
            "create": True,
            "name": "talks",
            "bucket": bucket,
            "endpoint": s3_endpoint,
            "region": "us-east-1",
            "pollIntervalSeconds": 1,
            "maxConcurrentJobs": 2,
            "accelerator": {"policy": "cpu"},
            "worker": {"summary": False, "resources": WORKER["resources"]},
            "jobs": {"backoffLimit": 0, "ttlSecondsAfterFinished": 600},
        },
        "s3Credentials": {"accessKeyId": "testing", "secretAccessKey": "testing"},
    }
    vp = Videopipe(
        cluster,
        namespace,
        bucket,
        s3,
        s3_endpoint,
        tmp_path_factory.mktemp("helm"),
        secret="vp-videopipe-s3",
    )
    with helm.Config(kubeconfig_path=cluster.kubeconfig, namespace=namespace) as helm_config:
        try:
            helm_config.install(CHART, "vp", values, namespace=namespace, timeout=120)
            yield Installed(vp, health)
        finally:
            try:
                helm_config.uninstall("vp", timeout=90)
                release(cluster, namespace)
            finally:
                cluster.delete_namespace(namespace)


def test_helm_install_runs_the_operator_image_with_the_charts_probes_on_the_node(
    installed: Installed, real_node: RealNodeWorld, talk_videos: dict[str, Path]
) -> None:
    vp = installed.vp
    started = time.monotonic()
    vp.wait(
        installed.ready, timeout=180, message=lambda: f"operator Ready\n{real_node.node.tails()}"
    )
    ready_after = time.monotonic() - started
    pod = installed.operator_pod()
    assert pod is not None
    assert_ran_on_the_node(pod, OPERATOR_IMAGE)
    (container,) = pod.spec.containers
    assert container.liveness_probe.http_get.path == "/healthz"
    assert container.readiness_probe.http_get.path == "/readyz"
    assert installed.restarts() == 0

    cid = real_node.node.container_id(vp.namespace, pod.metadata.name, "operator")
    assert cid
    fields = proc_status(real_node.node.exec(cid, "cat", "/proc/self/status").stdout)
    assert fields["Uid"].split() == ["10001"] * 4 and int(fields["CapEff"], 16) == 0, fields
    assert fields["NoNewPrivs"] == "1", fields

    vp.upload("hello.mp4", talk_videos["hello"])
    vp.wait(lambda: vp.keys("completed") == ["hello.mp4"], timeout=240)
    text = vp.read("results/hello.mp4/transcript.txt").decode().lower()
    assert "welcome" in text, text
    (worker,) = worker_pods(vp)
    assert_ran_on_the_node(worker, WORKER_IMAGE)
    assert installed.restarts() == 0
    print(
        f"\noperator Ready {ready_after:.0f} s after the install, in {OPERATOR_IMAGE}; "
        f"its worker ran in {WORKER_IMAGE}; restartCount 0"
    )


def test_the_kubelet_restarts_an_operator_whose_loop_hangs_and_no_video_is_lost(
    installed: Installed, real_node: RealNodeWorld, talk_videos: dict[str, Path]
) -> None:
    """The VideoSource is pointed at an S3 endpoint that accepts and never answers: the source
    loop hangs, /healthz fails, and the kubelet's liveness probe restarts the container."""
    vp = installed.vp
    vp.wait(installed.ready, timeout=180, message="operator Ready")
    before = installed.restarts()
    names = ["weather", "garden"]
    for name in names:
        vp.upload(f"{name}.mp4", talk_videos[name])
    vp.wait(lambda: vp.keys("processing"), timeout=120, message="a video claimed")

    hole = Blackhole()
    try:
        started = time.monotonic()
        vp.patch_source("talks", {"endpoint": hole.url})
        vp.wait(lambda: installed.restarts() > before, timeout=180, message="a restart")
        restarted = time.monotonic() - started
        after = installed.restarts()
    finally:
        hole.close()
    vp.patch_source("talks", {"endpoint": vp.s3_endpoint})

    def unhealthy() -> list[str]:
        return [
            e.message
            for e in vp.events("Unhealthy")
            if e.involved_object.kind == "Pod" and "Liveness probe failed" in (e.message or "")
        ]

    assert vp.wait(unhealthy, timeout=30, message="the kubelet's Unhealthy event")
    killing = [e.message for e in vp.events("Killing")]
    assert any("failed liveness probe" in m for m in killing), killing
    vp.wait(installed.ready, timeout=180, message="operator Ready again")
    vp.wait(
        lambda: all(final_folders(vp).get(f"{n}.mp4") == ["completed"] for n in names),
        timeout=300,
        message="both videos completed",
    )
    where = final_folders(vp)
    for name in names:
        assert where[f"{name}.mp4"] == ["completed"], where
    assert all(len(folders) == 1 for folders in where.values()), where
    assert installed.healthz() == 200
    print(
        f"\nrestartCount {before} -> {after}, {restarted:.0f} s after the endpoint hung; "
        f"kubelet: {unhealthy()[0]!r}; every video in exactly one final folder: {where}"
    )
