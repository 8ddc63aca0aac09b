"""The model cache on the real control plane: the CRD's rules, Pod Security, and the Ready check.

Real: the API server (CEL rules of spec.worker.modelCache, Pod Security admission `restricted`
on server-side dry runs of the worker pods and the chart's prefetch pod), the PersistentVolume
controller (it binds the claim to a PersistentVolume), the operator process and the worker.
Standing in: the kubelet, which mounts a claim as an empty folder, so a Job that starts finds no
model there and its worker fails with ModelNotFound, naming the command that fills the cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml
from kubernetes import client
from videopipe.store import ObjectInfo
from videopipe_operator import manifests, routing
from videopipe_operator.config import Config
from videopipe_operator.specs import SourceSpec, VideoJobView

from tests.chart.conftest import CHART
from tests.cluster.harness import unless_gone
from tests.e2e.conftest import GROUP, VERSION, WORKER_IMAGE, Videopipe

pytestmark = pytest.mark.cluster

CLAIM = "whisper-models"
PVC_CACHE = {"persistentVolumeClaim": {"claimName": CLAIM}}
GCS_CACHE = {"gcsFuse": {"bucketName": "my-models", "onlyDir": "whisper"}}


def source(**worker: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "VideoSource",
        "metadata": {"name": "s"},
        "spec": {"bucket": "videos", "worker": worker},
    }


def create_source(videopipe: Videopipe, **worker: Any) -> dict[str, Any]:
    return videopipe.custom.create_namespaced_custom_object(
        GROUP, VERSION, videopipe.namespace, "videosources", source(**worker)
    )


@pytest.mark.parametrize(
    ("cache", "why"),
    [
        ({**PVC_CACHE, **GCS_CACHE}, "exactly one of persistentVolumeClaim or gcsFuse"),
        ({"mountPath": "/models"}, "exactly one of persistentVolumeClaim or gcsFuse"),
        ({**PVC_CACHE, "mountPath": "/tmp/models"}, "must not be /tmp or /dev"),
        ({**PVC_CACHE, "mountPath": "/models/../tmp"}, "segments"),
        ({"persistentVolumeClaim": {"claimName": CLAIM, "subPath": "a/../.."}}, "segments"),
        ({"gcsFuse": {"bucketName": "m", "onlyDir": "w"}}, "bucketName"),
        ({"gcsFuse": {"bucketName": "models", "mountOptions": ["a,b"]}}, "mountOptions"),
    ],
)
def test_model_cache_nonsense_is_rejected(videopipe: Videopipe, cache: dict, why: str) -> None:
    with pytest.raises(client.ApiException) as err:
        create_source(videopipe, modelCache=cache)
    assert err.value.status == 422 and why in err.value.body


def test_worker_pods_with_either_cache_pass_restricted_pod_security(videopipe: Videopipe) -> None:
    """The cache is defaulted and kept by the schemas, and the pod built from it is admitted by
    Pod Security `restricted` (the namespace enforces it) on a server-side dry run."""
    for cache in (PVC_CACHE, GCS_CACHE):
        body = create_source(videopipe, model="large-v3", modelCache=cache)
        assert body["spec"]["worker"]["modelCache"] == {**cache, "mountPath": "/models"}
        spec = SourceSpec.parse(body)
        obj = ObjectInfo(key="pending/talk.mp4", etag="abc", size=1_000_000)
        vj = manifests.build_videojob(spec, obj, routing.route(spec.accelerator, obj.size, None))
        vj["metadata"]["uid"] = "0" * 8
        job = manifests.build_job(VideoJobView.parse(vj), Config())
        template = job["spec"]["template"]
        meta = {"name": "w", "annotations": template["metadata"]["annotations"]}
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template["spec"]}
        created = videopipe.cluster.core.create_namespaced_pod(
            videopipe.namespace, pod, dry_run="All"
        )
        mount = next(
            m for m in created.spec.containers[0].volume_mounts if m.mount_path == "/models"
        )
        assert mount.read_only is True
        videopipe.custom.delete_namespaced_custom_object(
            GROUP, VERSION, videopipe.namespace, "videosources", "s"
        )


def test_the_charts_prefetch_pod_passes_restricted_pod_security(videopipe: Videopipe) -> None:
    values = {"models": {"cache": PVC_CACHE, "prefetch": ["small", "large-v3"]}}
    with helm.Chart.load(CHART) as chart:
        rendered = chart.render(values, name="vp", namespace=videopipe.namespace, is_install=True)
    (text,) = [t for name, t in rendered.items() if name.endswith("models-prefetch.yaml")]
    job = next(d for d in yaml.safe_load_all(text) if d and d["kind"] == "Job")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "prefetch"}}
    pod["spec"] = {**job["spec"]["template"]["spec"], "serviceAccountName": "default"}
    videopipe.cluster.core.create_namespaced_pod(videopipe.namespace, pod, dry_run="All")
    videopipe.cluster.batch.create_namespaced_job(videopipe.namespace, job, dry_run="All")


def ready(videopipe: Videopipe) -> dict | None:
    conds = (videopipe.source().get("status") or {}).get("conditions") or []
    return next((c for c in conds if c["type"] == "Ready"), None)


def test_a_missing_then_unbound_claim_holds_the_jobs_until_it_is_bound(
    videopipe: Videopipe, talk_videos: dict[str, Path], tmp_path: Path
) -> None:
    worker = {"image": WORKER_IMAGE, "summary": False, "model": "small", "modelCache": PVC_CACHE}
    videopipe.create_source(worker=worker)
    videopipe.start_operator()
    videopipe.upload("hello.mp4", talk_videos["hello"])

    # No claim: not ready, the video claimed (a VideoJob, queued) but no Job started.
    cond = videopipe.wait(lambda: (c := ready(videopipe)) and c["status"] == "False" and c)
    assert cond["reason"] == "ModelCacheNotReady", cond
    assert f"{CLAIM!r}" in cond["message"] and "not found" in cond["message"]
    assert "videopipe models pull small --to /models" in cond["message"]
    videopipe.wait(lambda: videopipe.events("ModelCacheNotReady"))
    videopipe.wait_polls(2)
    (vj,) = videopipe.videojobs()
    assert (vj.get("status") or {}).get("phase") in (None, "Pending", "Queued")
    assert videopipe.jobs() == []

    # A claim nothing provisions stays Pending: still not ready, and the message says so.
    core, ns = videopipe.cluster.core, videopipe.namespace
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": CLAIM},
        "spec": {
            "accessModes": ["ReadOnlyMany"],
            "storageClassName": "",
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }
    core.create_namespaced_persistent_volume_claim(ns, claim)
    cond = videopipe.wait(lambda: (c := ready(videopipe)) and "Pending" in c["message"] and c)
    assert cond["status"] == "False" and cond["reason"] == "ModelCacheNotReady"
    videopipe.wait_polls(1)
    assert videopipe.jobs() == []

    # Bound (the PersistentVolume controller binds it to a volume made for it): ready, and the
    # Job starts with the claim read-only; the stand-in kubelet mounts an empty folder, so the
    # worker fails at once with ModelNotFound and the command that fills the cache.
    volume = f"{ns}-models"
    core.create_persistent_volume(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": volume},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadOnlyMany"],
                "storageClassName": "",
                "persistentVolumeReclaimPolicy": "Retain",
                "hostPath": {"path": str(tmp_path / "models")},
                "claimRef": {"namespace": ns, "name": CLAIM},
            },
        }
    )
    try:
        videopipe.wait(lambda: (c := ready(videopipe)) and c["status"] == "True", timeout=90)
        (job,) = videopipe.wait(lambda: videopipe.jobs())
        pod = job.spec.template.spec
        cache = next(v for v in pod.volumes if v.name == "model-cache")
        assert cache.persistent_volume_claim.claim_name == CLAIM
        assert cache.persistent_volume_claim.read_only is True
        args = pod.containers[0].args
        assert args[args.index("--model-cache") + 1] == "/models"

        def failed() -> dict | None:
            status = (videopipe.videojobs()[0].get("status")) or {}
            return status if status.get("phase") == "Failed" else None

        status = videopipe.wait(failed, timeout=120)
        assert status["reason"] == "ModelNotFound", status
        assert "videopipe models pull small --to" in status["message"]
    finally:
        unless_gone(core.delete_persistent_volume, volume)
