"""VideoSource + object → VideoJob, and VideoJob → Job: the manifests `manifests.py` promises."""

from __future__ import annotations

import json
from typing import Any

import pytest
from videopipe_operator import manifests, naming
from videopipe_operator.config import Config
from videopipe_operator.constants import FINALIZER, Accelerator
from videopipe_operator.specs import VideoJobView

from tests.operator.builders import source_body, videojob_body

Json = dict[str, Any]


def job_for(config: Config, **kwargs: Any) -> Json:
    return manifests.build_job(VideoJobView.parse(videojob_body(**kwargs)), config)


def container(job: Json) -> Json:
    return job["spec"]["template"]["spec"]["containers"][0]


def env_of(job: Json) -> dict[str, Json]:
    return {e["name"]: e for e in container(job)["env"]}


def test_videojob_body(vj: VideoJobView) -> None:
    body = vj.raw
    assert body["metadata"]["finalizers"] == [FINALIZER]
    assert all(naming.is_label_value(v) for v in body["metadata"]["labels"].values())
    assert body["metadata"]["annotations"]["videopipe.dev/key"] == "pending/talk.mp4"
    assert vj.path == "talk.mp4" and vj.attempt == 1 and vj.identity == "abc123"
    assert vj.uploaded_at == "2025-01-02T03:04:05Z"
    assert vj.storage.endpoint == "http://s3.local:9000"


def test_videojob_identity_comes_from_our_metadata() -> None:
    body = videojob_body(etag="copied-etag-2", metadata={"videopipe-etag": "original-etag"})
    vj = VideoJobView.parse(body)
    assert vj.identity == "original-etag" and vj.object_etag == "copied-etag-2"
    assert vj.name == naming.videojob_name("talks", "pending/talk.mp4", "original-etag")


def test_job_is_owned_named_and_labelled(config: Config, vj: VideoJobView) -> None:
    job = manifests.build_job(vj, config)
    assert job["metadata"]["name"] == f"{vj.name}-1"
    owner = job["metadata"]["ownerReferences"][0]
    assert owner == {
        "apiVersion": "videopipe.dev/v1alpha1",
        "kind": "VideoJob",
        "name": vj.name,
        "uid": "vj-uid",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    labels = job["metadata"]["labels"]
    for key in ("name", "instance", "component", "managed-by"):
        assert f"app.kubernetes.io/{key}" in labels
    assert job["spec"]["template"]["metadata"]["labels"] == labels
    assert manifests.build_job(vj, config) == job  # pure and deterministic


def test_job_attempt_changes_only_the_name(config: Config, vj: VideoJobView) -> None:
    first, second = manifests.build_job(vj, config), manifests.build_job(vj, config, attempt=2)
    assert second["metadata"]["name"] == f"{vj.name}-2"
    assert second["metadata"]["annotations"]["videopipe.dev/attempt"] == "2"
    assert first["spec"]["template"]["spec"] == second["spec"]["template"]["spec"]


def test_job_security_is_restricted(config: Config) -> None:
    job = job_for(config)
    pod = job["spec"]["template"]["spec"]
    sc = container(job)["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["readOnlyRootFilesystem"] is True
    # A UID and GID of 10000 or more (checkov CKV_K8S_40), the worker image's user.
    assert sc["runAsUser"] == sc["runAsGroup"] == manifests.RUN_AS >= 10000
    assert pod["securityContext"]["runAsUser"] == pod["securityContext"]["fsGroup"] >= 10000
    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False
    mounts = {m["mountPath"]: m["name"] for m in container(job)["volumeMounts"]}
    assert mounts == {"/tmp": "tmp"}
    assert pod["volumes"][0]["emptyDir"]["sizeLimit"] == config.tmp_size_limit
    env = env_of(job)
    assert env["TMPDIR"]["value"] == "/tmp" and env["HOME"]["value"] == "/tmp"
    assert env["VIDEOPIPE_TERMINATION_LOG"]["value"] == "/dev/termination-log"
    assert container(job)["terminationMessagePath"] == "/dev/termination-log"
    assert container(job)["terminationMessagePolicy"] == "FallbackToLogsOnError"


def test_job_failure_policy_and_limits(config: Config) -> None:
    source = source_body(jobs={"backoffLimit": 2, "ttlSecondsAfterFinished": 600})
    spec = job_for(config, source=source)["spec"]
    rules = spec["podFailurePolicy"]["rules"]
    fail = next(r for r in rules if r["action"] == "FailJob")
    assert fail["onExitCodes"] == {"containerName": "worker", "operator": "In", "values": [2, 3]}
    ignore = next(r for r in rules if r["action"] == "Ignore")
    assert ignore["onPodConditions"] == [{"type": "DisruptionTarget", "status": "True"}]
    assert spec["backoffLimit"] == 2 and spec["ttlSecondsAfterFinished"] == 600


@pytest.mark.parametrize(
    ("size", "policy", "deadline"),
    [
        (0, "cpu", 1800),  # just the base
        (250_000_000, "cpu", 1800 + 1000 * 1.5),  # 1000 s at 2000 kbps
        (250_000_000, "gpu", 1800 + 1000 * 0.5),
        (10**13, "cpu", 86400),  # capped
    ],
)
def test_active_deadline_follows_the_length(
    config: Config, size: int, policy: str, deadline: float
) -> None:
    source = source_body(accelerator={"policy": policy})
    assert job_for(config, source=source, size=size)["spec"]["activeDeadlineSeconds"] == int(
        deadline
    )


def test_fixed_deadline_wins(config: Config) -> None:
    source = source_body(jobs={"activeDeadlineSeconds": 120})
    assert job_for(config, source=source)["spec"]["activeDeadlineSeconds"] == 120


def test_credentials_only_by_reference(config: Config) -> None:
    source = source_body(
        credentialsSecret="s3-creds",
        worker={"summary": True, "geminiSecret": "gemini"},
        region="eu-west-1",
    )
    job = job_for(config, source=source)
    env = env_of(job)
    assert env["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"] == {
        "name": "s3-creds",
        "key": "AWS_ACCESS_KEY_ID",
    }
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "s3-creds"
    assert env["GEMINI_API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "gemini"
    assert env["AWS_REGION"]["value"] == "eu-west-1"
    for item in env.values():
        if item["name"].startswith(("AWS_ACCESS", "AWS_SECRET", "GEMINI")):
            assert "value" not in item
    assert "--summary" in container(job)["args"]


def test_no_credentials_secret_means_default_chain(config: Config) -> None:
    env = env_of(job_for(config))
    assert "AWS_ACCESS_KEY_ID" not in env and "GEMINI_API_KEY" not in env


def test_worker_args(config: Config) -> None:
    source = source_body(
        prefix="media/",
        worker={"model": "small", "language": "de", "beamSize": 5, "extraArgs": ["--x", "1"]},
    )
    args = container(job_for(config, source=source, key="media/pending/a b/ü.mp4"))["args"]
    assert args[:4] == [
        "transcribe",
        "s3://videos/media/processing/a b/ü.mp4",
        "--output",
        "s3://videos/media/results/a b/ü.mp4/",
    ]
    joined = " ".join(args)
    for part in ("--model small", "--language de", "--beam-size 5", "--no-summary", "--x 1"):
        assert part in joined
    assert "--endpoint-url http://s3.local:9000" in joined
    assert "--device cpu" in joined


def test_extra_env_cannot_override_ours(config: Config) -> None:
    source = source_body(
        worker={
            "env": [
                {"name": "VIDEOPIPE_GEMINI_BASE_URL", "value": "http://x"},
                {"name": "TMPDIR", "value": "/evil"},
            ]
        }
    )
    env = env_of(job_for(config, source=source))
    assert env["VIDEOPIPE_GEMINI_BASE_URL"]["value"] == "http://x"
    assert env["TMPDIR"]["value"] == "/tmp"


def test_gpu_route(config: Config) -> None:
    source = source_body(accelerator={"policy": "gpu", "gpuType": "nvidia-tesla-t4"})
    job = job_for(config, source=source)
    pod = job["spec"]["template"]["spec"]
    assert container(job)["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
        "tolerations"
    ]
    term = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    expr = term["nodeSelectorTerms"][0]["matchExpressions"][0]
    assert expr == {
        "key": "cloud.google.com/gke-accelerator",
        "operator": "In",
        "values": ["nvidia-tesla-t4"],
    }
    assert "--device cuda" in " ".join(container(job)["args"])
    assert job["metadata"]["labels"]["videopipe.dev/accelerator"] == "gpu"


def test_cpu_route_has_no_gpu(config: Config) -> None:
    job = job_for(config, source=source_body(accelerator={"policy": "cpu"}))
    pod = job["spec"]["template"]["spec"]
    assert "tolerations" not in pod and "affinity" not in pod
    assert "nodeSelector" not in pod and "priorityClassName" not in pod
    assert "nvidia.com/gpu" not in json.dumps(container(job)["resources"])


SPOT = {"key": "cloud.google.com/gke-spot", "operator": "Equal", "value": "true"}
SPOT_TOLERATION = {**SPOT, "effect": "NoSchedule"}
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
GPU_AFFINITY = {"key": "cloud.google.com/gke-accelerator", "operator": "Exists"}
DEDICATED = {"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}
EVICTION_GRACE = {
    "key": "drain",
    "operator": "Exists",
    "effect": "NoExecute",
    "tolerationSeconds": 60,
}


def scheduled(config: Config, policy: str, **worker: Any) -> Json:
    source = source_body(accelerator={"policy": policy}, worker=worker)
    return job_for(config, source=source)["spec"]["template"]["spec"]


def gpu_affinity_of(pod: Json) -> list[Json]:
    required = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    return [e for term in required["nodeSelectorTerms"] for e in term["matchExpressions"]]


@pytest.mark.parametrize(
    ("policy", "worker", "tolerations", "node_selector", "affinity"),
    [
        # A Spot CPU pool: its taint tolerated and the pods kept there.
        (
            "cpu",
            {
                "tolerations": [SPOT_TOLERATION],
                "nodeSelector": {"cloud.google.com/gke-spot": "true"},
            },
            [SPOT_TOLERATION],
            {"cloud.google.com/gke-spot": "true"},
            None,
        ),
        # A Spot GPU pool: both taints tolerated; the selector and the accelerator affinity hold.
        (
            "gpu",
            {
                "tolerations": [SPOT_TOLERATION],
                "nodeSelector": {"cloud.google.com/gke-spot": "true"},
            },
            [GPU_TOLERATION, SPOT_TOLERATION],
            {"cloud.google.com/gke-spot": "true"},
            [GPU_AFFINITY],
        ),
        # The source repeating the GPU toleration does not list it twice.
        (
            "gpu",
            {"tolerations": [GPU_TOLERATION, SPOT_TOLERATION]},
            [GPU_TOLERATION, SPOT_TOLERATION],
            None,
            [GPU_AFFINITY],
        ),
        # Nothing asked: the GPU route's own placement only.
        ("gpu", {}, [GPU_TOLERATION], None, [GPU_AFFINITY]),
        # A dedicated pool by its taint with any value, and an eviction grace.
        (
            "cpu",
            {"tolerations": [DEDICATED, EVICTION_GRACE], "nodeSelector": {"pool": "transcribe"}},
            [DEDICATED, EVICTION_GRACE],
            {"pool": "transcribe"},
            None,
        ),
    ],
    ids=["spot-cpu", "spot-gpu", "gpu-toleration-once", "gpu-only", "dedicated-pool"],
)
def test_source_scheduling_merges_with_the_route(
    config: Config,
    policy: str,
    worker: Json,
    tolerations: list[Json],
    node_selector: dict[str, str] | None,
    affinity: list[Json] | None,
) -> None:
    pod = scheduled(config, policy, **worker)
    assert pod.get("tolerations") == tolerations
    assert pod.get("nodeSelector") == node_selector
    assert (gpu_affinity_of(pod) if "affinity" in pod else None) == affinity
    assert "priorityClassName" not in pod


def test_source_priority_class(config: Config) -> None:
    pod = scheduled(config, "cpu", priorityClassName="batch-low")
    assert pod["priorityClassName"] == "batch-low"


def test_scheduling_is_snapshotted_in_the_videojob(config: Config) -> None:
    """The Job follows the VideoJob's copy: editing the source later changes no queued Job."""
    source = source_body(worker={"tolerations": [SPOT_TOLERATION], "nodeSelector": {"a": "b"}})
    body = videojob_body(source=source)
    assert body["spec"]["worker"]["tolerations"] == [SPOT_TOLERATION]
    source["spec"]["worker"]["tolerations"].append(GPU_TOLERATION)
    source["spec"]["worker"]["nodeSelector"]["c"] = "d"
    pod = manifests.build_job(VideoJobView.parse(body), config)["spec"]["template"]["spec"]
    assert pod["tolerations"] == [SPOT_TOLERATION] and pod["nodeSelector"] == {"a": "b"}


@pytest.mark.parametrize(
    ("from_source", "default", "expected"),
    [
        ("team-worker", "vp-videopipe-worker", "team-worker"),  # the source's choice wins
        (None, "vp-videopipe-worker", "vp-videopipe-worker"),  # else the operator's default
        (None, "", None),  # else the namespace's default (no field)
    ],
)
def test_worker_service_account(
    from_source: str | None, default: str, expected: str | None
) -> None:
    worker = {"serviceAccountName": from_source} if from_source else {}
    config = Config(worker_service_account=default)
    pod = job_for(config, source=source_body(worker=worker))["spec"]["template"]["spec"]
    assert pod.get("serviceAccountName") == expected
    assert pod["automountServiceAccountToken"] is False  # whichever account: no API token


def test_resources_from_the_source(config: Config) -> None:
    source = source_body(
        worker={"resources": {"cpu": {"requests": {"cpu": "250m", "memory": "256Mi"}}}}
    )
    assert container(job_for(config, source=source))["resources"] == {
        "requests": {"cpu": "250m", "memory": "256Mi"}
    }


def test_result_uris(vj: VideoJobView) -> None:
    uris = manifests.result_uris(vj, summary=False)
    assert uris["prefix"] == "s3://videos/results/talk.mp4/"
    assert uris["srt"] == "s3://videos/results/talk.mp4/transcript.srt"
    assert "summary" not in uris
    assert manifests.result_uris(vj, summary=True)["summary"].endswith("/summary.json")


def test_accelerator_snapshot(config: Config) -> None:
    vj = VideoJobView.parse(videojob_body(source=source_body(accelerator={"policy": "gpu"})))
    assert vj.accelerator is Accelerator.GPU


@pytest.mark.parametrize(
    ("model", "policy", "memory"),
    [
        (None, "cpu", ("1536Mi", "2Gi")),  # the worker's default, tiny.en
        ("base.en", "cpu", ("1536Mi", "2Gi")),
        ("small", "cpu", ("2Gi", "3Gi")),
        ("large-v3-turbo", "gpu", ("3Gi", "6Gi")),
        ("distil-large-v3", "cpu", ("3Gi", "4Gi")),
        ("large-v3", "cpu", ("4Gi", "6Gi")),
        ("/models/my-finetune", "gpu", ("4Gi", "8Gi")),  # unknown: sized as large
    ],
)
def test_default_memory_follows_the_model_and_route(
    config: Config, model: str | None, policy: str, memory: tuple[str, str]
) -> None:
    worker = {"model": model} if model else {}
    source = source_body(worker=worker, accelerator={"policy": policy})
    resources = container(job_for(config, source=source))["resources"]
    assert (resources["requests"]["memory"], resources["limits"]["memory"]) == memory
    assert resources["requests"]["cpu"] == "1"


def test_the_default_model_is_the_workers() -> None:
    from videopipe_operator.sizing import WORKER_DEFAULT_MODEL
    from videopipe_worker.transcribe import DEFAULT_MODEL

    assert WORKER_DEFAULT_MODEL == DEFAULT_MODEL


# -- the model cache (spec.worker.modelCache) --

PVC_CACHE: Json = {"persistentVolumeClaim": {"claimName": "whisper-models", "subPath": "v1"}}
GCS_CACHE: Json = {
    "mountPath": "/opt/models",
    "gcsFuse": {
        "bucketName": "my-project-models",
        "onlyDir": "whisper/ct2",
        "mountOptions": ["metadata-cache:ttl-secs:-1"],
    },
}


def cached_job(config: Config, cache: Json, **worker: Any) -> Json:
    source = source_body(worker={"model": "large-v3", **worker, "modelCache": cache})
    return job_for(config, source=source)


def test_pvc_model_cache_is_mounted_read_only(config: Config) -> None:
    job = cached_job(config, PVC_CACHE)
    pod = job["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["model-cache"] == {
        "name": "model-cache",
        "persistentVolumeClaim": {"claimName": "whisper-models", "readOnly": True},
    }
    mounts = {m["name"]: m for m in container(job)["volumeMounts"]}
    # The default mountPath (the CRD's), the subPath on the mount, read-only on both sides.
    assert mounts["model-cache"] == {
        "name": "model-cache",
        "mountPath": "/models",
        "readOnly": True,
        "subPath": "v1",
    }
    assert mounts["tmp"] == {"name": "tmp", "mountPath": "/tmp"}
    args = container(job)["args"]
    assert args[args.index("--model-cache") + 1] == "/models"
    assert args[args.index("--model") + 1] == "large-v3"
    # Nothing for GKE's FUSE sidecar injector: no bucket here.
    assert manifests.GCSFUSE_ANNOTATION not in job["spec"]["template"]["metadata"]["annotations"]
    assert container(job)["securityContext"]["readOnlyRootFilesystem"] is True


def test_gcs_fuse_model_cache_is_a_read_only_csi_volume_with_the_sidecar_annotation(
    config: Config,
) -> None:
    job = cached_job(config, GCS_CACHE)
    template = job["spec"]["template"]
    volumes = {v["name"]: v for v in template["spec"]["volumes"]}
    assert volumes["model-cache"]["csi"] == {
        "driver": "gcsfuse.csi.storage.gke.io",
        "readOnly": True,
        "volumeAttributes": {
            "bucketName": "my-project-models",
            "mountOptions": "implicit-dirs,only-dir=whisper/ct2,metadata-cache:ttl-secs:-1",
        },
    }
    mounts = {m["name"]: m for m in container(job)["volumeMounts"]}
    assert mounts["model-cache"] == {
        "name": "model-cache",
        "mountPath": "/opt/models",
        "readOnly": True,
    }
    args = container(job)["args"]
    assert args[args.index("--model-cache") + 1] == "/opt/models"
    # On the pod (where the webhook looks), not on the Job.
    assert template["metadata"]["annotations"]["gke-gcsfuse/volumes"] == "true"
    assert "gke-gcsfuse/volumes" not in job["metadata"]["annotations"]


def test_gcs_fuse_without_only_dir_mounts_the_whole_bucket(config: Config) -> None:
    job = cached_job(config, {"gcsFuse": {"bucketName": "models"}})
    (volume,) = [v for v in job["spec"]["template"]["spec"]["volumes"] if "csi" in v]
    assert volume["csi"]["volumeAttributes"] == {
        "bucketName": "models",
        "mountOptions": "implicit-dirs",
    }


def test_no_model_cache_changes_nothing(config: Config) -> None:
    job = job_for(config, source=source_body(worker={"model": "small"}))
    pod = job["spec"]["template"]["spec"]
    assert [v["name"] for v in pod["volumes"]] == ["tmp"]
    assert [m["name"] for m in container(job)["volumeMounts"]] == ["tmp"]
    assert "--model-cache" not in container(job)["args"]
    assert job["spec"]["template"]["metadata"]["annotations"] == job["metadata"]["annotations"]


def test_model_cache_is_snapshotted_in_the_videojob(config: Config) -> None:
    """A source moved to another cache later changes no queued Job."""
    source = source_body(worker={"modelCache": json.loads(json.dumps(PVC_CACHE))})
    body = videojob_body(source=source)
    source["spec"]["worker"]["modelCache"]["persistentVolumeClaim"]["claimName"] = "other"
    pod = manifests.build_job(VideoJobView.parse(body), config)["spec"]["template"]["spec"]
    claims = [v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if v["name"] != "tmp"]
    assert claims == ["whisper-models"]


@pytest.mark.parametrize("cache", [PVC_CACHE, GCS_CACHE], ids=["pvc", "gcsFuse"])
def test_cached_jobs_are_valid_kubernetes(config: Config, cache: Json) -> None:
    """Strict Kubernetes 1.35 schemas: a misspelt volume field would be refused."""
    import kubernetes_validate

    kubernetes_validate.validate(cached_job(config, cache), "1.35.4", strict=True)
