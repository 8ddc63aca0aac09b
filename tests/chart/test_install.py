"""`helm install` on the real control plane, and a video through the operator it configured.

Real: the control plane (etcd, kube-apiserver with RBAC and PodSecurity admission, controller-
manager, scheduler, built from source), Helm's Go SDK doing the install and an upgrade
(server-side apply, CRDs from the chart's crds/), a namespace enforcing Pod Security
`restricted`, moto's S3 server, espeak-ng speech in an mp4, faster-whisper tiny.en in the worker.
The operator is the pod of the Deployment the chart installed, run by the kubelet stand-in as a
local process (`.venv/bin/videopipe` with the pod's args and env) with a token of the chart's
ServiceAccount bound to that pod, never the admin's: RBAC applies to it exactly as in a cluster.
Standing in: the kubelet, which runs the operator and worker pods as local processes, and Gemini
is not used.

Proofs: the API server accepts every ci/*-values.yaml render (server-side dry run); the RBAC is
enough (a video goes pending/ → completed/ with results, and the operator logs no 403) and,
namespaced, holds nothing cluster-scoped, yet the operator is ready within seconds; the operator
pod and the worker Jobs are admitted under `restricted`, the workers running as the chart's
worker ServiceAccount although the VideoSource names none; and the RBAC is not too much (the
operator's token cannot read Secrets elsewhere, touch other namespaces' Jobs or read anything
cluster-wide, the worker's has no rights at all).
"""

from __future__ import annotations

import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml
from kubernetes import client, config

from tests.chart.conftest import CHART, CI_VALUES, Json, load_values
from tests.cluster.harness import Cluster, wait_for
from tests.support import media
from tests.support.ports import free_port

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

RELEASE = "vp"
FULLNAME = f"{RELEASE}-videopipe"
WORKER_SA = f"{FULLNAME}-worker"
GROUP, VERSION = "videopipe.dev", "v1alpha1"
TEXT = "Hello from the chart test. The operator was installed with Helm."


@pytest.fixture(scope="module")
def talk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return media.talk(TEXT, tmp_path_factory.mktemp("chart-media") / "talk.mp4")


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    """A namespace that enforces Pod Security `restricted` (the worker Jobs must be admitted)."""
    name = cluster.create_namespace(f"vp-chart-{uuid.uuid4().hex[:6]}", pod_security="restricted")
    try:
        yield name
    finally:
        try:
            for plural in ("videojobs", "videosources"):
                cluster.drop_finalizers(GROUP, VERSION, plural, name)
        finally:
            cluster.delete_namespace(name)


def _api_as(kubeconfig: Path) -> client.ApiClient:
    """An ApiClient that authenticates with the token in `kubeconfig` (never the admin's)."""
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    return client.ApiClient(configuration)


def _status(call: Any, *args: Any, **kwargs: Any) -> int:
    """The HTTP status of an API call: 200 if it went through, else the error's code."""
    try:
        call(*args, **kwargs)
    except client.ApiException as e:
        return e.status
    return 200


def _install_values(bucket: str, s3_endpoint: str) -> Json:
    return {
        # The stand-in runs the operator pod on this host: ports must be free here.
        "operator": {"healthPort": free_port(), "metricsPort": free_port(), "logLevel": "INFO"},
        "events": {"port": free_port()},
        "videoSource": {
            "create": True,
            "name": "talks",
            "bucket": bucket,
            "endpoint": s3_endpoint,
            "region": "us-east-1",
            "pollIntervalSeconds": 1,
            "accelerator": {"policy": "cpu"},
            "worker": {"summary": False},
            "jobs": {"backoffLimit": 0, "ttlSecondsAfterFinished": 600},
        },
        "s3Credentials": {"accessKeyId": "testing", "secretAccessKey": "testing"},
    }


def _crd_names(cluster: Cluster) -> set[str]:
    ext = client.ApiextensionsV1Api(cluster.api)
    return {c.metadata.name for c in ext.list_custom_resource_definition().items}


def ready(health_port: int) -> bool:
    """The operator's /readyz answers 200 (the stand-in runs the pod on this host)."""
    try:
        url = f"http://127.0.0.1:{health_port}/readyz"
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def cluster_scoped_bindings_of(cluster: Cluster, namespace: str, account: str) -> list[str]:
    """ClusterRoleBindings that grant something to the ServiceAccount `namespace/account`."""
    rbac = client.RbacAuthorizationV1Api(cluster.api)
    return [
        b.metadata.name
        for b in rbac.list_cluster_role_binding().items
        for sub in b.subjects or []
        if sub.kind == "ServiceAccount" and (sub.namespace, sub.name) == (namespace, account)
    ]


def test_helm_install_runs_a_video_through_the_installed_operator(
    cluster: Cluster,
    namespace: str,
    s3,
    s3_endpoint: str,
    bucket: str,
    talk: Path,
) -> None:
    started = time.monotonic()
    crds_before = _crd_names(cluster)
    values = _install_values(bucket, s3_endpoint)
    custom = client.CustomObjectsApi(cluster.api)
    with helm.Config(kubeconfig_path=cluster.kubeconfig, namespace=namespace) as helm_config:
        release = helm_config.install(CHART, RELEASE, values, namespace=namespace, timeout=120)
        assert release["status"] == "deployed", release
        installed = time.monotonic() - started

        # The CRDs came from the chart's crds/ (unless an earlier test had applied crds/).
        ours = {yaml.safe_load(p.read_text())["metadata"]["name"] for p in CHART.glob("crds/*")}
        assert ours <= _crd_names(cluster)
        if not ours & crds_before:
            cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", *ours)

        # The operator pod is admitted under `restricted` (a rejected pod never exists: its
        # ReplicaSet only records FailedCreate), runs as the chart's ServiceAccount, which holds
        # nothing cluster-scoped, and is ready promptly: kopf does not scan Namespaces or CRDs.
        def operator_pods() -> list[client.V1Pod]:
            selector = "app.kubernetes.io/component=operator"
            return cluster.core.list_namespaced_pod(namespace, label_selector=selector).items

        pods = wait_for(operator_pods, timeout=30, message="operator pod admitted")
        assert [p.spec.service_account_name for p in pods] == [FULLNAME]
        assert cluster_scoped_bindings_of(cluster, namespace, FULLNAME) == []
        pod = pods[0].metadata.name

        def running() -> bool:
            run = cluster.kubelet.run_for(namespace, pod) if cluster.kubelet else None
            return run is not None and run.proc is not None

        wait_for(running, timeout=30, message="operator process started")
        process_started = time.monotonic()
        health = values["operator"]["healthPort"]

        def operator_log() -> str:
            return cluster.pod_log(namespace, pod)

        wait_for(lambda: ready(health), 60, 0.2, lambda: f"operator ready\n{operator_log()}")
        startup = time.monotonic() - process_started  # printed below; the wait bounds it
        try:

            def source_ready() -> bool:
                source = custom.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, "videosources", "talks"
                )
                conditions = (source.get("status") or {}).get("conditions") or []
                return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

            wait_for(source_ready, timeout=90, interval=0.5, message="VideoSource talks Ready")
            s3.put_object(Bucket=bucket, Key="pending/talk.mp4", Body=talk.read_bytes())

            def keys(folder: str) -> list[str]:
                listing = s3.list_objects_v2(Bucket=bucket, Prefix=f"{folder}/")
                return sorted(o["Key"] for o in listing.get("Contents", []))

            def describe() -> str:
                folders = {f: keys(f) for f in ("pending", "processing", "completed", "failed")}
                vjs = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "videojobs")
                status = {v["metadata"]["name"]: v.get("status") for v in vjs["items"]}
                tail = "\n".join(operator_log().splitlines()[-40:])
                return f"video completed\nfolders: {folders}\nvideojobs: {status}\n{tail}"

            wait_for(lambda: keys("completed") == ["completed/talk.mp4"], 240, 0.5, describe)
            assert keys("failed") == [] and keys("pending") == [] and keys("processing") == []
            assert "results/talk.mp4/manifest.json" in keys("results/talk.mp4")
            body = s3.get_object(Bucket=bucket, Key="results/talk.mp4/transcript.txt")["Body"]
            assert "chart" in body.read().decode().lower()

            def succeeded() -> Json | None:
                items = custom.list_namespaced_custom_object(
                    GROUP, VERSION, namespace, "videojobs"
                )["items"]
                done = [v for v in items if (v.get("status") or {}).get("phase") == "Succeeded"]
                return done[0] if len(items) == 1 and done else None

            wait_for(succeeded, timeout=30, message="VideoJob Succeeded")
            # The worker Job was admitted under `restricted` and ran as the worker account: the
            # VideoSource names none, the operator's default (from the chart) applied.
            source = custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, "videosources", "talks"
            )
            assert "serviceAccountName" not in source["spec"]["worker"]
            (job,) = cluster.batch.list_namespaced_job(namespace).items
            assert job.status.succeeded == 1
            pod_spec = job.spec.template.spec
            assert pod_spec.service_account_name == WORKER_SA
            assert pod_spec.automount_service_account_token is False
            labels = cluster.core.read_namespace(namespace).metadata.labels
            assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
            # Nothing was refused to the operator on the way.
            text = operator_log()
            assert " 403" not in text and "Forbidden" not in text, text
        finally:
            helm_config.uninstall(RELEASE, timeout=60)
    print(
        f"\nhelm install {installed:.1f} s, operator ready {startup:.1f} s after its process "
        f"started, video completed {time.monotonic() - started:.1f} s"
    )


def test_operator_token_is_enough_and_not_more(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    """What the chart's ServiceAccounts may do, asked of the API server with their own tokens."""
    values = {"operator": {"replicas": 0}}  # the RBAC alone; no operator needed for this
    other = cluster.create_namespace(f"vp-other-{uuid.uuid4().hex[:6]}")
    try:
        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "keys"}}
        cluster.core.create_namespaced_secret(namespace, secret)
        cluster.core.create_namespaced_secret(other, secret)
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "someone-elses"},
            "spec": {
                "suspend": True,
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "c", "image": "busybox", "command": ["true"]}],
                    }
                },
            },
        }
        cluster.batch.create_namespaced_job(other, job)
        with helm.Config(kubeconfig_path=cluster.kubeconfig, namespace=namespace) as helm_config:
            helm_config.install(CHART, RELEASE, values, namespace=namespace, timeout=60)
            operator = _api_as(cluster.token_kubeconfig(FULLNAME, namespace, tmp_path / "op"))
            worker = _api_as(cluster.token_kubeconfig(WORKER_SA, namespace, tmp_path / "wk"))
            core, batch = client.CoreV1Api(operator), client.BatchV1Api(operator)
            custom = client.CustomObjectsApi(operator)

            # Enough: what the operator does in its own namespace.
            assert _status(core.read_namespaced_secret, "keys", namespace) == 200
            assert _status(core.list_namespaced_pod, namespace) == 200
            assert _status(batch.list_namespaced_job, namespace) == 200
            assert (
                _status(
                    custom.list_namespaced_custom_object, GROUP, VERSION, namespace, "videojobs"
                )
                == 200
            )

            # Not more: Secrets and Jobs of other namespaces, Secrets by listing, pods by hand,
            # its own rights, cluster-wide reads of what it serves.
            assert _status(core.read_namespaced_secret, "keys", other) == 403
            assert _status(core.list_namespaced_secret, namespace) == 403
            assert _status(core.list_secret_for_all_namespaces) == 403
            assert _status(batch.list_namespaced_job, other) == 403
            assert _status(batch.read_namespaced_job, "someone-elses", other) == 403
            assert _status(batch.delete_namespaced_job, "someone-elses", other) == 403
            assert _status(batch.create_namespaced_job, other, job) == 403
            assert _status(batch.patch_namespaced_job, "someone-elses", other, {}) == 403
            pod = {"metadata": {"name": "by-hand"}, "spec": job["spec"]["template"]["spec"]}
            assert _status(core.create_namespaced_pod, namespace, pod) == 403
            assert _status(batch.list_job_for_all_namespaces) == 403
            assert _status(custom.list_cluster_custom_object, GROUP, VERSION, "videosources") == 403
            # Nothing cluster-scoped at all: kopf's scanning of CRDs and Namespaces is off.
            crds = client.ApiextensionsV1Api(operator).list_custom_resource_definition
            assert _status(crds) == 403
            assert _status(core.list_namespace) == 403
            assert cluster_scoped_bindings_of(cluster, namespace, FULLNAME) == []
            rbac = client.RbacAuthorizationV1Api(operator)
            binding = {
                "metadata": {"name": "escalate"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "cluster-admin",
                },
                "subjects": [{"kind": "ServiceAccount", "name": FULLNAME, "namespace": namespace}],
            }
            assert _status(rbac.create_namespaced_role_binding, namespace, binding) == 403

            # The worker's account has no rights at all.
            wcore, wcustom = client.CoreV1Api(worker), client.CustomObjectsApi(worker)
            assert _status(wcore.read_namespaced_secret, "keys", namespace) == 403
            assert _status(wcore.list_namespaced_pod, namespace) == 403
            assert (
                _status(
                    wcustom.list_namespaced_custom_object, GROUP, VERSION, namespace, "videojobs"
                )
                == 403
            )
            assert _status(client.BatchV1Api(worker).list_namespaced_job, namespace) == 403
            helm_config.uninstall(RELEASE, timeout=60)
    finally:
        cluster.delete_namespace(other)


@pytest.mark.parametrize("values_file", CI_VALUES, ids=[p.stem for p in CI_VALUES])
def test_api_server_accepts_every_ci_values_render(
    cluster: Cluster, namespace: str, render, values_file: Path, tmp_path: Path
) -> None:
    """A server-side dry run of each render: admission, CEL rules of the CRDs, defaulting.

    Objects of kinds this cluster does not serve (the Prometheus operator's) and objects in
    namespaces that do not exist here (operator.watchNamespaces, grafanaDashboard.namespace)
    are left out; test_render.py checks those offline.
    """
    cluster.apply(CHART / "crds")
    rendered = render(load_values(values_file), namespace=namespace)
    objects = [
        o
        for o in rendered.objects
        if o["kind"] not in ("ServiceMonitor", "PrometheusRule")
        and o["metadata"].get("namespace", namespace) == namespace
    ]
    manifest = tmp_path / "rendered.yaml"
    manifest.write_text(yaml.safe_dump_all(objects))
    result = cluster.kubectl(
        "apply", "--server-side", "--dry-run=server", "-f", str(manifest), check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("(server dry run)") == len(objects)
