"""The chart rendered offline by Helm's own SDK: every ci/*-values.yaml, lint, schema, semantics.

Real: Helm v4 (`helm-python-sdk`) renders, lints (strict, for the test control plane's Kubernetes
version) and validates values against `values.schema.json`; every rendered object is validated
against the Kubernetes 1.35 OpenAPI schemas (`kubernetes-validate`, strict) and the VideoSource
against our own CRD's schema. What the tests then check is what a reviewer would: the RBAC is
exactly the rules the operator code needs, the pods are restricted, the worker ServiceAccount has
no rights, the monitoring objects point at what exists. No cluster here (see test_install.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.chart.conftest import (
    CHART,
    CI_VALUES,
    KUBE_VERSION,
    NAMESPACE,
    RELEASE,
    REPO,
    Json,
    Rendered,
    load_values,
)

FULLNAME = f"{RELEASE}-videopipe"
WORKER = f"{FULLNAME}-worker"
CRD_FILES = sorted((REPO / "crds").glob("*.yaml"))
# No offline OpenAPI schema exists for these kinds (prometheus-operator CRDs, our own CRD); each
# is checked another way below: the VideoSource against crds/, the monitoring objects by what
# they must point at (test_monitoring_objects_point_at_what_exists).
NOT_IN_KUBERNETES_SCHEMAS = {"VideoSource", "ServiceMonitor", "PrometheusRule"}
STANDARD_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/component",
    "helm.sh/chart",
)

ci_files = pytest.mark.parametrize("values_file", CI_VALUES, ids=[p.stem for p in CI_VALUES])


def crd_schema(kind: str) -> Json:
    for path in CRD_FILES:
        crd = yaml.safe_load(path.read_text())
        if crd["spec"]["names"]["kind"] == kind:
            return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    raise KeyError(kind)


# -- every ci/*-values.yaml --


def test_there_is_a_ci_values_file_per_feature() -> None:
    names = {p.stem.removesuffix("-values") for p in CI_VALUES}
    assert {
        "default",
        "clusterwide",
        "watch-namespaces",
        "videosource",
        "existing-secrets",
        "gke",
        "monitoring",
        "paused",
        "spot",
        "events",
        "models-cache",
    } <= names


@ci_files
def test_ci_values_pass_schema_and_strict_lint(chart: helm.Chart, values_file: Path) -> None:
    values = load_values(values_file)
    chart.validate_schema(values)
    report = helm.lint(CHART, values, strict=True, kube_version=f"v{KUBE_VERSION}")
    problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
    assert not problems, problems
    assert report["total_charts_linted"] == 1


@ci_files
def test_rendered_objects_are_valid_kubernetes_1_35(render, values_file: Path) -> None:
    rendered: Rendered = render(load_values(values_file))
    assert rendered.objects
    for obj in rendered.objects:
        what = f"{obj['kind']} {obj['metadata']['name']}"
        if obj["kind"] == "VideoSource":
            jsonschema.validate(obj, crd_schema("VideoSource"))
            continue
        if obj["kind"] in NOT_IN_KUBERNETES_SCHEMAS:
            continue
        try:
            kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            raise AssertionError(f"{what}: {getattr(e.caught, 'message', e)}") from None


@ci_files
def test_every_object_and_pod_carries_the_standard_labels(render, values_file: Path) -> None:
    rendered: Rendered = render(load_values(values_file))
    for obj in rendered.objects:
        labels = obj["metadata"].get("labels") or {}
        missing = [k for k in STANDARD_LABELS if k not in labels]
        assert not missing, f"{obj['kind']} {obj['metadata']['name']} lacks {missing}"
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
    for deployment in rendered.of_kind("Deployment"):
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert all(k in pod_labels for k in STANDARD_LABELS)


@ci_files
def test_notes_tell_what_to_do_next(render, values_file: Path) -> None:
    notes = render(load_values(values_file)).notes
    assert "kubectl -n media get videojobs -w" in notes
    assert "pending/" in notes and "results/" in notes
    assert "kubectl apply --server-side -f charts/videopipe/crds/" in notes


# -- values and their schema --


def _leaves(values: Json, prefix: str = "") -> list[str]:
    out = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out += _leaves(value, path + ".")
        else:
            out.append(path)
    return out


def test_every_value_is_documented_by_a_comment_that_starts_with_its_name() -> None:
    text = (CHART / "values.yaml").read_text()

    def documented(path: str) -> bool:
        # A comment on a block (operator.resources) documents what is inside it.
        parts = path.split(".")
        return any(f"# {'.'.join(parts[:n])} -- " in text for n in range(1, len(parts) + 1))

    undocumented = [p for p in _leaves(yaml.safe_load(text)) if not documented(p)]
    assert not undocumented


def test_schema_is_draft_07_and_closes_every_object_with_properties() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    open_objects = []

    def walk(node: Any, path: str) -> None:
        if not isinstance(node, dict):
            return
        if "properties" in node and node.get("additionalProperties") is not False:
            open_objects.append(path or "(root)")
        for key, child in (node.get("properties") or {}).items():
            walk(child, f"{path}.{key}".lstrip("."))

    walk(schema, "")
    assert not open_objects


BAD_VALUES = {
    "unknown top-level key": ({"replicaCount": 2}, "replicaCount"),
    "unknown operator key": ({"operator": {"replica": 1}}, "replica"),
    "two operators (kopf peering)": ({"operator": {"replicas": 2}}, "replicas"),
    "log level": ({"operator": {"logLevel": "verbose"}}, "logLevel"),
    "port as text": ({"operator": {"metricsPort": "http"}}, "metricsPort"),
    "port out of range": ({"operator": {"healthPort": 70000}}, "healthPort"),
    "env not VIDEOPIPE_*": ({"operator": {"env": {"AWS_SECRET_ACCESS_KEY": "x"}}}, "VIDEOPIPE_"),
    "namespace name": ({"operator": {"watchNamespaces": ["Media_Team"]}}, "watchNamespaces"),
    "image digest": ({"worker": {"image": {"digest": "latest"}}}, "digest"),
    "videoSource without bucket": ({"videoSource": {"create": True}}, "bucket"),
    "bucket name": ({"videoSource": {"bucket": "My_Bucket"}}, "bucket"),
    "endpoint without scheme": ({"videoSource": {"endpoint": "minio:9000"}}, "endpoint"),
    "accelerator policy": ({"videoSource": {"accelerator": {"policy": "tpu"}}}, "policy"),
    "access key without secret": ({"s3Credentials": {"accessKeyId": "AKIA"}}, "secretAccessKey"),
    "Workload Identity not a GSA": (
        {"serviceAccount": {"gcpServiceAccount": "videopipe"}},
        "gcpServiceAccount",
    ),
    "rbac flag as text": ({"rbac": {"clusterWide": "yes"}}, "clusterWide"),
    "removed rbac.kopfScanning": ({"rbac": {"kopfScanning": False}}, "kopfScanning"),
    # YAML's `true` unquoted: a node label value must be a string.
    "node selector value not a string": (
        {"videoSource": {"worker": {"nodeSelector": {"cloud.google.com/gke-spot": True}}}},
        "nodeSelector",
    ),
    "toleration operator": (
        {"videoSource": {"worker": {"tolerations": [{"key": "a", "operator": "In"}]}}},
        "operator",
    ),
    "toleration misspelt key": (
        {"videoSource": {"worker": {"tolerations": [{"key": "a", "efect": "NoSchedule"}]}}},
        "efect",
    ),
    "unknown monitoring key": ({"serviceMonitor": {"enable": True}}, "enable"),
    "model cache of both kinds": (
        {
            "models": {
                "cache": {
                    "persistentVolumeClaim": {"claimName": "m"},
                    "gcsFuse": {"bucketName": "models"},
                }
            }
        },
        "cache",
    ),
    "model cache of no kind": ({"models": {"cache": {"mountPath": "/models"}}}, "cache"),
    "model cache under /tmp": (
        {"models": {"cache": {"mountPath": "/tmp/m", "gcsFuse": {"bucketName": "models"}}}},
        "mountPath",
    ),
    "model cache option with a comma": (
        {"models": {"cache": {"gcsFuse": {"bucketName": "models", "mountOptions": ["a,b"]}}}},
        "mountOptions",
    ),
    "prefetch name with a space": ({"models": {"prefetch": ["large v3"]}}, "prefetch"),
}


@pytest.mark.parametrize("values,mentions", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_schema_rejects_bad_values(chart: helm.Chart, values: Json, mentions: str) -> None:
    with pytest.raises(helm.HelmValuesError) as caught:
        chart.validate_schema(values)
    assert mentions in str(caught.value)
    # Helm refuses to render (install) with them too, not only to validate.
    with pytest.raises(helm.HelmError):
        chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)


def test_summary_without_a_gemini_key_fails_at_render(render) -> None:
    with pytest.raises(helm.HelmError, match=r"needs gemini\.apiKey or gemini\.existingSecret"):
        render({"videoSource": {"create": True, "bucket": "talks", "worker": {"summary": True}}})


# -- the operator Deployment --


def test_operator_deployment_is_one_restricted_pod_with_probes(render) -> None:
    rendered: Rendered = render({})
    deployment = rendered.one("Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    assert spec["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "videopipe",
        "app.kubernetes.io/instance": RELEASE,
        "app.kubernetes.io/component": "operator",
    }
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == FULLNAME
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert container["image"] == "ghcr.io/videopipe/videopipe-operator:0.1.0"
    assert container["args"][:2] == ["operator", "--standalone"]
    assert container["args"][2:4] == ["--namespace", NAMESPACE]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert pod["volumes"][0]["emptyDir"]["sizeLimit"] == "64Mi"
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"health": 8080, "metrics": 9090, "events": 8081}
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["VIDEOPIPE_WORKER_IMAGE"] == "ghcr.io/videopipe/videopipe-worker:0.1.0"
    assert env["VIDEOPIPE_WORKER_SERVICE_ACCOUNT"] == f"{FULLNAME}-worker"


def test_operator_settings_images_and_ports_come_from_values(render) -> None:
    rendered: Rendered = render(load_values(CHART / "ci" / "gke-values.yaml"))
    (container,) = rendered.one("Deployment")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["VIDEOPIPE_MAX_WORKERS"] == "64"
    assert env["VIDEOPIPE_WORKER_IMAGE"].endswith("videopipe-worker@sha256:" + "0" * 64)
    assert container["image"].endswith("/videopipe-operator:0.1.0")
    rendered = render({"operator": {"healthPort": 18080, "metricsPort": 19090}})
    (container,) = rendered.one("Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["args"][-4:] == ["--health-port", "18080", "--metrics-port", "19090"]
    metrics = rendered.one("Service", f"{FULLNAME}-metrics")
    assert metrics["spec"]["ports"][0]["targetPort"] == "metrics"


# -- RBAC --

# What the operator code needs (see the comment on each rule in templates/rbac.yaml).
OPERATOR_RULES = {
    ("videopipe.dev", "videosources"): {"get", "list", "watch", "patch"},
    ("videopipe.dev", "videosources/status"): {"patch"},
    ("videopipe.dev", "videojobs"): {"get", "list", "watch", "create", "patch", "delete"},
    ("videopipe.dev", "videojobs/status"): {"patch"},
    ("batch", "jobs"): {"list", "watch", "create", "delete"},
    ("", "pods"): {"list"},
    ("", "secrets"): {"get"},
    ("", "persistentvolumeclaims"): {"get"},
    ("", "events"): {"create"},
}


def rules_of(role: Json) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"], rule
        assert "resourceNames" not in rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                out.setdefault((group, resource), set()).update(rule["verbs"])
    return out


def test_rbac_is_a_role_in_the_release_namespace_by_default(render) -> None:
    rendered: Rendered = render({})
    role = rendered.one("Role")
    assert role["metadata"]["namespace"] == NAMESPACE
    assert rules_of(role) == OPERATOR_RULES
    binding = rendered.one("RoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": FULLNAME, "namespace": NAMESPACE}
    ]
    # Nothing cluster-scoped: serving given namespaces, the operator turns kopf's cluster
    # scanning (Namespaces, CRDs) off; test_install.py proves it starts without.
    assert not rendered.of_kind("ClusterRole") and not rendered.of_kind("ClusterRoleBinding")


def test_rbac_cluster_wide_is_one_cluster_role_and_all_namespaces(render) -> None:
    rendered: Rendered = render(load_values(CHART / "ci" / "clusterwide-values.yaml"))
    assert not rendered.of_kind("Role") and not rendered.of_kind("RoleBinding")
    operator_role = rendered.one("ClusterRole", f"{FULLNAME}-{NAMESPACE}")
    assert rules_of(operator_role) == OPERATOR_RULES
    scanning = rendered.one("ClusterRole", f"{FULLNAME}-{NAMESPACE}-kopf-scanning")
    # kopf does not list namespaces when it serves the whole cluster.
    assert rules_of(scanning) == {
        ("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"}
    }
    args = rendered.one("Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--all-namespaces" in args and "--namespace" not in args


def test_cluster_scoped_names_differ_between_namespaces(render) -> None:
    """Release names are unique per namespace: `videopipe` in two namespaces must not clash.
    (Only cluster-wide installs have cluster-scoped objects.)"""
    values = {"rbac": {"clusterWide": True}}
    kinds = ("ClusterRole", "ClusterRoleBinding")

    def names(namespace: str) -> set[str]:
        objects = render(values, namespace=namespace).objects
        return {o["metadata"]["name"] for o in objects if o["kind"] in kinds}

    assert names("team-a") and not names("team-a") & names("team-b")


def test_watch_namespaces_get_a_role_each_and_nothing_cluster_scoped(render) -> None:
    rendered: Rendered = render(load_values(CHART / "ci" / "watch-namespaces-values.yaml"))
    served = [NAMESPACE, "media-team-a", "media-team-b"]
    assert sorted(r["metadata"]["namespace"] for r in rendered.of_kind("Role")) == sorted(served)
    assert all(rules_of(r) == OPERATOR_RULES for r in rendered.of_kind("Role"))
    for binding in rendered.of_kind("RoleBinding"):
        assert binding["subjects"][0]["namespace"] == NAMESPACE
    # The workers' default ServiceAccount exists wherever a VideoSource may be.
    workers = [a for a in rendered.of_kind("ServiceAccount") if a["metadata"]["name"] == WORKER]
    assert sorted(a["metadata"]["namespace"] for a in workers) == sorted(served)
    assert not rendered.of_kind("ClusterRole") and not rendered.of_kind("ClusterRoleBinding")
    args = rendered.one("Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert [args[i + 1] for i, a in enumerate(args) if a == "--namespace"] == served
    worker_policies = [p for p in rendered.of_kind("NetworkPolicy") if "worker" in str(p)]
    assert sorted(p["metadata"]["namespace"] for p in worker_policies) == sorted(served)


def test_rbac_create_false_creates_no_rbac(render) -> None:
    rendered: Rendered = render({"rbac": {"create": False}})
    kinds = {o["kind"] for o in rendered.objects}
    assert not kinds & {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}


# -- the worker ServiceAccount --


@pytest.mark.parametrize("values_file", ["videosource", "clusterwide"])
def test_worker_service_account_has_no_token_and_no_binding(render, values_file: str) -> None:
    rendered: Rendered = render(load_values(CHART / "ci" / f"{values_file}-values.yaml"))
    worker = rendered.one("ServiceAccount", WORKER)
    assert worker["metadata"]["namespace"] == NAMESPACE
    assert worker["automountServiceAccountToken"] is False
    assert worker["metadata"]["labels"]["app.kubernetes.io/component"] == "worker"
    bindings = rendered.of_kind("RoleBinding") + rendered.of_kind("ClusterRoleBinding")
    subjects = [s["name"] for b in bindings for s in b["subjects"]]
    assert WORKER not in subjects
    # It is the operator's default for every VideoSource, the chart's own included (which
    # therefore names none: test_install.py checks the worker pod's account).
    (container,) = rendered.one("Deployment")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["VIDEOPIPE_WORKER_SERVICE_ACCOUNT"] == WORKER
    for source in rendered.of_kind("VideoSource"):
        assert "serviceAccountName" not in source["spec"]["worker"]


def test_worker_service_account_not_created_falls_back_to_a_named_one(render) -> None:
    values = {"worker": {"serviceAccount": {"create": False, "name": "media-worker"}}}
    rendered: Rendered = render(values)
    assert [a["metadata"]["name"] for a in rendered.of_kind("ServiceAccount")] == [FULLNAME]
    (container,) = rendered.one("Deployment")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["VIDEOPIPE_WORKER_SERVICE_ACCOUNT"] == "media-worker"


def test_workload_identity_annotations(render) -> None:
    rendered: Rendered = render(load_values(CHART / "ci" / "gke-values.yaml"))
    annotation = "iam.gke.io/gcp-service-account"
    operator = rendered.one("ServiceAccount", FULLNAME)
    assert operator["metadata"]["annotations"][annotation].startswith("videopipe-operator@")
    worker = rendered.one("ServiceAccount", f"{FULLNAME}-worker")
    assert worker["metadata"]["annotations"][annotation].startswith("videopipe-worker@")


# -- the default VideoSource and the Secrets --


def test_default_videosource_and_the_secrets_the_chart_creates(render) -> None:
    rendered: Rendered = render(load_values(CHART / "ci" / "videosource-values.yaml"))
    secrets = {s["metadata"]["name"]: s for s in rendered.of_kind("Secret")}
    assert set(secrets) == {f"{FULLNAME}-s3", f"{FULLNAME}-gemini"}
    assert set(secrets[f"{FULLNAME}-s3"]["data"]) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    assert set(secrets[f"{FULLNAME}-gemini"]["data"]) == {"GEMINI_API_KEY"}
    spec = rendered.one("VideoSource", "talks")["spec"]
    assert spec["bucket"] == "talks-bucket"
    assert spec["prefix"] == "uploads"
    assert spec["endpoint"] == "https://storage.googleapis.com"
    assert spec["credentialsSecret"] == f"{FULLNAME}-s3"
    assert spec["worker"]["geminiSecret"] == f"{FULLNAME}-gemini"
    assert spec["worker"]["summary"] is True
    assert spec["worker"]["resources"]["cpu"]["requests"]["cpu"] == "2"
    assert spec["accelerator"] == {"policy": "auto", "gpuMinDurationSeconds": 300}
    assert spec["maxConcurrentJobs"] == 8


def test_existing_secrets_are_referenced_not_created(render) -> None:
    rendered: Rendered = render(load_values(CHART / "ci" / "existing-secrets-values.yaml"))
    assert not rendered.of_kind("Secret")
    spec = rendered.one("VideoSource")["spec"]
    assert spec["credentialsSecret"] == "my-s3-keys"
    assert spec["worker"]["geminiSecret"] == "my-gemini-key"


def test_spot_scheduling_reaches_the_videosource(render) -> None:
    rendered: Rendered = render(load_values(CHART / "ci" / "spot-values.yaml"))
    worker = rendered.one("VideoSource")["spec"]["worker"]
    assert worker["tolerations"] == [
        {
            "key": "cloud.google.com/gke-spot",
            "operator": "Equal",
            "value": "true",
            "effect": "NoSchedule",
        }
    ]
    assert worker["nodeSelector"] == {"cloud.google.com/gke-spot": "true"}
    assert worker["priorityClassName"] == "videopipe-batch"
    # None of it by default.
    default = render(load_values(CHART / "ci" / "videosource-values.yaml"))
    assert not {"tolerations", "nodeSelector", "priorityClassName"} & set(
        default.one("VideoSource")["spec"]["worker"]
    )


def test_gpu_node_pool_type_reaches_the_videosource(render) -> None:
    rendered: Rendered = render(load_values(CHART / "ci" / "gke-values.yaml"))
    assert rendered.one("VideoSource")["spec"]["accelerator"]["gpuType"] == "nvidia-l4"


def test_model_cache_claim_reaches_the_videosource_and_the_prefetch_job_fills_it(
    render,
) -> None:
    rendered: Rendered = render(load_values(CHART / "ci" / "models-cache-values.yaml"))
    cache = rendered.one("VideoSource")["spec"]["worker"]["modelCache"]
    assert cache == {"persistentVolumeClaim": {"claimName": "whisper-models", "subPath": "whisper"}}
    job = rendered.one("Job", f"{FULLNAME}-models-prefetch")
    assert job["metadata"]["namespace"] == NAMESPACE
    assert job["metadata"]["annotations"] == {
        "helm.sh/hook": "post-install,post-upgrade",
        "helm.sh/hook-delete-policy": "before-hook-creation,hook-succeeded",
    }
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == WORKER and pod["automountServiceAccountToken"] is False
    # The claim read-write here (the workers mount it read-only), at the workers' mountPath.
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["models"] == {
        "name": "models",
        "persistentVolumeClaim": {"claimName": "whisper-models"},
    }
    # One init container per model, in order, each pulling unless a sound copy is there.
    pulls = pod["initContainers"]
    assert [c["name"] for c in pulls] == ["pull-0", "pull-1"]
    for container, name in zip(pulls, ["small", "large-v3"], strict=True):
        assert container["command"] == ["/bin/sh", "-c"]
        script, *args = container["args"]
        assert args == ["prefetch", name, "/models"]  # the name is data, not script text
        assert script == (
            'videopipe models verify "$1" --cache "$2" || '
            'videopipe models pull "$1" --to "$2" --force'
        )
    (listing,) = pod["containers"]
    assert listing["args"] == ["models", "list", "--cache", "/models"]
    for container in [*pulls, listing]:
        assert container["image"] == "ghcr.io/videopipe/videopipe-worker:0.1.0"
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        assert mounts["models"] == {"name": "models", "mountPath": "/models", "subPath": "whisper"}
        assert mounts["tmp"]["mountPath"] == "/tmp"
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert container["resources"]["limits"]["memory"] == "2Gi"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["fsGroup"] == 10001
    # No ingress to it (it serves nothing); its egress to the hub stays open.
    policy = rendered.one("NetworkPolicy", f"{FULLNAME}-models-prefetch")
    selected = policy["spec"]["podSelector"]["matchLabels"]
    assert selected.items() <= job["spec"]["template"]["metadata"]["labels"].items()
    assert policy["spec"]["policyTypes"] == ["Ingress"] and "ingress" not in policy["spec"]


def test_gcs_fuse_model_cache_reaches_the_gke_videosource(render) -> None:
    rendered: Rendered = render(load_values(CHART / "ci" / "gke-values.yaml"))
    worker = rendered.one("VideoSource")["spec"]["worker"]
    assert worker["modelCache"] == {
        "gcsFuse": {"bucketName": "my-project-models", "onlyDir": "whisper"}
    }
    assert worker["model"] == "large-v3-turbo"
    assert not rendered.of_kind("Job")  # no prefetch into a bucket


def test_no_model_cache_and_no_prefetch_by_default(render) -> None:
    rendered: Rendered = render(load_values(CHART / "ci" / "videosource-values.yaml"))
    assert "modelCache" not in rendered.one("VideoSource")["spec"]["worker"]
    assert not rendered.of_kind("Job")


def test_prefetch_without_a_claim_fails_at_render(render) -> None:
    with pytest.raises(
        helm.HelmError, match=r"models\.prefetch needs models\.cache\.persistentVolumeClaim"
    ):
        render({"models": {"prefetch": ["small"]}})
    gcs = {"gcsFuse": {"bucketName": "my-models"}}
    with pytest.raises(helm.HelmError, match=r"gcloud storage cp"):
        render({"models": {"prefetch": ["small"], "cache": gcs}})


def test_no_videosource_and_no_secret_by_default(render) -> None:
    rendered: Rendered = render({})
    assert not rendered.of_kind("VideoSource") and not rendered.of_kind("Secret")


# -- monitoring --


def test_monitoring_objects_point_at_what_exists(render) -> None:
    rendered: Rendered = render(load_values(CHART / "ci" / "monitoring-values.yaml"))
    service = rendered.one("Service", f"{FULLNAME}-metrics")
    monitor = rendered.one("ServiceMonitor")
    selected = monitor["spec"]["selector"]["matchLabels"]
    assert selected.items() <= service["metadata"]["labels"].items()
    port_names = {p["name"] for p in service["spec"]["ports"]}
    assert {e["port"] for e in monitor["spec"]["endpoints"]} <= port_names
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    # The Service selects the operator pod, and only it (worker pods share name/instance).
    pod_labels = rendered.one("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "operator"

    rule = rendered.one("PrometheusRule")
    shipped = yaml.safe_load((CHART / "rules" / "videopipe.rules.yaml").read_text())
    assert rule["spec"] == shipped
    assert all(r.get("alert") or r.get("record") for g in shipped["groups"] for r in g["rules"])

    dashboards = rendered.one("ConfigMap")
    assert dashboards["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboards["metadata"]["namespace"] == "monitoring"
    files = sorted(p.name for p in (CHART / "dashboards").glob("*.json"))
    assert sorted(dashboards["data"]) == files
    for name in files:
        board = json.loads(dashboards["data"][name])
        assert board["uid"] and board["panels"]


def test_monitoring_objects_are_off_by_default(render) -> None:
    kinds = {o["kind"] for o in render({}).objects}
    assert not kinds & {"ServiceMonitor", "PrometheusRule", "ConfigMap"}


def test_service_monitor_needs_the_metrics_service(render) -> None:
    with pytest.raises(helm.HelmError, match=r"needs metrics\.service\.enabled"):
        render({"serviceMonitor": {"enabled": True}, "metrics": {"service": {"enabled": False}}})


# -- CRDs --


def test_chart_crds_are_an_identical_copy_of_crds(chart: helm.Chart) -> None:
    chart_crds = sorted((CHART / "crds").glob("*.yaml"))
    assert [p.name for p in chart_crds] == [p.name for p in CRD_FILES], "run `make chart-crds`"
    for ours, source in zip(chart_crds, CRD_FILES, strict=True):
        assert ours.read_bytes() == source.read_bytes(), f"{ours.name} differs: make chart-crds"
    # ...and Helm sees them as the chart's CRDs (installed before the templates).
    assert sorted(Path(c["filename"]).name for c in chart.crds) == [p.name for p in CRD_FILES]
