"""The CRDs on the real API server: defaults applied, nonsense rejected, identity immutable."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from videopipe.store import ObjectInfo
from videopipe_operator import manifests, routing
from videopipe_operator.config import Config
from videopipe_operator.specs import SourceSpec, VideoJobView

from tests.e2e.conftest import GROUP, VERSION, Videopipe

pytestmark = pytest.mark.cluster


def create(videopipe: Videopipe, plural: str, body: dict[str, Any]) -> dict[str, Any]:
    return videopipe.custom.create_namespaced_custom_object(
        GROUP, VERSION, videopipe.namespace, plural, body
    )


def source(name: str = "s", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "VideoSource",
        "metadata": {"name": name},
        "spec": {"bucket": "videos", **spec},
    }


def test_defaults_are_applied(videopipe: Videopipe) -> None:
    spec = create(videopipe, "videosources", source())["spec"]
    assert spec["pollIntervalSeconds"] == 15 and spec["maxConcurrentJobs"] == 4
    assert spec["queueWindow"] == 2 and spec["prefix"] == ""
    assert spec["accelerator"] == {
        "policy": "auto",
        "gpuMinDurationSeconds": 600,
        "assumedBitrateKbps": 2000,
    }
    assert spec["worker"] == {"summary": False}
    assert spec["jobs"]["backoffLimit"] == 1 and spec["jobs"]["successfulHistoryLimit"] == 50


@pytest.mark.parametrize(
    ("name", "spec", "why"),
    [
        ("s", {"maxConcurrentJobs": 0}, "maxConcurrentJobs"),
        ("s", {"pollIntervalSeconds": -5}, "pollIntervalSeconds"),
        ("s", {"accelerator": {"policy": "fast"}}, "policy"),
        ("s", {"bucket": "No_Such Bucket!"}, "bucket"),
        ("s", {"endpoint": "storage.googleapis.com"}, "endpoint"),
        ("s", {"worker": {"summary": True}}, "geminiSecret"),
        ("s", {"worker": {"beamSize": 0}}, "beamSize"),
        ("s", {"worker": {"env": [{"name": "1BAD"}]}}, "name"),
        ("s", {"jobs": {"backoffLimit": 99}}, "backoffLimit"),
        # Worker scheduling: what the API server would refuse in the Job's pod template is
        # refused here, before a video is claimed for a Job that cannot be created.
        ("s", {"worker": {"tolerations": [{"value": "x"}]}}, "without a key"),
        (
            "s",
            {"worker": {"tolerations": [{"key": "a", "operator": "Exists", "value": "x"}]}},
            "no value",
        ),
        ("s", {"worker": {"tolerations": [{"key": "a", "tolerationSeconds": 5}]}}, "NoExecute"),
        ("s", {"worker": {"tolerations": [{"key": "a", "operator": "In"}]}}, "operator"),
        ("s", {"worker": {"tolerations": [{"key": "no spaces"}]}}, "key"),
        ("s", {"worker": {"nodeSelector": {"no spaces": "x"}}}, "label keys"),
        ("s", {"worker": {"nodeSelector": {"pool": "no spaces"}}}, "nodeSelector"),
        ("s", {"worker": {"priorityClassName": "Batch_Low"}}, "priorityClassName"),
        ("x" * 64, {}, "63 characters"),
    ],
)
def test_nonsense_is_rejected(videopipe: Videopipe, name: str, spec: dict, why: str) -> None:
    with pytest.raises(client.ApiException) as err:
        create(videopipe, "videosources", source(name, **spec))
    assert err.value.status == 422 and why in err.value.body


def test_worker_scheduling_is_kept_and_makes_a_job_the_api_server_accepts(
    videopipe: Videopipe,
) -> None:
    """Spot scheduling on a GPU source survives the schemas (nothing pruned) into the VideoJob,
    and the Job built from it, with the GPU route's own toleration and affinity merged in, passes
    the API server's validation (server-side dry run)."""
    spot = {"key": "cloud.google.com/gke-spot", "operator": "Equal", "value": "true"}
    worker = {
        "summary": False,
        "serviceAccountName": "team-worker",
        "tolerations": [
            {**spot, "effect": "NoSchedule"},
            {"key": "drain", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60},
        ],
        "nodeSelector": {"cloud.google.com/gke-spot": "true", "pool": "transcribe"},
        "priorityClassName": "videopipe-batch",
    }
    accelerator = {"policy": "gpu", "gpuType": "nvidia-l4"}
    body = create(videopipe, "videosources", source(worker=worker, accelerator=accelerator))
    assert body["spec"]["worker"] == worker
    spec = SourceSpec.parse(body)
    obj = ObjectInfo(key="pending/talk.mp4", etag="abc", size=1_000_000)
    vj = manifests.build_videojob(spec, obj, routing.route(spec.accelerator, obj.size, None))
    vj = create(videopipe, "videojobs", vj)
    assert vj["spec"]["worker"] == worker
    job = manifests.build_job(VideoJobView.parse(vj), Config())
    pod = job["spec"]["template"]["spec"]
    assert len(pod["tolerations"]) == 3 and pod["serviceAccountName"] == "team-worker"
    created = videopipe.cluster.batch.create_namespaced_job(videopipe.namespace, job, dry_run="All")
    template = created.spec.template.spec
    assert template.node_selector == worker["nodeSelector"]
    assert template.priority_class_name == "videopipe-batch"
    assert [t.key for t in template.tolerations] == [
        "nvidia.com/gpu",
        "cloud.google.com/gke-spot",
        "drain",
    ]


def videojob(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "VideoJob",
        "metadata": {"name": "talk-0123456789ab"},
        "spec": {
            "source": "talks",
            "bucket": "videos",
            "key": "pending/talk.mp4",
            "path": "talk.mp4",
            "identity": "abc",
            "accelerator": "cpu",
            **spec,
        },
    }


def test_videojob_identity_is_immutable_and_attempts_only_grow(videopipe: Videopipe) -> None:
    create(videopipe, "videojobs", videojob())

    def patch(spec: dict[str, Any]) -> None:
        videopipe.custom.patch_namespaced_custom_object(
            GROUP, VERSION, videopipe.namespace, "videojobs", "talk-0123456789ab", {"spec": spec}
        )

    for change in ({"key": "pending/other.mp4"}, {"identity": "def"}, {"attempt": 0}):
        with pytest.raises(client.ApiException) as err:
            patch(change)
        assert err.value.status == 422, change
    patch({"attempt": 2})  # a retry


def test_videojob_status_phase_is_an_enum(videopipe: Videopipe) -> None:
    create(videopipe, "videojobs", videojob())
    with pytest.raises(client.ApiException) as err:
        videopipe.custom.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            videopipe.namespace,
            "videojobs",
            "talk-0123456789ab",
            {"status": {"phase": "Done"}},
        )
    assert err.value.status == 422
